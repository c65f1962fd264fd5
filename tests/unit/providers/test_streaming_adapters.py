"""Streams without sockets: the simulated provider, and Bedrock's event translation on ConverseStream event dicts
(botocore's Stubber cannot return an event stream; the loopback tests cover the bytes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from llm_router.providers.base import ContextWindowExceeded, Deadline, ProviderAuthError, RetryableError, Usage
from llm_router.providers.bedrock import BedrockProvider, StreamTranslator
from llm_router.providers.simulated import SimulatedProvider
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest
from tests.fakes.streams import Assembled, assemble

TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


def request(**body: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "Hello there!"}], **body}
    )


def simulated(**simulate: Any) -> ModelSpec:
    return ModelSpec.model_validate({"id": "sim", "provider": "simulated", "model_id": "sim", "simulate": simulate})


# -- simulated -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [{}, {"tools": TOOLS, "tool_choice": "required"}], ids=["text", "tool_call"])
def test_a_simulated_stream_reassembles_to_the_complete_answer(body: dict[str, Any]) -> None:
    provider = SimulatedProvider(lambda seconds: None)

    streamed = assemble(provider.stream(request(**body), simulated(), Deadline(5)))
    completed = provider.complete(request(**body), simulated(), Deadline(5))

    assert streamed.same_answer() == Assembled.of(completed).same_answer()
    assert all(d.simulated for d in streamed.deltas)
    assert streamed.deltas[-2].finish_reason and streamed.deltas[-1].usage  # finish, then usage, last


def test_simulated_text_streams_a_word_at_a_time_with_the_configured_pause() -> None:
    pauses: list[float] = []

    deltas = list(SimulatedProvider(pauses.append).stream(request(), simulated(chunk_delay_ms=40), Deadline(5)))

    words = [d.content for d in deltas if d.content]
    assert len(words) > 10 and all(len(w.split()) == 1 for w in words)
    assert pauses == [0.04] * (len(deltas) - 1)


def test_the_providers_chunk_delay_replaces_the_catalogs() -> None:
    pauses: list[float] = []

    list(
        SimulatedProvider(pauses.append, chunk_delay_ms=5).stream(request(), simulated(chunk_delay_ms=400), Deadline(5))
    )

    assert set(pauses) == {0.005}


def test_simulated_failures_come_before_the_first_delta() -> None:
    deltas = SimulatedProvider(lambda seconds: None).stream(request(), simulated(failure="throttle"), Deadline(5))

    with pytest.raises(RetryableError) as caught:
        next(deltas)

    assert caught.value.kind == "throttle"


def test_an_interrupted_simulated_stream_breaks_off_after_its_chunks() -> None:
    model = simulated(failure="interrupted", failure_after_chunks=4)
    deltas = SimulatedProvider(lambda seconds: None).stream(request(), model, Deadline(5))
    received = [next(deltas) for _ in range(4)]

    with pytest.raises(RetryableError) as caught:
        next(deltas)

    assert caught.value.kind == "connection" and all(d.content for d in received)


def test_an_interrupted_simulated_model_fails_a_complete_answer_as_a_server_error() -> None:
    with pytest.raises(RetryableError) as caught:
        SimulatedProvider(lambda seconds: None).complete(request(), simulated(failure="interrupted"), Deadline(5))

    assert caught.value.kind == "server_error"


# -- Bedrock event translation -------------------------------------------------------------------------------
BEDROCK = ModelSpec.model_validate(
    {"id": "nova", "provider": "bedrock", "model_id": "amazon.nova-pro-v1:0", "capabilities": ["tools", "json"]}
)
EVENTS: list[dict[str, Any]] = [
    {"messageStart": {"role": "assistant"}},
    {"contentBlockDelta": {"delta": {"reasoningContent": {"text": "thinking..."}}, "contentBlockIndex": 0}},
    {"contentBlockDelta": {"delta": {"text": "Let me "}, "contentBlockIndex": 1}},
    {"contentBlockDelta": {"delta": {"text": "check."}, "contentBlockIndex": 1}},
    {"contentBlockStop": {"contentBlockIndex": 1}},
    {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t1", "name": "weather"}}, "contentBlockIndex": 2}},
    {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city": '}}, "contentBlockIndex": 2}},
    {"contentBlockDelta": {"delta": {"toolUse": {"input": '"Paris"}'}}, "contentBlockIndex": 2}},
    {"contentBlockStop": {"contentBlockIndex": 2}},
    {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t2", "name": "clock"}}, "contentBlockIndex": 3}},
    {"contentBlockStop": {"contentBlockIndex": 3}},
    {"messageStop": {"stopReason": "tool_use"}},
    {
        "metadata": {
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45, "cacheReadInputTokens": 30},
            "metrics": {"latencyMs": 100},
            "trace": {"promptRouter": {"invokedModelId": "amazon.nova-lite-v1:0"}},
        }
    },
]


def translate(events: list[dict[str, Any]], *, json_tool: bool = False) -> Assembled:
    translator = StreamTranslator(BEDROCK, json_tool=json_tool)
    return assemble(d for d in map(translator.translate, events) if d is not None)


def test_converse_stream_events_become_text_tool_calls_finish_usage_and_the_routed_model() -> None:
    answer = translate(EVENTS)

    assert answer.content == "Let me check."
    assert answer.tool_calls == [
        {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
        {"id": "t2", "type": "function", "function": {"name": "clock", "arguments": "{}"}},
    ]
    assert answer.finish_reason == "tool_calls"
    assert answer.usage == Usage(input_tokens=10, output_tokens=5, cache_read_tokens=30)
    assert answer.answered_by == "amazon.nova-lite-v1:0"


def test_tool_call_indexes_count_tool_calls_not_content_blocks() -> None:
    indexes = [c["index"] for d in translate(EVENTS).deltas for c in d.tool_calls or []]

    assert sorted(set(indexes)) == [0, 1]


def test_the_forced_json_tool_streams_as_text() -> None:
    events: list[dict[str, Any]] = [
        {
            "contentBlockStart": {
                "start": {"toolUse": {"toolUseId": "j", "name": "json_response"}},
                "contentBlockIndex": 0,
            }
        },
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"answer": 1}'}}, "contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "tool_use"}},
    ]

    answer = translate(events, json_tool=True)

    assert (answer.content, answer.tool_calls, answer.finish_reason) == ('{"answer": 1}', None, "stop")


@pytest.mark.parametrize(
    ("stop", "error"),
    [("model_context_window_exceeded", ContextWindowExceeded), ("malformed_tool_use", RetryableError)],
)
def test_stop_reasons_that_converse_fails_on_fail_the_stream(stop: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        translate([{"messageStop": {"stopReason": stop}}])


class _EventList:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events, self.closed = events, False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.events)

    def close(self) -> None:
        self.closed = True


class _Client:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.stream = _EventList(events)

    def converse_stream(self, **params: Any) -> dict[str, Any]:
        return {"stream": self.stream}


def test_a_stream_that_ends_before_message_stop_is_a_connection_error() -> None:
    client = _Client(EVENTS[:4])
    deltas = BedrockProvider(lambda region, timeout: client).stream(request(), BEDROCK, Deadline(5))

    with pytest.raises(RetryableError) as caught:
        list(deltas)

    assert caught.value.kind == "connection" and client.stream.closed


def test_converse_stream_client_errors_before_the_stream_are_typed() -> None:
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("converse_stream", service_error_code="AccessDeniedException", http_status_code=403)
        deltas = BedrockProvider(lambda region, timeout: client).stream(request(), BEDROCK, Deadline(5))

        with pytest.raises(ProviderAuthError):
            next(deltas)
