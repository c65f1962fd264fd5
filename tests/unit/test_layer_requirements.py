"""Laptops, the tests and Lambda run one set of versions: pyproject.toml, layers/common/requirements.txt (what the
runtime-Python test run installs) and cdk.json's Powertools release must not drift apart."""

from __future__ import annotations

import json
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_SIDE = ("aws-lambda-powertools", "pydantic", "boto3")


def _layer_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "layers" / "common" / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        match = re.fullmatch(r"==(\S+)", str(requirement.specifier))
        assert match, f"layers/common/requirements.txt pins exact versions only: {line!r}"
        pins[canonicalize_name(requirement.name)] = match.group(1)
    return pins


def _project_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}


def test_the_layer_pins_what_pyproject_pins() -> None:
    layer, project = _layer_pins(), _project_requirements()
    for name in LAMBDA_SIDE:
        assert str(project[name].specifier) == f"=={layer[name]}", name
    for name in layer.keys() & project.keys():
        assert project[name].specifier.contains(layer[name]), f"{name}=={layer[name]}, pyproject: {project[name]}"


def test_the_powertools_layer_release_is_the_pinned_one() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    assert context["powertoolsVersion"] == _layer_pins()["aws-lambda-powertools"]


def test_pydantic_core_is_the_one_the_pinned_pydantic_requires() -> None:
    from pydantic.version import check_pydantic_core_version

    assert version("pydantic") == _layer_pins()["pydantic"]
    assert version("pydantic-core") == _layer_pins()["pydantic-core"]
    assert check_pydantic_core_version()


def test_the_tests_run_on_the_pinned_versions() -> None:
    layer = _layer_pins()
    assert {name: version(name) for name in LAMBDA_SIDE} == {name: layer[name] for name in LAMBDA_SIDE}
