"""The lock files make installs use exactly the pinned, hash-checked packages."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _makefile_variable(name: str) -> str:
    match = re.search(rf"^{name} := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, name
    return match.group(1)


def test_make_installs_python_packages_from_uv_lock_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lock = tomllib.loads((ROOT / "uv.lock").read_text())

    assert "sync --quiet --locked" in makefile
    assert "pip install --quiet --python $(PY) -e" not in makefile
    packages = {p["name"]: p for p in lock["package"]}
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for pin in pins:
        name, _, version = pin.partition("==")
        if version:
            assert packages[name]["version"] == version, name
            assert all("hash" in wheel for wheel in packages[name].get("wheels", [])), name


def test_the_cdk_cli_is_installed_with_npm_ci_from_a_lockfile_with_integrity_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    package = json.loads((ROOT / ".ci/cdk-cli/package.json").read_text())
    lock = json.loads((ROOT / ".ci/cdk-cli/package-lock.json").read_text())

    assert "npm ci --prefix $(TOOLS)" in makefile
    assert package["dependencies"] == {
        "aws-cdk": _makefile_variable("CDK_CLI_VERSION"),
        "node": _makefile_variable("NODE_VERSION"),
    }
    installed = {path: entry for path, entry in lock["packages"].items() if path}
    assert installed["node_modules/aws-cdk"]["version"] == _makefile_variable("CDK_CLI_VERSION")
    assert all(entry.get("integrity", "").startswith("sha512-") for entry in installed.values())
