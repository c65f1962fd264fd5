"""The benchmark's 200-rule config stays valid and in step with its generator as the schemas evolve."""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from pathlib import Path
from types import ModuleType

import yaml

from llm_router.routing.engine import decide
from llm_router.routing.features import Features
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.schemas.rules import Rule
from llm_router.stores.config_admin import validate_document

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _workload() -> ModuleType:
    return _bench_module("workload")


def test_bench_config_is_a_valid_config_with_200_rules() -> None:
    config = validate_document(_workload().rules_config())

    assert config.ok, config.errors
    assert len(config.entries["rule"]) == 200


def test_checked_in_bench_config_matches_its_generator() -> None:
    workload = _workload()

    assert yaml.safe_load(workload.CONFIG_PATH.read_text()) == workload.rules_config()


def test_bench_messages_go_past_at_least_197_rules_before_a_decision() -> None:
    workload = _workload()
    doc = workload.rules_config()
    snapshot = ConfigSnapshot.build(
        [ModelSpec.model_validate(m) for m in doc["models"]],
        [RouteSpec.model_validate(r) for r in doc["routes"]],
        [Rule.model_validate(r) for r in doc["rules"]],
    )
    decided, served = {}, {}

    for index, (name, _) in enumerate(workload.MESSAGES):
        request = ChatCompletionRequest.model_validate(workload.chat_body(index))
        decision = decide(request.model, Features(request, workload.TENANT), snapshot, explain=True)
        decided[name] = (decision.rule, sum(1 for step in decision.trace if not step.matched))
        fast = decide(request.model, Features(request, workload.TENANT), snapshot)
        served[name] = (fast.rule, len(fast.trace))

    assert decided == {
        "short": ("default", 200),
        "system+question": ("default", 200),
        "code": ("code-to-code-model", 197),
        "long": ("long-to-strong", 198),
    }
    # Serving decides the same, evaluating only the rules the index could not rule out (the PII rule, the
    # rules a word of the message points at, the decisive rule), plus the default step.
    assert {name: rule for name, (rule, _) in served.items()} == {name: r for name, (r, _) in decided.items()}
    assert all(steps <= 5 for _, steps in served.values()), served


def test_streaming_config_sends_every_model_to_the_upstream() -> None:
    streaming = _bench_module("streaming")
    doc = streaming.stream_config(_workload().rules_config(), "http://127.0.0.1:9/v1")

    config = validate_document(doc)

    assert config.ok, config.errors
    assert len(config.entries["rule"]) == 200
    assert {(m["provider"], m["base_url"]) for m in doc["models"]} == {("openai", "http://127.0.0.1:9/v1")}


def test_streaming_upstream_sends_its_chunks_stamped_in_order_then_usage_and_done() -> None:
    streaming = _bench_module("streaming")
    upstream = streaming.StreamingUpstream(chunks=3, interval_ms=2).start()
    try:
        body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
        request = urllib.request.Request(
            upstream.base_url + "/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            content_type = response.headers["Content-Type"]
            lines = [line for line in response.read().decode().split("\n") if line]
    finally:
        upstream.stop()

    assert content_type == "text/event-stream"
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    sent = streaming.stamps(text)
    assert [index for index, _ in sent] == [0, 1, 2]
    assert sent[0][1] < sent[1][1] < sent[2][1]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[3]["choices"][0]["finish_reason"] == "stop"
    assert events[4]["usage"]["completion_tokens"] == 9
    assert (upstream.streams, upstream.usage_requested) == (1, 1)
