"""OpenAICompatProvider over real sockets against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from llm_router.providers.base import (
    ContextWindowExceeded,
    Deadline,
    InvalidRequest,
    ProviderAuthError,
    ProviderError,
    RetryableError,
)
from llm_router.providers.openai_compat import OpenAICompatProvider
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.streams import Assembled, assemble, eventually

KEY = "sk-test-openai-0123456789"
PNG = base64.b64encode(b"\x89PNG-bytes").decode()


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(api_key=KEY).start()
    yield server
    server.stop()


def spec(fake: FakeOpenAI, **fields: Any) -> ModelSpec:
    values: dict[str, Any] = {
        "id": "small",
        "provider": "openai",
        "model_id": "gpt-4o-mini",
        "base_url": f"{fake.url}/v1",
        "api_key_ref": "FAKE_OPENAI_KEY",
        **fields,
    }
    return ModelSpec.model_validate(values)


def provider(key: str | None = KEY, **options: Any) -> OpenAICompatProvider:
    return OpenAICompatProvider({"FAKE_OPENAI_KEY": key} if key else {}, allow_loopback_http=True, **options)


def request(**body: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "Hello!"}], **body}
    )


def test_answers_with_text_usage_and_the_model_that_answered(fake: FakeOpenAI) -> None:
    fake.cached_tokens = 2

    answer = provider().complete(request(), spec(fake), Deadline(10))

    assert answer.content == "gpt-4o-mini heard: Hello!"
    assert answer.finish_reason == "stop"
    assert answer.usage is not None and answer.usage.cache_read_tokens == 2 and answer.usage.input_tokens > 0
    assert answer.answered_by == "gpt-4o-mini-2024-07-18"
    sent = fake.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "gpt-4o-mini"


def test_tool_calls_and_tool_results_round_trip(fake: FakeOpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    first = provider().complete(request(tools=tools), spec(fake), Deadline(10))

    assert first.finish_reason == "tool_calls" and first.tool_calls is not None
    call = first.tool_calls[0]
    assert call["function"] == {"name": "weather", "arguments": json.dumps({"location": "Paris"})}

    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"},
    ]
    second = provider().complete(request(messages=history, tools=tools), spec(fake), Deadline(10))

    assert second.content == "The tool said: 18C and sunny"
    assert fake.requests[1].body["messages"][1]["tool_calls"][0]["id"] == call["id"]


def test_images_reach_the_server_unchanged(fake: FakeOpenAI) -> None:
    url = f"data:image/png;base64,{PNG}"
    content = [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": url}}]

    answer = provider().complete(request(messages=[{"role": "user", "content": content}]), spec(fake), Deadline(10))

    assert answer.content == "gpt-4o-mini heard: What is it? (and saw 1 image)"
    assert fake.requests[0].body["messages"][0]["content"][1]["image_url"]["url"] == url


def test_azure_style_entries_send_api_version_and_api_key_header(fake: FakeOpenAI) -> None:
    fake.api_key = None

    provider().complete(request(), spec(fake, api_version="2024-10-21", headers={"x-team": "a"}), Deadline(10))

    sent = fake.requests[0]
    assert sent.path == "/v1/chat/completions?api-version=2024-10-21"
    assert sent.headers["api-key"] == KEY and "authorization" not in sent.headers
    assert sent.headers["x-team"] == "a"


def test_a_server_without_keys_gets_no_auth_header(fake: FakeOpenAI) -> None:
    fake.api_key = None

    provider(None).complete(request(), spec(fake, api_key_ref=None), Deadline(10))

    assert "authorization" not in fake.requests[0].headers


def test_a_missing_key_is_a_configuration_error_that_names_only_the_reference(fake: FakeOpenAI) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        provider(None).complete(request(), spec(fake), Deadline(10))

    assert "FAKE_OPENAI_KEY" in caught.value.message
    assert fake.requests == []


def test_throttling_is_retryable_with_the_servers_retry_after(fake: FakeOpenAI) -> None:
    fake.mode, fake.retry_after = "throttle", "2"

    with pytest.raises(RetryableError) as caught:
        provider().complete(request(), spec(fake), Deadline(10))

    assert (caught.value.status, caught.value.kind, caught.value.retry_after) == (429, "throttle", 2.0)


@pytest.mark.parametrize(("mode", "kind"), [("server_error", "server_error"), ("overloaded", "server_error")])
def test_server_errors_are_retryable(fake: FakeOpenAI, mode: str, kind: str) -> None:
    fake.mode = mode

    with pytest.raises(RetryableError) as caught:
        provider().complete(request(), spec(fake), Deadline(10))

    assert caught.value.kind == kind


def test_a_slow_server_times_out_at_the_deadline(fake: FakeOpenAI) -> None:
    fake.mode, fake.slow_seconds = "slow", 30

    with pytest.raises(RetryableError) as caught:
        provider().complete(request(), spec(fake), Deadline(0.5))

    assert caught.value.kind == "timeout"


def test_a_dropped_connection_is_retryable(fake: FakeOpenAI) -> None:
    fake.mode = "drop"

    with pytest.raises(RetryableError) as caught:
        provider().complete(request(), spec(fake), Deadline(10))

    assert caught.value.kind == "connection"


def test_a_stopped_server_is_a_connection_error(fake: FakeOpenAI) -> None:
    model = spec(fake)
    provider().complete(request(), model, Deadline(10))  # leaves a pooled keep-alive connection behind
    fake.stop()

    with pytest.raises(RetryableError) as caught:
        provider().complete(request(), model, Deadline(10))

    assert caught.value.kind == "connection"


def test_malformed_json_is_retryable(fake: FakeOpenAI) -> None:
    fake.mode = "malformed"

    with pytest.raises(RetryableError) as caught:
        provider().complete(request(), spec(fake), Deadline(10))

    assert caught.value.kind == "malformed_response"


def test_context_length_exceeded_is_a_context_overflow(fake: FakeOpenAI) -> None:
    fake.context_windows = {"gpt-4o-mini": 10}

    with pytest.raises(ContextWindowExceeded):
        provider().complete(request(messages=[{"role": "user", "content": "x" * 400}]), spec(fake), Deadline(10))


def test_a_bad_request_is_the_callers_error_with_the_providers_message(fake: FakeOpenAI) -> None:
    fake.mode = "bad_request"

    with pytest.raises(InvalidRequest) as caught:
        provider().complete(request(), spec(fake), Deadline(10))

    assert caught.value.status == 400 and "temperature" in caught.value.message


@pytest.mark.parametrize("mode", ["auth", "not_found"])
def test_wrong_key_or_model_is_a_configuration_error_without_the_key(fake: FakeOpenAI, mode: str) -> None:
    fake.mode = mode

    with pytest.raises(ProviderAuthError) as caught:
        provider().complete(request(), spec(fake), Deadline(10))

    assert KEY not in str(caught.value) and KEY not in repr(caught.value)


# -- streaming -----------------------------------------------------------------------------------------------
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


def test_a_stream_asks_upstream_for_usage_while_complete_sends_no_stream_fields(fake: FakeOpenAI) -> None:
    list(provider().stream(request(stream=True, stream_options={"include_usage": False}), spec(fake), Deadline(10)))
    provider().complete(request(stream=True), spec(fake), Deadline(10))

    streamed, completed = fake.requests[0].body, fake.requests[1].body
    assert (streamed["stream"], streamed["stream_options"]) == (True, {"include_usage": True})
    assert "stream" not in completed and "stream_options" not in completed


@pytest.mark.parametrize("body", [{}, {"tools": TOOLS}], ids=["text", "tool_call"])
def test_a_reassembled_stream_is_the_complete_answer(fake: FakeOpenAI, body: dict[str, Any]) -> None:
    fake.cached_tokens = 2

    streamed = assemble(provider().stream(request(**body), spec(fake), Deadline(10)))
    completed = provider().complete(request(**body), spec(fake), Deadline(10))

    assert streamed.same_answer() == Assembled.of(completed).same_answer()
    assert streamed.usage is not None and streamed.usage.cache_read_tokens == 2
    assert len(streamed.deltas) > 5  # pieces, not one lump
    assert all(d.content or d.tool_calls or d.finish_reason or d.usage for d in streamed.deltas)


def test_deltas_arrive_while_the_upstream_is_still_writing(fake: FakeOpenAI) -> None:
    fake.stream_chunks, fake.stream_interval = 20, 0.05
    deltas = provider().stream(request(), spec(fake), Deadline(10))

    first = next(deltas)

    written = fake.streams[0]
    assert first.content and not written.completed and len(written.times) < 10
    assert assemble([first, *deltas]).content == "gpt-4o-mini heard: Hello!"
    assert written.completed


def test_nothing_is_sent_until_the_first_next(fake: FakeOpenAI) -> None:
    deltas = provider().stream(request(), spec(fake), Deadline(10))
    assert fake.requests == []

    next(deltas)

    assert len(fake.requests) == 1
    deltas.close()


@pytest.mark.parametrize(
    ("mode", "error", "kind"),
    [
        ("throttle", RetryableError, "throttle"),
        ("server_error", RetryableError, "server_error"),
        ("drop", RetryableError, "connection"),
        ("auth", ProviderAuthError, "auth"),
        ("bad_request", InvalidRequest, "invalid_request"),
    ],
)
def test_failures_before_the_first_byte_raise_the_same_typed_errors_as_complete(
    fake: FakeOpenAI, mode: str, error: type[ProviderError], kind: str
) -> None:
    fake.mode = mode

    with pytest.raises(error) as streamed:
        next(provider().stream(request(), spec(fake), Deadline(10)))
    with pytest.raises(error) as completed:
        provider().complete(request(), spec(fake), Deadline(10))

    assert streamed.value.kind == completed.value.kind == kind
    assert (streamed.value.status, streamed.value.message) == (completed.value.status, completed.value.message)


def test_context_overflow_before_the_stream_is_typed(fake: FakeOpenAI) -> None:
    fake.context_windows = {"gpt-4o-mini": 10}

    with pytest.raises(ContextWindowExceeded):
        next(provider().stream(request(messages=[{"role": "user", "content": "x" * 400}]), spec(fake), Deadline(10)))


def test_a_slow_first_byte_times_out_at_the_deadline(fake: FakeOpenAI) -> None:
    fake.mode, fake.slow_seconds = "slow", 30

    with pytest.raises(RetryableError) as caught:
        next(provider().stream(request(), spec(fake), Deadline(0.5)))

    assert caught.value.kind == "timeout"


def test_after_the_first_delta_reads_wait_for_the_idle_timeout_not_the_deadline(fake: FakeOpenAI) -> None:
    fake.stream_interval = 1.5  # longer than the idle timeout, shorter than the deadline
    deltas = provider(stream_idle_seconds=0.3).stream(request(), spec(fake), Deadline(30))
    next(deltas)

    with pytest.raises(RetryableError) as caught:
        next(deltas)

    assert caught.value.kind == "timeout"


def test_a_connection_cut_mid_stream_raises_a_retryable_error_from_a_later_next(fake: FakeOpenAI) -> None:
    fake.mode, fake.stream_cut_after = "stream_cut", 4
    deltas = provider().stream(request(), spec(fake), Deadline(10))
    received = [next(deltas)]

    with pytest.raises(RetryableError) as caught:
        received.extend(deltas)

    assert caught.value.kind == "connection"
    assert 1 <= len(received) <= 3  # the role chunk carries no delta


def test_an_error_event_mid_stream_is_a_typed_error(fake: FakeOpenAI) -> None:
    fake.mode = "stream_error"
    deltas = provider().stream(request(), spec(fake), Deadline(10))
    next(deltas)

    with pytest.raises(RetryableError) as caught:
        list(deltas)

    assert caught.value.kind == "server_error" and "server had an error" in caught.value.message


def test_closing_the_stream_early_closes_the_upstream_connection(fake: FakeOpenAI) -> None:
    fake.stream_interval = 0.05
    deltas = provider().stream(request(), spec(fake), Deadline(10))
    next(deltas)

    deltas.close()

    assert eventually(lambda: fake.streams[0].aborted)
    assert not fake.streams[0].completed
    assert provider().complete(request(), spec(fake), Deadline(10)).content  # the pool recovers


def test_a_finished_stream_leaves_its_connection_for_the_next_call(fake: FakeOpenAI) -> None:
    pool = urllib3.PoolManager(retries=False)
    list(provider(pool=pool).stream(request(), spec(fake), Deadline(10)))
    list(provider(pool=pool).stream(request(), spec(fake), Deadline(10)))

    assert fake.connections_seen == 1 and len(fake.requests) == 2
