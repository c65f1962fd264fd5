"""The README's cache demo against the local server, with the official client: a route that caches answers the same
request twice for the price of one, never across tenants, fresh on `no-cache`, and replays a stream from the cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from openai import OpenAI

from llm_router.local.runtime import example_config
from tests.e2e.conftest import Served, start_server, stop_server

MESSAGES: Any = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def cached_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("cache")
    doc = example_config()
    for route in doc["routes"]:
        if route["id"] == "auto":
            route["cache"] = {"ttl_seconds": 600}
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    server = start_server(
        workdir, "--config", str(config), "--simulate", env_extra={"LLM_ROUTER_METRICS_SINK": str(workdir / "m.jsonl")}
    )
    yield server
    stop_server(server)


def emitted(server: Served, message: str) -> int:
    lines = (server.workdir / "m.jsonl").read_text().splitlines()
    return sum(1 for line in lines if json.loads(line).get("message") == message)


def client(server: Served, key: str = "sk-local-dev") -> OpenAI:
    return OpenAI(base_url=f"{server.base_url}/v1", api_key=key, max_retries=0)


def test_miss_then_hit_other_tenant_misses_no_cache_bypasses_and_a_stream_is_replayed(cached_server: Served) -> None:
    local = client(cached_server)

    # The same request twice: a miss, then a hit with the same answer and no second model call
    first = local.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
    second = local.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
    assert (first.headers["x-router-cache"], second.headers["x-router-cache"]) == ("miss", "hit")
    answer = first.parse().choices[0].message.content
    assert answer and second.parse().choices[0].message.content == answer
    assert float(second.headers["x-router-cost-usd"]) == 0 and second.headers["x-router-attempts"] == "0"
    assert float(second.headers["x-router-saved-usd"]) == pytest.approx(float(first.headers["x-router-cost-usd"]))
    assert (emitted(cached_server, "routed"), emitted(cached_server, "cache_hit")) == (1, 1)

    # The same request from another tenant's key: a miss
    created = cached_server.cli("keys", "create", "--tenant", "other", "--local")
    assert created.returncode == 0, created.stderr
    other = client(cached_server, created.stdout.splitlines()[0].strip())
    theirs = other.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
    assert theirs.headers["x-router-cache"] == "miss"

    # no-cache: a model answers although the answer is cached
    fresh = local.chat.completions.with_raw_response.create(
        model="auto", messages=MESSAGES, extra_headers={"Cache-Control": "no-cache"}
    )
    assert fresh.headers["x-router-cache"] == "bypass" and float(fresh.headers["x-router-cost-usd"]) > 0
    assert emitted(cached_server, "routed") == 3

    # A streamed request after the cached non-streamed one: replayed as a stream, usage chunk included
    streamed = local.chat.completions.with_raw_response.create(
        model="auto", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert streamed.headers["x-router-cache"] == "hit"
    assert streamed.headers["content-type"].startswith("text/event-stream")
    chunks = list(streamed.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert emitted(cached_server, "routed") == 3 and emitted(cached_server, "cache_hit") == 2

    # What the cache holds, as the operator sees it
    stats = cached_server.cli("cache", "stats", "--local", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["tenants"] == {"local": 1, "other": 1}
