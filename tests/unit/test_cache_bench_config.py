"""The cache benchmark's config stays valid as the schemas evolve: two routes over one chain, only one caching."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

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


def _report() -> object:
    import sys

    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_report", BENCH / "report.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_the_cache_benchmarks_keys_reach_benchmarks_json_and_md() -> None:
    # Given the committed benchmarks.json and a cache benchmark result as cache_bench.measure() returns it
    report: Any = _report()
    results = json.loads((BENCH.parent / "docs" / "benchmarks.json").read_text())
    keys = {
        "cache_hit_p50_ms": 0.4321,
        "cache_hit_p99_ms": 2.5,
        "cache_miss_overhead_p50_ms": 1.75,
        "cache_hit_loopback_p50_ms": 6.0,
        "cache_hit_loopback_p99_ms": 20.0,
        "cache_miss_overhead_loopback_p50_ms": 12.0,
    }
    cache = {"requests": 400, "warmup": 50, "block": 20, "keys": keys}
    # When it is merged as `make bench` (or `bench/run.py --cache-only`) merges it
    merged = report.with_cache(results, cache)
    markdown = report.markdown(merged)
    # Then the three keys are in the JSON, and the page shows them and whether the miss target was met
    assert merged["cache_hit_p50_ms"] == 0.432
    assert merged["cache_hit_p99_ms"] == 2.5
    assert merged["cache_miss_overhead_p50_ms"] == 1.75
    assert merged["cache_miss_overhead_target_met"] is False
    assert "## Response cache" in markdown
    assert "| Hit, p50 (answered from the cache, no model call) | 0.432 ms | 6.000 ms |" in markdown
    assert "met: **no**" in markdown
    assert "met: yes" in report.markdown(
        report.with_cache(results, {**cache, "keys": {**keys, "cache_miss_overhead_p50_ms": 0.6}})
    )
