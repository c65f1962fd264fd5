"""The bundled Powertools layer build: the pip command for Lambda's platform, pinned requirements, the cache."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest

from infra.powertools_layer import REQUIREMENTS, build_powertools_layer, pip_command

ROOT = Path(__file__).resolve().parents[2]


def test_pip_installs_only_arm64_wheels_for_the_runtime_python_without_byte_code() -> None:
    command = pip_command(REQUIREMENTS, "3.13", Path("/tmp/layer/python"))
    joined = " ".join(command)
    assert command[1:4] == ["-m", "pip", "install"]
    assert "--platform manylinux2014_aarch64" in joined
    assert "--only-binary=:all:" in command
    assert "--python-version 3.13" in joined
    assert "--no-compile" in command
    # Every package is pinned in the requirements file, so pip resolves nothing of its own
    assert "--no-deps" in command
    assert command[-4:] == ["--target", "/tmp/layer/python", "-r", str(REQUIREMENTS)]


def test_every_requirement_is_pinned_and_matches_the_projects_pins() -> None:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][A-Za-z0-9.]*)", line)
            assert match, f"not pinned: {line}"
            pins[match[1].lower()] = match[2]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for name in ("aws-lambda-powertools", "pydantic"):
        project_pin = next(d.split("==")[1] for d in project if d.startswith(f"{name}=="))
        assert pins[name] == project_pin, name
    # pydantic's compiled core comes with it; boto3 and urllib3 are the runtime's
    assert "pydantic-core" in pins
    assert not {"boto3", "botocore", "urllib3"} & set(pins)


def test_the_layer_is_built_once_and_then_reused(tmp_path: Path) -> None:
    commands: list[Sequence[str]] = []

    def fake_pip(command: Sequence[str]) -> None:
        commands.append(command)
        target = Path(command[command.index("--target") + 1])
        (target / "pydantic").mkdir(parents=True)

    # When the layer is built twice for the same requirements and Python version
    first = build_powertools_layer("3.13", cache_dir=tmp_path, run=fake_pip)
    second = build_powertools_layer("3.13", cache_dir=tmp_path, run=fake_pip)
    # Then pip ran once, and the packages sit under python/ where Lambda looks for them
    assert first == second
    assert len(commands) == 1
    assert (first / "python" / "pydantic").is_dir()
    # And another Python version is a build of its own
    other = build_powertools_layer("3.12", cache_dir=tmp_path, run=fake_pip)
    assert other != first
    assert len(commands) == 2


def test_an_interrupted_build_is_started_over(tmp_path: Path) -> None:
    def failing_pip(command: Sequence[str]) -> None:
        Path(command[command.index("--target") + 1]).mkdir(parents=True)
        raise RuntimeError("network down")

    with pytest.raises(RuntimeError):
        build_powertools_layer("3.13", cache_dir=tmp_path, run=failing_pip)
    calls: list[Sequence[str]] = []
    layer = build_powertools_layer("3.13", cache_dir=tmp_path, run=lambda c: calls.append(c))
    assert len(calls) == 1
    assert (layer / ".complete").is_file()
