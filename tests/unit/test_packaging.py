"""The Lambda layer leaves out the CLI, local mode and training code: no handler may need them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# aws_xray_sdk: the tracer is created only when tracing is on (it costs a large share of a cold start).
NOT_IN_LAMBDA = (
    "llm_router.cli",
    "llm_router.local",
    "llm_router.ml",
    "yaml",
    "moto",
    "sklearn",
    "numpy",
    "aws_xray_sdk",
)


@pytest.mark.parametrize("function", ["router", "authorizer", "replay"])
def test_handler_imports_nothing_the_layer_leaves_out(function: str) -> None:
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'functions' / function)!r})\n"
        "import handler\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    # The environment the stack gives the functions (their handlers build everything at import).
    env = {
        **os.environ,
        "CONFIG_TABLE_NAME": "config",
        "STATE_TABLE_NAME": "state",
        "FALLBACK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/fallback",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])

    offending = [m for m in loaded if m.split(".")[0] in NOT_IN_LAMBDA or m.startswith(NOT_IN_LAMBDA)]
    assert offending == []
