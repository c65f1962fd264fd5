"""The router handler end to end in-process: routing from table items, errors, auth, headers, metrics."""

from __future__ import annotations

import json

import pytest

from tests.helpers import api_event, header
from tests.integration.conftest import Router


def test_greeting_and_python_prompt_are_routed_to_different_models(router: Router) -> None:
    greeting = router.chat("Hello there!")
    code = router.chat("Why does my Python script raise KeyError?")

    assert greeting["statusCode"] == 200 and code["statusCode"] == 200
    assert header(greeting, "x-router-model") == "nova-micro"
    # The example route is hybrid: a greeting no rule matches is left to the difficulty threshold.
    assert header(greeting, "x-router-rule") == "threshold"
    assert header(code, "x-router-model") == "claude-haiku"
    assert header(code, "x-router-rule") == "code-to-haiku"
    assert router.json(code)["model"] == "claude-haiku"


def test_answer_is_a_chat_completion_with_router_headers(router: Router) -> None:
    response = router.chat("Hello!")

    body = router.json(response)
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert header(response, "x-router-simulated") == "true"
    assert header(response, "x-router-attempts") == "1"
    assert float(header(response, "x-router-cost-usd") or "nan") > 0
    assert header(response, "x-router-request-id") == body["id"].removeprefix("chatcmpl-")


def test_personal_data_stays_in_the_eu(router: Router) -> None:
    response = router.chat("Please email the invoice to jane.doe@example.com")

    assert header(response, "x-router-model") == "eu-nova-lite"
    assert header(response, "x-router-rule") == "pii-stays-in-eu"


def test_dry_run_explains_the_decision_without_calling_a_model(router: Router) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "fix this python traceback"}]}
    response = router.call(body, path="/v1/route")

    explained = router.json(response)
    assert response["statusCode"] == 200
    assert explained["rule"] == "code-to-haiku"
    assert explained["would_try"] == ["claude-haiku", "claude-sonnet"]
    assert explained["trace"][0] == {"rule": "pii-stays-in-eu", "matched": False, "why": "no PII found"}
    assert explained["trace"][1]["matched"] is True and "python" in explained["trace"][1]["why"]
    assert router.metric_values("Requests") == []


def test_streaming_returns_server_sent_events_ending_in_done(router: Router) -> None:
    response = router.chat("Hello!", stream=True, stream_options={"include_usage": True})

    assert response["statusCode"] == 200
    assert header(response, "content-type") == "text/event-stream"
    events = [line.removeprefix("data: ") for line in response["body"].split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text.startswith("[simulated nova-micro]")
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_a_streamed_request_with_an_idempotency_key_is_answered_in_one_piece_and_replayed(router: Router) -> None:
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "Hello!"}]}
    assert router.local is not None
    first = router.local.invoke(api_event(body, headers={"Idempotency-Key": "stream-1"}))
    again = router.local.invoke(api_event(body, headers={"Idempotency-Key": "stream-1"}))

    # Kept whole under its key: a plain response (not a stream), the same events both times, paid for once.
    assert isinstance(first, dict) and isinstance(again, dict)
    assert header(first, "content-type") == "text/event-stream"
    assert first["body"] == again["body"] and first["body"].endswith("data: [DONE]\n\n")
    assert header(again, "x-router-idempotent-replay") == "true"
    assert header(first, "x-router-idempotent-replay") is None
    assert router.metric_values("Requests") == [1.0]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ("{not json", None, "not valid JSON"),
        ("[1, 2]", None, "JSON object"),
        ({"model": "auto", "messages": []}, "messages", "at least 1 item"),
        ({"model": "auto"}, "messages", "Field required"),
        ({"model": "auto", "messages": "hi"}, "messages", "messages"),
        (
            {"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
            "number",
        ),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "n": 3}, "n", "only n=1"),
        ({"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}, "messages", "role"),
        ({"model": "auto", "messages": [{"role": "tool", "content": "x"}]}, "messages", "tool_call_id"),
    ],
)
def test_malformed_bodies_get_400_naming_the_problem(
    router: Router, body: object, param: str | None, fragment: str
) -> None:
    response = router.call(body)

    error = router.json(response)["error"]
    assert response["statusCode"] == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert fragment in error["message"]


def test_body_over_the_size_limit_is_refused(router: Router) -> None:
    router.env["MAX_BODY_BYTES"] = "200"
    response = router.build().chat("x" * 500)

    assert response["statusCode"] == 400
    assert router.json(response)["error"]["code"] == "request_too_large"


def test_unknown_model_gets_404(router: Router) -> None:
    response = router.call({"model": "gpt-99", "messages": [{"role": "user", "content": "x"}]})

    assert response["statusCode"] == 404
    assert router.json(response)["error"]["code"] == "model_not_found"


def test_unknown_path_gets_openai_style_404(router: Router) -> None:
    response = router.call({}, path="/v1/embeddings")

    assert response["statusCode"] == 404
    assert "Unknown endpoint" in router.json(response)["error"]["message"]


@pytest.mark.parametrize("key", [None, "sk-wrong", ""])
def test_missing_or_wrong_key_gets_401(router: Router, key: str | None) -> None:
    response = router.call({"model": "auto", "messages": [{"role": "user", "content": "x"}]}, key=key)

    assert response["statusCode"] == 401
    assert router.json(response)["error"]["code"] == "invalid_api_key"


def test_revoked_key_stops_working_and_new_key_carries_its_tenant(router: Router) -> None:
    key, record = router.keys.create("team-a")
    ok = router.call({"model": "auto", "messages": [{"role": "user", "content": "x"}]}, key=key)
    router.keys.revoke(record.prefix)
    refused = router.call({"model": "auto", "messages": [{"role": "user", "content": "x"}]}, key=key)

    assert ok["statusCode"] == 200
    assert refused["statusCode"] == 401
    assert router.emitted[-1]["tenant"] == "team-a"


def test_health_needs_no_key(router: Router) -> None:
    response = router.call(None, path="/health", method="GET", key=None)

    assert response["statusCode"] == 200
    assert router.json(response) == {"status": "ok"}


def test_models_lists_routes_and_catalog(router: Router) -> None:
    ids = [m["id"] for m in router.json(router.call(None, path="/v1/models", method="GET"))["data"]]

    assert "auto" in ids and "nova-micro" in ids and "claude-sonnet" in ids


def test_router_without_authorizer_context_refuses(router: Router) -> None:
    from tests.helpers import api_event

    assert router.local is not None
    response = router.local.api.handle(api_event({"model": "auto", "messages": [{"role": "user", "content": "x"}]}))

    assert response["statusCode"] == 401


def test_metrics_keep_dimension_sets_apart(router: Router) -> None:
    router.chat("Hello!")

    document = router.emitted[-1]
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "LlmRouter"
    assert directive["Dimensions"] == [["service"], ["Model"], ["Route"], ["Provider"]]
    names = {m["Name"] for m in directive["Metrics"]}
    assert {"Requests", "InputTokens", "OutputTokens", "CostUSD", "SavedUSD", "LatencyMs", "RouterOverheadMs"} <= names
    assert document["Model"] == "nova-micro" and document["Route"] == "auto"
    assert document["tenant"] == "local" and document["rule"] == "threshold"


def test_cost_and_savings_follow_catalog_prices(router: Router) -> None:
    response = router.chat("Hello!")

    usage = router.json(response)["usage"]
    expected = (usage["prompt_tokens"] * 0.035 + usage["completion_tokens"] * 0.14) / 1e6
    baseline = (usage["prompt_tokens"] * 3.0 + usage["completion_tokens"] * 15.0) / 1e6
    assert float(header(response, "x-router-cost-usd") or 0) == pytest.approx(expected, abs=1e-8)
    assert float(header(response, "x-router-saved-usd") or 0) == pytest.approx(baseline - expected, abs=1e-8)


def test_pinned_model_skips_rules_but_keeps_its_fallbacks(router: Router) -> None:
    body = {"model": "nova-micro", "messages": [{"role": "user", "content": "python traceback"}]}
    explained = router.json(router.call(body, path="/v1/route"))

    assert explained["rule"] == "pinned"
    assert explained["candidates"] == ["nova-micro", "claude-haiku"]


def test_a_known_path_with_the_wrong_method_is_405_naming_the_allowed_one(router: Router) -> None:
    response = router.call({"model": "auto"}, path="/v1/chat/completions", method="DELETE")

    assert response["statusCode"] == 405
    assert header(response, "Allow") == "POST"
    assert router.json(response)["error"]["code"] == "method_not_allowed"


def test_an_unknown_path_is_404_in_the_openai_error_format(router: Router) -> None:
    response = router.call(None, path="/v1/nope", method="GET")

    assert response["statusCode"] == 404
    assert router.json(response)["error"] == {
        "message": "Unknown endpoint: GET /v1/nope. Try POST /v1/chat/completions.",
        "type": "invalid_request_error",
        "param": None,
        "code": "unknown_url",
    }
