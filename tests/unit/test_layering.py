"""Dependencies point inwards: importing a package loads none of the modules its layer may not use.

The layers, from the inside out (docs/architecture.md draws them):
- `routing` decides from the request and a config snapshot: pure, no I/O.
- `providers` and `stores` are the adapters: one calls a model API, the other DynamoDB, SQS or Secrets Manager.
  Neither knows who calls it.
- `gateway` runs one request over its ports (protocols it declares) and returns a domain outcome; it knows no HTTP
  and builds nothing.
- `api` renders outcomes as HTTP; `replay` answers the fallback queue.
- `wiring` builds the adapters from settings; the Lambda handlers, the CLI and local mode call it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "layers" / "common" / "python" / "llm_router"

IO = ("botocore", "boto3", "urllib3", "aws_lambda_powertools")
ADAPTERS = ("llm_router.stores", "llm_router.providers")
OUTER = ("llm_router.api", "llm_router.gateway", "llm_router.wiring")
ENTRY_POINTS = ("llm_router.local", "llm_router.cli")
CALLERS = ("llm_router.replay", "llm_router.accounting", "llm_router.runtime")
PROVIDER_ADAPTERS = tuple(
    f"llm_router.providers.{name}"
    for name in ("http", "openai_compat", "anthropic", "bedrock", "simulated", "registry", "schema_instance")
)

# package or module -> module prefixes that importing it (and, for a package, every module in it) must not load
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "llm_router.routing": (*IO, *ADAPTERS, *OUTER),
    "llm_router.providers": (*OUTER, *ENTRY_POINTS, *CALLERS, "llm_router.routing.engine"),
    # Stores may share the providers' value types (providers.base: Usage), never an adapter.
    "llm_router.stores": (*OUTER, *ENTRY_POINTS, *CALLERS, *PROVIDER_ADAPTERS),
    "llm_router.gateway": ("llm_router.api", "llm_router.wiring", "llm_router.runtime", *ENTRY_POINTS),
}

# The adapters that hold a table, a queue or a secret: built from settings by the composition root (and by the
# entry points that administer them), never by the request path. The authorizer builds its own key store: its
# function loads neither the gateway nor the providers, which the composition root would import.
CONCRETE_STORES = frozenset(
    {
        "AdaptationStore",
        "ConfigStore",
        "ConfigAdmin",
        "FallbackQueue",
        "IdempotentRunner",
        "KeyStore",
        "PayloadStore",
        "ProviderKeys",
        "RequestStore",
        "TenantStore",
        "UsageStore",
    }
)
MAY_BUILD_STORES = ("wiring.py", "authorizer.py", "cli/", "local/")

# What the CDK app may take from the library: shared names, never code that runs in a function.
INFRA_MAY_IMPORT: dict[str, set[str] | None] = {
    "llm_router.settings": None,
    "llm_router.metrics": None,
    "llm_router.schemas.records": None,
    "llm_router.stores.tables": None,
    "llm_router.api": {"UNAUTHORIZED_BODY"},
}

IMPORT_ALL = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
modules = [package.__name__]
for info in pkgutil.walk_packages(getattr(package, "__path__", []), package.__name__ + "."):
    importlib.import_module(info.name)
    modules.append(info.name)
print(json.dumps({"imported": modules, "loaded": sorted(sys.modules)}))
"""


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every `import` and `from ... import` in the file, at any depth (lazy imports too)."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def _constructed(path: Path) -> set[str]:
    """Names called as constructors in the file: `Name(...)`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_its_layer_forbids(package: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, package], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])

    offending = [m for m in report["loaded"] if any(_is_under(m, prefix) for prefix in FORBIDDEN[package])]

    assert report["imported"][0] == package
    assert offending == []


def test_only_the_composition_root_and_the_entry_points_build_concrete_stores() -> None:
    builders: dict[str, set[str]] = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        relative = path.relative_to(LIBRARY).as_posix()
        built = _constructed(path) & CONCRETE_STORES
        if built and not relative.startswith(MAY_BUILD_STORES):
            builders[relative] = built

    assert builders == {}


def test_the_scan_sees_a_store_built_on_the_request_path(tmp_path: Path) -> None:
    # Given a module that builds a store itself instead of being given one
    module = tmp_path / "gateway.py"
    module.write_text("def serve(settings):\n    return RequestStore(settings.state_table_name)\n")
    # Then the scan names it
    assert _constructed(module) & CONCRETE_STORES == {"RequestStore"}


def test_infra_takes_only_shared_names_from_the_library() -> None:
    offending: list[str] = []
    seen: set[str] = set()
    for path in sorted([*(ROOT / "infra").rglob("*.py"), ROOT / "app.py"]):
        for module, names in _imports(path):
            if not _is_under(module, "llm_router"):
                continue
            seen.add(module)
            allowed = INFRA_MAY_IMPORT.get(module, set())
            if module not in INFRA_MAY_IMPORT or (allowed is not None and not set(names) <= allowed):
                offending.append(f"{path.relative_to(ROOT)}: {module} {names}")

    assert {"llm_router.settings", "llm_router.metrics"} <= seen
    assert offending == []
