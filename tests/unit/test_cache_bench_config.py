"""The cache benchmark's config stays valid as the schemas evolve: two routes over one chain, only one caching."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from llm_router.stores.config_admin import validate_document

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_cache_bench_config_has_one_caching_route_and_one_plain_route_over_the_same_chain() -> None:
    spec = importlib.util.spec_from_file_location("cache_bench", BENCH / "cache_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    doc = module.bench_config()
    config = validate_document(doc)

    assert config.ok, config.errors
    routes = {r["id"]: r for r in doc["routes"]}
    assert routes["plain"]["default"] == routes["cached"]["default"]
    assert "cache" not in routes["plain"] and routes["cached"]["cache"]["ttl_seconds"] > 0
    assert doc["rules"] == []
