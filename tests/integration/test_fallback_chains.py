"""Fallback chains through the real handler: fake APIs on 127.0.0.1 fail in real ways, the router keeps answering."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from llm_router.gateway import CircuitBreaker
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.router import anthropic_model, openai_model, router_with
from tests.helpers import header
from tests.integration.conftest import Router

OPENAI_KEY = "sk-fake-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-fake-0123456789abcdef"
KEYS = {"LLM_ROUTER_KEY_FAKE_OPENAI_KEY": OPENAI_KEY, "LLM_ROUTER_KEY_FAKE_ANTHROPIC_KEY": ANTHROPIC_KEY}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image").decode()


@pytest.fixture
def fakes() -> Iterator[dict[str, Any]]:
    servers: dict[str, Any] = {
        "primary": FakeOpenAI(api_key=OPENAI_KEY).start(),
        "secondary": FakeOpenAI(api_key=OPENAI_KEY).start(),
        "claude": FakeAnthropic(api_key=ANTHROPIC_KEY).start(),
    }
    yield servers
    for server in servers.values():
        server.stop()


def config(fakes: dict[str, Any], default: list[str], **overrides: dict[str, Any]) -> dict[str, Any]:
    models = [
        openai_model("primary", fakes["primary"].url, **overrides.get("primary", {})),
        openai_model("secondary", fakes["secondary"].url, **overrides.get("secondary", {})),
        anthropic_model("claude", fakes["claude"].url, **overrides.get("claude", {})),
    ]
    return {"models": models, "routes": [{"id": "auto", "default": default}], "rules": []}


@pytest.fixture
def router(fakes: dict[str, Any]) -> Iterator[Router]:
    with router_with(config(fakes, ["primary", "secondary"]), KEYS) as r:
        yield r


def provider_errors(router: Router) -> list[tuple[str, str]]:
    return [(d["Provider"], d["ErrorKind"]) for d in router.emitted if "ProviderErrors" in d]


def test_primary_server_error_is_answered_by_the_secondary(router: Router, fakes: dict[str, Any]) -> None:
    fakes["primary"].mode = "server_error"

    response = router.chat("Hello!")

    assert response["statusCode"] == 200
    assert header(response, "x-router-model") == "secondary"
    assert header(response, "x-router-attempts") == "3"  # primary, primary once more, secondary
    assert router.json(response)["choices"][0]["message"]["content"] == "gpt-4o-mini heard: Hello!"
    assert len(fakes["primary"].requests) == 2
    assert provider_errors(router) == [("openai", "server_error"), ("openai", "server_error")]
    assert router.metric_values("Fallbacks") == [2.0]


@pytest.mark.parametrize("mode", ["drop", "malformed", "overloaded"])
def test_transport_failures_of_the_primary_fall_back(router: Router, fakes: dict[str, Any], mode: str) -> None:
    fakes["primary"].mode = mode

    response = router.chat("Hello!")

    assert response["statusCode"] == 200
    assert header(response, "x-router-model") == "secondary"


def test_a_stopped_primary_falls_back(router: Router, fakes: dict[str, Any]) -> None:
    assert header(router.chat("Hello!"), "x-router-model") == "primary"
    fakes["primary"].stop()

    response = router.chat("Hello again!")

    assert response["statusCode"] == 200
    assert header(response, "x-router-model") == "secondary"


def test_a_long_retry_after_moves_on_at_once_and_rests_the_model(router: Router, fakes: dict[str, Any]) -> None:
    fakes["primary"].mode, fakes["primary"].retry_after = "throttle", "60"

    first = router.chat("Hello!")
    second = router.chat("Hello again!")

    assert header(first, "x-router-model") == header(second, "x-router-model") == "secondary"
    assert header(first, "x-router-attempts") == "2"  # no second try of the throttled model
    assert len(fakes["primary"].requests) == 1  # the second request did not call it while it rests
    attempts = router.gateway.breaker
    assert not attempts.allow("primary")


def test_a_short_retry_after_is_waited_for_and_the_same_model_answers(router: Router, fakes: dict[str, Any]) -> None:
    fakes["primary"].script("throttle")
    fakes["primary"].retry_after = "0"
    waits: list[float] = []
    router.build(sleep=waits.append)

    response = router.chat("Hello!")

    assert header(response, "x-router-model") == "primary"
    assert header(response, "x-router-attempts") == "2"
    assert waits == [0.0]


def test_a_request_error_from_the_provider_is_returned_not_retried(router: Router, fakes: dict[str, Any]) -> None:
    fakes["primary"].mode = "bad_request"

    response = router.chat("Hello!")

    assert response["statusCode"] == 400
    error = router.json(response)["error"]
    assert error["type"] == "invalid_request_error" and "temperature" in error["message"]
    assert header(response, "x-router-model") == "primary"
    assert len(fakes["primary"].requests) == 1 and fakes["secondary"].requests == []


def test_a_wrong_key_is_counted_and_fallen_back_from(fakes: dict[str, Any]) -> None:
    doc = config(fakes, ["primary", "claude"], primary={"api_key_ref": "WRONG_KEY"})
    with router_with(doc, {**KEYS, "LLM_ROUTER_KEY_WRONG_KEY": "sk-wrong-0123456789"}) as router:
        response = router.chat("Hello!")

        assert response["statusCode"] == 200
        assert header(response, "x-router-model") == "claude"
        assert header(response, "x-router-attempts") == "2"  # configuration errors are not retried
        assert provider_errors(router) == [("openai", "auth")]


def test_keys_never_reach_the_caller_or_the_logs(fakes: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    fakes["primary"].mode = fakes["claude"].mode = "auth"
    with router_with(config(fakes, ["primary", "claude"]), KEYS) as router:
        response = router.chat("Hello!")

    assert response["statusCode"] == 503
    out = capsys.readouterr()
    for key in KEYS.values():
        assert key not in response["body"] and key not in out.out + out.err
    assert {a["kind"] for a in router.json(response)["error"]["attempts"]} == {"auth"}


def test_context_overflow_moves_on_to_a_larger_window_only(fakes: dict[str, Any]) -> None:
    # The catalog believes both OpenAI models hold 8k tokens; the primary's server says the prompt is too long.
    doc = config(
        fakes,
        ["primary", "secondary", "claude"],
        primary={"context_window": 8000},
        secondary={"context_window": 8000},
    )
    fakes["primary"].context_windows = {"gpt-4o-mini": 500}
    with router_with(doc, KEYS) as router:
        response = router.chat("word " * 1000)

    assert response["statusCode"] == 200
    assert header(response, "x-router-model") == "claude"
    assert header(response, "x-router-attempts") == "3"  # primary overflowed, secondary skipped, claude answered
    assert fakes["secondary"].requests == []
    assert len(fakes["primary"].requests) == 1  # an overflow is not retried on the same model


def test_a_window_known_to_be_too_small_is_skipped_up_front(fakes: dict[str, Any]) -> None:
    doc = config(fakes, ["primary", "claude"], primary={"context_window": 1000})
    with router_with(doc, KEYS) as router:
        response = router.chat("word " * 2000)

    assert header(response, "x-router-model") == "claude"
    assert header(response, "x-router-attempts") == "1"
    assert fakes["primary"].requests == []


def test_circuit_opens_after_repeated_failures_and_closes_after_a_good_trial(
    router: Router, fakes: dict[str, Any]
) -> None:
    now = [0.0]
    router.build(breaker=CircuitBreaker(threshold=2, cooldown=10, clock=lambda: now[0]))
    fakes["primary"].mode = "server_error"

    assert header(router.chat("one"), "x-router-model") == "secondary"  # two failures: the circuit opens
    calls = len(fakes["primary"].requests)
    resting = router.chat("two")
    assert header(resting, "x-router-model") == "secondary"
    assert len(fakes["primary"].requests) == calls  # skipped without a call while open

    fakes["primary"].mode = "ok"
    now[0] = 11  # cooldown over: one trial request
    assert header(router.chat("three"), "x-router-model") == "primary"
    assert header(router.chat("four"), "x-router-model") == "primary"  # closed again


@pytest.mark.parametrize("target", ["primary", "claude"])
def test_tools_survive_translation_both_ways(fakes: dict[str, Any], target: str) -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    with router_with(config(fakes, [target]), KEYS) as router:
        first = router.json(router.chat("Weather in Paris?", tools=tools))
        call = first["choices"][0]["message"]["tool_calls"][0]
        history = [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "18C"},
        ]
        second = router.json(router.call({"model": "auto", "messages": history, "tools": tools}))

    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert call["type"] == "function" and call["function"]["name"] == "weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    assert second["choices"][0]["message"]["content"] == "The tool said: 18C"


@pytest.mark.parametrize("target", ["primary", "claude"])
def test_images_survive_translation(fakes: dict[str, Any], target: str) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    with router_with(config(fakes, [target]), KEYS) as router:
        response = router.call({"model": "auto", "messages": [{"role": "user", "content": content}]})

    assert router.json(response)["choices"][0]["message"]["content"].endswith("What is this? (and saw 1 image)")


@pytest.mark.parametrize(("mode", "kind"), [("stream_cut", "connection"), ("stream_error", "server_error")])
def test_a_stream_that_breaks_after_its_status_but_before_its_first_token_falls_back(
    router: Router, fakes: dict[str, Any], mode: str, kind: str
) -> None:
    # The primary says 200 and the router prepares the stream's headers and chunks for it while it waits; the
    # primary then fails before any text. Nothing of that preparation may show: the secondary's stream is sent.
    fakes["primary"].mode, fakes["primary"].stream_cut_after = mode, 1  # its opening (role-only) chunk, then not

    response = router.chat("Hello!", stream=True, stream_options={"include_usage": True})

    assert response["statusCode"] == 200
    assert header(response, "x-router-model") == "secondary"
    assert header(response, "x-router-attempts") == "3"  # primary, primary once more, secondary
    events = [json.loads(line[6:]) for line in response["body"].split("\n") if line.startswith("data: {")]
    assert {event["model"] for event in events} == {"secondary"}
    assert len({event["id"] for event in events}) == 1
    assert "".join(c["delta"].get("content") or "" for e in events for c in e["choices"]) == (
        "gpt-4o-mini heard: Hello!"
    )
    assert len(fakes["primary"].requests) == 2
    assert provider_errors(router)[:2] == [("openai", kind), ("openai", kind)]
