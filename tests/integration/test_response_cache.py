"""The response cache through the router handler under moto: opt-in per route, isolation, TTL, policies, streams."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_router.cache import CachedAnswer
from llm_router.cli.main import main
from llm_router.providers.base import Usage
from llm_router.settings import DEFAULT_STATE_TABLE
from llm_router.stores.response_cache import DynamoResponseCache
from tests.integration.conftest import Router

OTHER_KEY = "sk-other-tenant"
QUESTION = "What is the capital of France?"


def enable_cache(router: Router, route: str = "auto", **cache: Any) -> None:
    entry = next(e for e in router.admin.entries("route") if e["id"] == route)
    router.admin.put_raw("route", {**entry, "cache": {"ttl_seconds": 300, **cache}})


def call(router: Router, content: str = QUESTION, *, key: str = "sk-local-dev", **kwargs: Any) -> dict[str, Any]:
    headers = kwargs.pop("headers", None)
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], **kwargs}
    return router.call(body, key=key, headers=headers)


def routed_docs(router: Router) -> list[dict[str, Any]]:
    """EMF documents of requests a model answered."""
    return [doc for doc in router.emitted if doc.get("message") == "routed"]


def sse(body: str) -> tuple[list[dict[str, Any]], bool]:
    """The JSON events of a server-sent event stream, and whether it ended with [DONE]."""
    events = [line.removeprefix("data: ") for line in body.split("\n\n") if line.startswith("data: ")]
    done = bool(events) and events[-1] == "[DONE]"
    return [json.loads(e) for e in events if e != "[DONE]"], done


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def test_caching_is_off_unless_the_route_opts_in(router: Router) -> None:
    first, second = call(router), call(router)

    assert "x-router-cache" not in first["headers"] and "x-router-cache" not in second["headers"]
    assert len(routed_docs(router)) == 2


def test_the_same_request_twice_is_a_miss_then_a_hit_without_a_second_model_call(router: Router) -> None:
    # Given a route that caches
    enable_cache(router)

    # When the same request is sent twice
    first = call(router)
    second = call(router, user="someone-else", metadata={"trace": "x"})

    # Then the first calls a model and stores its answer, the second is answered from the cache at no cost
    assert first["statusCode"] == second["statusCode"] == 200
    assert first["headers"]["x-router-cache"] == "miss" and second["headers"]["x-router-cache"] == "hit"
    a, b = router.json(first), router.json(second)
    assert b["choices"] == a["choices"] and b["usage"] == a["usage"] and b["model"] == a["model"]
    assert b["id"] != a["id"] and b["id"] == "chatcmpl-" + second["headers"]["x-router-request-id"]
    assert second["headers"]["x-router-attempts"] == "0"
    assert float(second["headers"]["x-router-cost-usd"]) == 0
    assert float(second["headers"]["x-router-saved-usd"]) == pytest.approx(float(first["headers"]["x-router-cost-usd"]))
    assert len(routed_docs(router)) == 1
    [hit] = [doc for doc in router.emitted if doc.get("message") == "cache_hit"]
    assert hit["CacheHits"] == [1.0] and hit["Route"] == "auto" and hit["CostUSD"] == [0.0]
    assert hit["SavedUSD"] == [pytest.approx(float(first["headers"]["x-router-cost-usd"]))]
    assert ["Route"] in hit["_aws"]["CloudWatchMetrics"][0]["Dimensions"]


def test_another_tenant_never_gets_a_cached_answer(router: Router) -> None:
    # Given a cached answer for the local tenant
    enable_cache(router)
    router.keys.create("other", OTHER_KEY)
    assert call(router)["headers"]["x-router-cache"] == "miss"
    assert call(router)["headers"]["x-router-cache"] == "hit"

    # When another tenant sends the very same request
    theirs = call(router, key=OTHER_KEY)

    # Then it is a miss for them: a model answers
    assert theirs["headers"]["x-router-cache"] == "miss"
    assert len(routed_docs(router)) == 2
    assert [doc["tenant"] for doc in routed_docs(router)] == ["local", "other"]


def test_an_entry_read_under_another_tenant_is_not_returned(router: Router) -> None:
    # Given an entry written for tenant a (defence in depth: the key already includes the tenant)
    cache = DynamoResponseCache(DEFAULT_STATE_TABLE, dynamodb=router.clients.get("dynamodb"))
    entry = CachedAnswer("a", "auto", "nova-micro", "hi", None, "stop", Usage(1, 1), 0.1, True, 0)
    cache.put("k", entry, 60)

    # Then only tenant a reads it
    assert cache.get("k", "a") == entry
    assert cache.get("k", "b") is None


def test_entries_expire_after_their_ttl_even_when_dynamodb_has_not_deleted_them(router: Router) -> None:
    # Given a route caching for 60 s and a cache on a clock the test moves
    now = [1_000_000.0]
    cache = DynamoResponseCache(DEFAULT_STATE_TABLE, dynamodb=router.clients.get("dynamodb"), clock=lambda: now[0])
    router.build(cache=cache)
    enable_cache(router, ttl_seconds=60)
    assert call(router)["headers"]["x-router-cache"] == "miss"

    # When 59 s, then 61 s have passed
    now[0] += 59
    before = call(router)["headers"]["x-router-cache"]
    now[0] += 2
    after = call(router)["headers"]["x-router-cache"]

    # Then the entry serves until it expires, and is a miss afterwards
    assert (before, after) == ("hit", "miss")


def test_a_large_answer_is_stored_compressed(router: Router) -> None:
    ddb = router.clients.get("dynamodb")
    cache = DynamoResponseCache(DEFAULT_STATE_TABLE, dynamodb=ddb)
    text = "All work and no play makes Jack a dull boy. " * 2000
    entry = CachedAnswer("a", "auto", "nova-micro", text, None, "stop", Usage(10, 20000), 0.5, True, 0)

    cache.put("big", entry, 60)

    item = ddb.get_item(TableName=DEFAULT_STATE_TABLE, Key={"pk": {"S": "cache#big"}, "sk": {"S": "entry"}})["Item"]
    assert "answer_z" in item and "answer" not in item and len(item["answer_z"]["B"]) < len(text) // 10
    assert cache.get("big", "a") == entry


def test_no_cache_skips_the_lookup_but_stores_and_no_store_skips_both(router: Router) -> None:
    enable_cache(router)
    # no-store: a model answers and nothing is kept
    assert call(router, headers={"Cache-Control": "no-store"})["headers"]["x-router-cache"] == "bypass"
    assert call(router)["headers"]["x-router-cache"] == "miss"
    # no-cache: a model answers although an entry exists, and its answer is kept
    assert call(router, headers={"Cache-Control": "no-cache"})["headers"]["x-router-cache"] == "bypass"
    assert call(router)["headers"]["x-router-cache"] == "hit"
    assert len(routed_docs(router)) == 3

    assert (
        call(router, "A fresh question", headers={"Cache-Control": "no-cache"})["headers"]["x-router-cache"] == "bypass"
    )
    assert call(router, "A fresh question")["headers"]["x-router-cache"] == "hit"


def test_sampled_requests_are_cached_only_when_the_route_says_so(router: Router) -> None:
    enable_cache(router)
    first, second = call(router, temperature=0.8), call(router, temperature=0.8)
    assert "x-router-cache" not in first["headers"] and "x-router-cache" not in second["headers"]

    enable_cache(router, mode="always")
    assert [call(router, temperature=0.8)["headers"]["x-router-cache"] for _ in range(2)] == ["miss", "hit"]


def test_a_request_matched_by_the_pii_residency_rule_is_never_cached(router: Router) -> None:
    enable_cache(router, mode="always")
    content = "Please email the invoice to jane.doe@example.com"

    responses = [call(router, content) for _ in range(2)]

    assert [r["headers"]["x-router-rule"] for r in responses] == ["pii-stays-in-eu"] * 2
    assert all("x-router-cache" not in r["headers"] for r in responses)
    assert len(routed_docs(router)) == 2


def test_a_pii_residency_policy_that_says_cache_allow_lets_its_requests_be_cached(router: Router) -> None:
    # Given the PII policy of the example config, opted in to caching, on a route that caches
    enable_cache(router, mode="always")
    policy = next(e for e in router.admin.entries("rule") if e["id"] == "pii-stays-in-eu")
    router.admin.put_raw("rule", {**policy, "cache": "allow"})
    content = "Please email the invoice to jane.doe@example.com"

    # When a request it matches is sent twice
    responses = [call(router, content) for _ in range(2)]

    # Then the policy still decides, and the second answer comes from the cache, without a model call
    assert [r["headers"]["x-router-rule"] for r in responses] == ["pii-stays-in-eu"] * 2
    assert [r["headers"]["x-router-cache"] for r in responses] == ["miss", "hit"]
    assert len(routed_docs(router)) == 1
    assert router.json(responses[1])["choices"] == router.json(responses[0])["choices"]


def test_cache_allow_is_refused_on_a_rule_that_keeps_nothing_out_of_the_cache(router: Router) -> None:
    from llm_router.stores.config_admin import validate_document

    # A rule without a pii condition or regions never keeps requests out, so `cache: allow` on it is an error
    doc = {
        "rules": [
            {"id": "r", "priority": 1, "when": {"keywords": ["x"]}, "then": {"targets": ["nova-micro"]},
             "cache": "allow"},
        ],
    }  # fmt: skip
    result = validate_document(doc)
    assert not result.ok and any("cache: allow applies only" in e for e in result.errors), result.errors
    # And only `allow` is a value
    doc["rules"][0] |= {"when": {"pii": True}, "cache": "always"}
    assert not validate_document(doc).ok
    doc["rules"][0]["cache"] = "allow"
    assert not [e for e in validate_document(doc).errors if "cache" in e]


def test_cache_hits_count_in_the_usage_counters_at_no_cost_with_the_saving(router: Router) -> None:
    from datetime import UTC, datetime, timedelta

    from llm_router.stores.usage_store import UsageStore

    # Given a route that caches, and one answer paid for
    enable_cache(router)
    first = call(router)
    paid = float(first["headers"]["x-router-cost-usd"])
    assert paid > 0

    # When the same request is answered twice more from the cache
    hits = [call(router) for _ in range(2)]
    assert [h["headers"]["x-router-cache"] for h in hits] == ["hit", "hit"]

    # Then the tenant's counters hold three requests, the first one's cost only, and twice that cost saved; the
    # hits add no tokens (no model read or wrote any)
    today = datetime.now(UTC).date()
    usage = UsageStore(DEFAULT_STATE_TABLE).report(today - timedelta(days=1), today, tenant="local")
    total = usage.tenants["local"]
    assert total.requests == 3
    assert total.cost_usd == pytest.approx(paid, abs=1e-7)
    first_saved = float(first["headers"].get("x-router-saved-usd") or 0)
    assert total.saved_usd == pytest.approx(first_saved + 2 * paid, abs=1e-7)
    assert total.input_tokens == router.json(first)["usage"]["prompt_tokens"]
    assert usage.routes[("local", "auto")].requests == 3


def test_a_rule_edit_that_changes_the_decision_does_not_serve_the_old_answer(router: Router) -> None:
    enable_cache(router)
    assert call(router)["headers"]["x-router-cache"] == "miss"

    router.admin.put_raw(
        "rule",
        {"id": "capitals-to-sonnet", "route": "auto", "priority": 1, "when": {"keywords": ["capital"]},
         "then": {"targets": ["claude-sonnet"]}},
    )  # fmt: skip
    after = call(router)

    assert after["headers"]["x-router-cache"] == "miss" and router.json(after)["model"] == "claude-sonnet"


def test_failures_are_never_cached(router: Router) -> None:
    # Given a caching route whose models all fail
    enable_cache(router)
    router.set_models(failure="server_error")
    failed = call(router)
    assert failed["statusCode"] == 503

    # When the models recover
    router.set_models()
    recovered = call(router)

    # Then the failure was not kept: a model answers
    assert recovered["statusCode"] == 200 and recovered["headers"]["x-router-cache"] == "miss"


def test_a_refused_request_is_not_cached(router: Router) -> None:
    enable_cache(router)
    router.admin.put_raw(
        "rule",
        {"id": "no-capitals", "route": "auto", "priority": 1, "when": {"keywords": ["capital"]},
         "then": {"reject": {"status": 403, "message": "Not here."}}},
    )  # fmt: skip
    assert call(router)["statusCode"] == 403
    router.admin.delete("rule", "no-capitals")

    assert call(router)["headers"]["x-router-cache"] == "miss"


def test_an_interrupted_stream_is_not_cached(router: Router) -> None:
    # Given a caching route whose model breaks off mid-stream
    enable_cache(router)
    router.set_models(failure="interrupted", failure_after_chunks=2)
    broken = call(router, stream=True)
    events, done = sse(broken["body"])
    assert events[-1]["error"]["code"] == "stream_interrupted" and not done

    # When the model recovers
    router.set_models()
    again = call(router, stream=True)

    # Then the partial answer was not kept
    assert again["headers"]["x-router-cache"] == "miss"


def test_a_streamed_request_after_a_cached_answer_is_replayed_as_a_stream(router: Router) -> None:
    # Given a non-streamed answer in the cache
    enable_cache(router)
    first = call(router)
    answer = router.json(first)

    # When the same request is sent streamed, asking for usage
    streamed = call(router, stream=True, stream_options={"include_usage": True})

    # Then it is replayed as chunks of the same answer, with the usage chunk and [DONE]
    assert streamed["headers"]["x-router-cache"] == "hit"
    assert streamed["headers"]["Content-Type"] == "text/event-stream"
    chunks, done = sse(streamed["body"])
    assert done
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert streamed_text(chunks) == answer["choices"][0]["message"]["content"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert usage["prompt_tokens"] == answer["usage"]["prompt_tokens"]
    assert usage["completion_tokens"] == answer["usage"]["completion_tokens"]
    assert usage["x_router"]["cost_usd"] == 0
    assert usage["x_router"]["saved_usd"] == pytest.approx(float(first["headers"]["x-router-cost-usd"]))
    assert len(routed_docs(router)) == 1


def test_a_live_streamed_answer_is_stored_when_it_completes(router: Router) -> None:
    enable_cache(router)
    live = call(router, stream=True)
    assert live["headers"]["x-router-cache"] == "miss"
    chunks, done = sse(live["body"])
    assert done

    plain = call(router)

    assert plain["headers"]["x-router-cache"] == "hit"
    assert router.json(plain)["choices"][0]["message"]["content"] == streamed_text(chunks)


def test_a_cache_that_cannot_be_read_or_written_never_fails_the_request(router: Router) -> None:
    class Broken:
        def get(self, key: str, tenant: str) -> CachedAnswer | None:
            raise ConnectionError("DynamoDB is unreachable")

        def put(self, key: str, entry: CachedAnswer, ttl_seconds: int) -> None:
            raise ConnectionError("DynamoDB is unreachable")

    router.build(cache=Broken())
    enable_cache(router)

    responses = [call(router), call(router, stream=True)]

    assert [r["statusCode"] for r in responses] == [200, 200]
    assert [r["headers"]["x-router-cache"] for r in responses] == ["miss", "miss"]


def test_cache_stats_and_purge_by_tenant_and_route(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    # Given cached answers of two tenants
    enable_cache(router)
    router.keys.create("other", OTHER_KEY)
    call(router, "one"), call(router, "two"), call(router, "one", key=OTHER_KEY)

    # When the operator looks, then purges one tenant's entries
    assert main(["cache", "stats", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["cache", "purge", "--tenant", "other", "--yes"]) == 0
    purged = capsys.readouterr().out
    assert main(["cache", "stats", "--json", "--route", "auto"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert main(["cache", "stats"]) == 0
    table = capsys.readouterr().out

    # Then the counts follow, and the purged tenant's next request is a miss while the other's are hits
    assert before["entries"] == 3 and before["tenants"] == {"local": 2, "other": 1} and before["routes"] == {"auto": 3}
    assert "1 cached answer(s) deleted" in purged
    assert after["entries"] == 2 and after["tenants"] == {"local": 2}
    assert "2 cached answer(s)" in table
    assert call(router, "one", key=OTHER_KEY)["headers"]["x-router-cache"] == "miss"
    assert call(router, "one")["headers"]["x-router-cache"] == "hit"
    assert main(["cache", "purge", "--route", "auto", "--yes"]) == 0
    assert call(router, "two")["headers"]["x-router-cache"] == "miss"


def shape(chunks: list[dict[str, Any]]) -> list[Any]:
    """What a client sees of a stream besides the text: the keys of each kind of chunk, and the finish and usage."""
    content = [c for c in chunks if c["choices"] and "content" in c["choices"][0]["delta"]]
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    usage = [c for c in chunks if not c["choices"]]
    return [
        sorted(content[0]),
        sorted(content[0]["choices"][0]),
        content[0]["choices"][0]["delta"].get("role"),
        [c["choices"][0]["finish_reason"] for c in finish],
        [c["choices"][0]["delta"] for c in finish],
        [sorted(c) for c in usage],
        [sorted(c["usage"]) for c in usage],
        [sorted(c["usage"]["x_router"]) for c in usage],
    ]


def test_a_replayed_stream_has_the_shape_of_the_live_one(router: Router) -> None:
    # Given a streamed answer stored as it went by
    enable_cache(router)
    live = call(router, stream=True, stream_options={"include_usage": True})

    # When the same request streams again
    replayed = call(router, stream=True, stream_options={"include_usage": True})

    # Then the replay is the same kinds of chunks, with the same text and token counts
    (live_chunks, live_done), (hit_chunks, hit_done) = sse(live["body"]), sse(replayed["body"])
    assert (live["headers"]["x-router-cache"], replayed["headers"]["x-router-cache"]) == ("miss", "hit")
    assert live_done and hit_done
    assert shape(hit_chunks) == shape(live_chunks)
    assert streamed_text(hit_chunks) == streamed_text(live_chunks)
    live_usage, hit_usage = live_chunks[-1]["usage"], hit_chunks[-1]["usage"]
    assert {k: v for k, v in hit_usage.items() if k != "x_router"} == {
        k: v for k, v in live_usage.items() if k != "x_router"
    }
    assert hit_usage["x_router"]["cost_usd"] == 0 < live_usage["x_router"]["cost_usd"]


def test_a_tool_call_answer_is_cached_and_replayed_as_tool_call_chunks(router: Router) -> None:
    enable_cache(router)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    ask: dict[str, Any] = {"tools": tools, "tool_choice": "required"}

    first = call(router, "Weather in Paris?", **ask)
    second = call(router, "Weather in Paris?", **ask)
    streamed = call(router, "Weather in Paris?", stream=True, **ask)

    assert [r["headers"]["x-router-cache"] for r in (first, second, streamed)] == ["miss", "hit", "hit"]
    [call_made] = router.json(first)["choices"][0]["message"]["tool_calls"]
    assert router.json(second)["choices"][0]["message"]["tool_calls"] == [call_made]
    assert router.json(second)["choices"][0]["finish_reason"] == "tool_calls"
    chunks, done = sse(streamed["body"])
    [delta] = [c["choices"][0]["delta"]["tool_calls"] for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
    assert done and delta == [{"index": 0, **call_made}]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_the_router_function_writes_a_miss_after_its_response_under_the_streaming_loop(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    from pathlib import Path

    from llm_router.runtime import AFTER_RESPONSE_HOOK
    from tests.helpers import api_event

    # Given the router function's own handler, as the stack configures it (served by the streaming runtime loop)
    enable_cache(router)
    monkeypatch.setenv("LLM_ROUTER_STREAMING_RESPONSES", "true")
    spec = importlib.util.spec_from_file_location(
        "router_handler", Path(__file__).resolve().parents[2] / "functions/router/handler.py"
    )
    assert spec is not None and spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)

    def invoke() -> dict[str, Any]:
        event = api_event({"model": "auto", "messages": [{"role": "user", "content": QUESTION}]})
        event["requestContext"]["authorizer"] = {"principalId": "local", "tenant": "local", "scope": "admin"}
        response: dict[str, Any] = handler.lambda_handler(event, _Context())
        return response

    # When a miss is answered
    first = invoke()

    # Then its entry is not written yet when the response is handed back, but waits for the loop
    assert first["headers"]["x-router-cache"] == "miss"
    assert len(handler.deferred) == 1
    assert DynamoResponseCache(DEFAULT_STATE_TABLE).stats().entries == 0
    # And once the loop has called the handler's after-response hook, the entry is there and the request hits
    getattr(handler.lambda_handler, AFTER_RESPONSE_HOOK)()
    assert len(handler.deferred) == 0
    assert DynamoResponseCache(DEFAULT_STATE_TABLE).stats().entries == 1
    assert invoke()["headers"]["x-router-cache"] == "hit"
    assert len(handler.deferred) == 0
    # And what a caller that never calls the hook leaves behind runs before the next request
    invoke_other = api_event({"model": "auto", "messages": [{"role": "user", "content": "Another question"}]})
    invoke_other["requestContext"]["authorizer"] = {"principalId": "local", "tenant": "local", "scope": "admin"}
    handler.lambda_handler(invoke_other, _Context())
    assert len(handler.deferred) == 1
    invoke()
    assert len(handler.deferred) == 0 and DynamoResponseCache(DEFAULT_STATE_TABLE).stats().entries == 2


class _Context:
    function_name = "router"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:router"
    aws_request_id = "req-1"
