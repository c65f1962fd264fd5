"""Dependencies point inwards: importing a package loads none of the modules its layer may not use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IO = ("botocore", "boto3", "urllib3", "aws_lambda_powertools")
ADAPTERS = ("llm_router.stores", "llm_router.providers")
OUTER = ("llm_router.api", "llm_router.gateway", "llm_router.wiring")

# package -> module prefixes that importing any of its modules must not load
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "llm_router.routing": (*IO, *ADAPTERS, *OUTER),
}

IMPORT_ALL = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
modules = [package.__name__]
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(info.name)
    modules.append(info.name)
print(json.dumps({"imported": modules, "loaded": sorted(sys.modules)}))
"""


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_its_layer_forbids(package: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, package], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])

    offending = [m for m in report["loaded"] if any(_is_under(m, prefix) for prefix in FORBIDDEN[package])]

    assert len(report["imported"]) > 1
    assert offending == []
