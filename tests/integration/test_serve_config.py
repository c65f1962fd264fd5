"""`llm-router serve --config FILE` with an invalid item stops at once with what `config validate` says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from llm_router.local.runtime import example_config


def llm_router(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llm_router.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,  # generous: today it answers within seconds; a hang is what this guards against
    )


def test_serve_refuses_an_invalid_config_before_starting_anything(tmp_path: Path) -> None:
    doc = example_config()
    doc["routes"][0]["bogus"] = 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))

    validated = llm_router("config", "validate", str(path), cwd=tmp_path)
    served = llm_router("serve", "--config", str(path), "--port", "0", cwd=tmp_path)

    assert validated.returncode == 1
    message = validated.stdout.strip()
    assert "bogus" in message
    assert served.returncode != 0
    assert message in served.stderr
    assert "serving" not in served.stdout
    assert not (tmp_path / ".llm-router" / "local.json").exists()
