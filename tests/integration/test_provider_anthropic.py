"""AnthropicProvider over real sockets against a fake Messages API on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from llm_router.providers.anthropic import AnthropicProvider
from llm_router.providers.base import (
    ContextWindowExceeded,
    Deadline,
    InvalidRequest,
    ProviderAuthError,
    ProviderError,
    RetryableError,
)
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.streams import Assembled, assemble, eventually

KEY = "sk-ant-test-0123456789"
PNG = base64.b64encode(b"\x89PNG-bytes").decode()


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic(api_key=KEY).start()
    yield server
    server.stop()


def spec(fake: FakeAnthropic, **fields: Any) -> ModelSpec:
    values: dict[str, Any] = {
        "id": "claude",
        "provider": "anthropic",
        "model_id": "claude-haiku-4-5",
        "base_url": fake.url,
        "api_key_ref": "FAKE_ANTHROPIC_KEY",
        "capabilities": ["tools", "images", "json"],
        **fields,
    }
    return ModelSpec.model_validate(values)


def provider() -> AnthropicProvider:
    return AnthropicProvider({"FAKE_ANTHROPIC_KEY": KEY}, allow_loopback_http=True)


def request(**body: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "Hello!"}], **body}
    )


def test_answers_with_text_and_usage_including_cache_reads(fake: FakeAnthropic) -> None:
    fake.cached_tokens = 3

    answer = provider().complete(request(), spec(fake), Deadline(10))

    assert answer.content == "claude-haiku-4-5 heard: Hello!"
    assert answer.finish_reason == "stop"
    assert answer.usage is not None and answer.usage.cache_read_tokens == 3
    sent = fake.requests[0]
    assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["max_tokens"] == 4096


def test_base_url_with_or_without_v1_reaches_the_messages_endpoint(fake: FakeAnthropic) -> None:
    provider().complete(request(), spec(fake, base_url=f"{fake.url}/v1/"), Deadline(10))

    assert fake.requests[0].path == "/v1/messages"


def test_tool_use_round_trips_through_tool_results(fake: FakeAnthropic) -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    first = provider().complete(request(tools=tools), spec(fake), Deadline(10))

    assert first.finish_reason == "tool_calls" and first.tool_calls is not None
    call = first.tool_calls[0]
    assert call["id"].startswith("toolu_")
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}

    history = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"},
    ]
    second = provider().complete(request(messages=history, tools=tools), spec(fake), Deadline(10))

    assert second.content == "The tool said: 18C and sunny"
    sent = fake.requests[1].body
    assert sent["system"] == "You are terse."
    assert sent["messages"][1]["content"][0]["id"] == call["id"]


def test_images_are_sent_as_base64_blocks(fake: FakeAnthropic) -> None:
    content = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]

    answer = provider().complete(request(messages=[{"role": "user", "content": content}]), spec(fake), Deadline(10))

    assert answer.content == "claude-haiku-4-5 heard: What is it? (and saw 1 image)"
    assert fake.requests[0].body["messages"][0]["content"][1]["source"]["data"] == PNG


def test_json_schema_comes_back_as_json_content(fake: FakeAnthropic) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}

    answer = provider().complete(request(response_format=fmt), spec(fake), Deadline(10))

    assert json.loads(answer.content or "") == {"answer": "claude-haiku-4-5 heard: Hello!"}
    assert answer.tool_calls is None and answer.finish_reason == "stop"


@pytest.mark.parametrize(
    ("mode", "status", "kind"),
    [("throttle", 429, "throttle"), ("overloaded", 529, "overloaded"), ("server_error", 500, "server_error")],
)
def test_busy_and_failing_api_is_retryable(fake: FakeAnthropic, mode: str, status: int, kind: str) -> None:
    fake.mode = mode

    with pytest.raises(RetryableError) as caught:
        provider().complete(request(), spec(fake), Deadline(10))

    assert (caught.value.status, caught.value.kind) == (status, kind)
    assert caught.value.retry_after == (1.0 if mode == "throttle" else None)


@pytest.mark.parametrize(
    ("mode", "kind"), [("slow", "timeout"), ("drop", "connection"), ("malformed", "malformed_response")]
)
def test_transport_problems_are_retryable(fake: FakeAnthropic, mode: str, kind: str) -> None:
    fake.mode, fake.slow_seconds = mode, 30

    with pytest.raises(RetryableError) as caught:
        provider().complete(request(), spec(fake), Deadline(0.5 if mode == "slow" else 10))

    assert caught.value.kind == kind


def test_prompt_too_long_is_a_context_overflow(fake: FakeAnthropic) -> None:
    fake.context_windows = {"claude-haiku-4-5": 10}

    with pytest.raises(ContextWindowExceeded):
        provider().complete(request(messages=[{"role": "user", "content": "x" * 400}]), spec(fake), Deadline(10))


def test_invalid_request_is_the_callers_error(fake: FakeAnthropic) -> None:
    fake.mode = "bad_request"

    with pytest.raises(InvalidRequest) as caught:
        provider().complete(request(), spec(fake), Deadline(10))

    assert caught.value.status == 400


@pytest.mark.parametrize("mode", ["auth", "not_found"])
def test_wrong_key_or_model_is_a_configuration_error(fake: FakeAnthropic, mode: str) -> None:
    fake.mode = mode

    with pytest.raises(ProviderAuthError) as caught:
        provider().complete(request(), spec(fake), Deadline(10))

    assert KEY not in str(caught.value)


# -- streaming -----------------------------------------------------------------------------------------------
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "reply", "schema": {"type": "object"}}}


@pytest.mark.parametrize(
    "body", [{}, {"tools": TOOLS}, {"response_format": JSON_SCHEMA}], ids=["text", "tool_use", "json_schema"]
)
def test_a_reassembled_stream_is_the_complete_answer(fake: FakeAnthropic, body: dict[str, Any]) -> None:
    fake.cached_tokens = 3

    streamed = assemble(provider().stream(request(**body), spec(fake), Deadline(10)))
    completed = provider().complete(request(**body), spec(fake), Deadline(10))

    assert streamed.same_answer() == Assembled.of(completed).same_answer()
    assert streamed.usage is not None and streamed.usage.cache_read_tokens == 3
    assert fake.requests[0].body["stream"] is True and "stream" not in fake.requests[1].body
    assert len(streamed.deltas) > 5


def test_deltas_arrive_while_the_upstream_is_still_writing(fake: FakeAnthropic) -> None:
    fake.stream_chunks, fake.stream_interval = 20, 0.05
    deltas = provider().stream(request(), spec(fake), Deadline(10))

    first = next(deltas)

    assert first.content and not fake.streams[0].completed and len(fake.streams[0].times) < 10
    assert assemble([first, *deltas]).content == "claude-haiku-4-5 heard: Hello!"


@pytest.mark.parametrize(
    ("mode", "error", "kind"),
    [
        ("overloaded", RetryableError, "overloaded"),
        ("throttle", RetryableError, "throttle"),
        ("auth", ProviderAuthError, "auth"),
        ("bad_request", InvalidRequest, "invalid_request"),
    ],
)
def test_failures_before_the_first_byte_raise_the_same_typed_errors_as_complete(
    fake: FakeAnthropic, mode: str, error: type[ProviderError], kind: str
) -> None:
    fake.mode = mode

    with pytest.raises(error) as streamed:
        next(provider().stream(request(), spec(fake), Deadline(10)))
    with pytest.raises(error) as completed:
        provider().complete(request(), spec(fake), Deadline(10))

    assert streamed.value.kind == completed.value.kind == kind
    assert streamed.value.status == completed.value.status


def test_an_overloaded_event_mid_stream_is_retryable(fake: FakeAnthropic) -> None:
    fake.mode, fake.stream_cut_after = "stream_error", 5  # start, ping, block start, then two text pieces
    deltas = provider().stream(request(), spec(fake), Deadline(10))
    next(deltas)

    with pytest.raises(RetryableError) as caught:
        list(deltas)

    assert (caught.value.kind, caught.value.status) == ("overloaded", 529)


def test_a_connection_cut_mid_stream_raises_from_a_later_next(fake: FakeAnthropic) -> None:
    fake.mode, fake.stream_cut_after = "stream_cut", 5
    deltas = provider().stream(request(), spec(fake), Deadline(10))
    next(deltas)

    with pytest.raises(RetryableError) as caught:
        list(deltas)

    assert caught.value.kind == "connection"


def test_closing_the_stream_early_closes_the_upstream_connection(fake: FakeAnthropic) -> None:
    fake.stream_interval = 0.05
    deltas = provider().stream(request(), spec(fake), Deadline(10))
    next(deltas)

    deltas.close()

    assert eventually(lambda: fake.streams[0].aborted)
    assert not fake.streams[0].completed
