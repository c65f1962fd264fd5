"""Every README block marked runnable (a fence opened with ```` ```bash runnable ```` or ```` ```python runnable ````)
runs against the local server, as a reader would paste it, and must succeed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Served

README = Path(__file__).parents[2] / "README.md"
FENCE = re.compile(r"^```(bash|python) runnable\n(.*?)^```", re.MULTILINE | re.DOTALL)


def runnable_blocks() -> list[tuple[str, str, int]]:
    text = README.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def test_the_readme_has_runnable_blocks() -> None:
    kinds = {kind for kind, _, _ in runnable_blocks()}
    assert len(runnable_blocks()) >= 4 and kinds == {"bash", "python"}


@pytest.mark.parametrize(
    ("kind", "code", "line"), runnable_blocks(), ids=lambda v: str(v) if isinstance(v, int) else ""
)
def test_runnable_block(served: Served, kind: str, code: str, line: int) -> None:
    code = code.replace("http://127.0.0.1:8080", served.base_url)
    env = {**served.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{served.env.get('PATH', '')}"}
    command = ["bash", "-euo", "pipefail", "-c", code] if kind == "bash" else [sys.executable, "-c", code]

    result = subprocess.run(command, cwd=served.workdir, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, f"README.md line {line}:\n{result.stdout}\n{result.stderr}"
