"""The bundled Powertools layer: pinned wheels for the Lambda platform, installed at synth time without Docker.

pip picks wheels built for manylinux2014 aarch64 and the runtime's CPython version (`--only-binary=:all:`
refuses anything it would have to compile), so the result runs on Lambda whatever machine runs `cdk synth`.
The folder is cached under a name derived from the requirements and the target, so a second synth reuses it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent / "powertools-requirements.txt"
# .tools/ holds what the Makefile installs and git ignores.
CACHE_DIR = Path(__file__).resolve().parents[1] / ".tools" / "powertools-layer"
PLATFORM = "manylinux2014_aarch64"
# Written last: a folder without it is a build that was interrupted, and is built again.
COMPLETE_MARKER = ".complete"

Runner = Callable[[Sequence[str]], None]


def pip_command(requirements: Path, python_version: str, target: Path) -> list[str]:
    """The pip invocation that installs `requirements` for Lambda's arm64 `python_version` into `target`."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--no-compile",
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]


def _run(command: Sequence[str]) -> None:
    subprocess.run(list(command), check=True)  # noqa: S603 - a fixed pip command line, no shell


def build_powertools_layer(
    python_version: str,
    *,
    requirements: Path = REQUIREMENTS,
    cache_dir: Path = CACHE_DIR,
    run: Runner = _run,
) -> Path:
    """The layer folder (its packages under `python/`), built once per requirements file and Python version."""
    digest = hashlib.sha256(requirements.read_bytes() + f"{PLATFORM} {python_version}".encode()).hexdigest()[:16]
    layer = cache_dir / f"{python_version}-{digest}"
    if (layer / COMPLETE_MARKER).is_file():
        return layer
    shutil.rmtree(layer, ignore_errors=True)
    layer.mkdir(parents=True)
    run(pip_command(requirements, python_version, layer / "python"))
    (layer / COMPLETE_MARKER).write_text(requirements.read_text())
    return layer
