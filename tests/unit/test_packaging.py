"""The Lambda layer leaves out the CLI, local mode and training code: no handler may need them."""

from __future__ import annotations

import json
import os
import shutil
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


@pytest.mark.parametrize("function", ["router", "authorizer", "replay", "adapt"])
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


WRAPPER = "layers/common/llm-router-runtime"


def test_runtime_wrapper_is_committed_executable() -> None:
    # Lambda refuses an AWS_LAMBDA_EXEC_WRAPPER that is not executable (exit 126) and the function never starts.
    assert os.access(ROOT / WRAPPER, os.X_OK)
    if shutil.which("git") is None:
        pytest.skip("git is not installed here (the runtime-Python environment)")
    listed = subprocess.run(["git", "ls-files", "-s", WRAPPER], cwd=ROOT, capture_output=True, text=True, check=True)
    assert listed.stdout.split()[0] == "100755"


def test_runtime_wrapper_is_in_the_layer_asset_at_its_root(tmp_path: Path) -> None:
    # Given the layer staged the way CDK stages it, with the stack's exclusions
    cdk = pytest.importorskip("aws_cdk", reason="the CDK is a dev tool, absent from the runtime-Python environment")

    from infra.assets import LAYER_EXCLUDES

    cdk.FileSystem.copy_directory(
        str(ROOT / "layers" / "common"), str(tmp_path), cdk.CopyOptions(exclude=LAYER_EXCLUDES)
    )

    # Then the wrapper lands at the layer's root (/opt/llm-router-runtime), still executable, beside its package
    staged = tmp_path / "llm-router-runtime"
    assert staged.is_file() and os.access(staged, os.X_OK)
    assert (tmp_path / "python" / "llm_router" / "runtime" / "__main__.py").is_file()


def test_runtime_loop_needs_only_the_standard_library() -> None:
    # It starts before anything else of the function and must not pay for (or depend on) third-party imports.
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import llm_router.runtime.loop\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(result.stdout.strip().splitlines()[-1])

    roots = {m.split(".")[0] for m in loaded}
    assert roots - sys.stdlib_module_names - {"llm_router"} == set()
    assert [m for m in loaded if m.startswith("llm_router.") and not m.startswith("llm_router.runtime")] == []


def test_the_layer_holds_everything_the_adapt_function_runs(tmp_path: Path) -> None:
    # Given the layer staged the way CDK stages it, with the stack's exclusions
    cdk = pytest.importorskip("aws_cdk", reason="the CDK is a dev tool, absent from the runtime-Python environment")

    from infra.assets import LAYER_EXCLUDES

    cdk.FileSystem.copy_directory(
        str(ROOT / "layers" / "common"), str(tmp_path), cdk.CopyOptions(exclude=LAYER_EXCLUDES)
    )
    # When the fitting code a scheduled run calls is imported from it alone (the library found first on the path)
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(tmp_path / 'python')!r})\n"
        "import llm_router.adapting, llm_router.ml.adapt\n"
        "print(json.dumps([m.__file__ for n, m in sys.modules.items() if n.startswith('llm_router.ml')]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    files = json.loads(result.stdout.strip().splitlines()[-1])
    # Then it loads, from the staged layer, and nothing of the training code came with it
    assert files and all(f.startswith(str(tmp_path)) for f in files)
    assert not (tmp_path / "python" / "llm_router" / "ml" / "train.py").exists()
