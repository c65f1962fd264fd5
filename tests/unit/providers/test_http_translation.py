"""OpenAI-compatible and Anthropic translation, and the shared HTTP helpers, without sockets."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from llm_router.providers import http
from llm_router.providers.anthropic import AnthropicProvider
from llm_router.providers.base import ContextWindowExceeded, InvalidRequest, RetryableError
from llm_router.providers.openai_compat import OpenAICompatProvider
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest

PNG = base64.b64encode(b"\x89PNG-bytes").decode()


def spec(provider: str = "openai", **fields: Any) -> ModelSpec:
    values: dict[str, Any] = {
        "id": "m",
        "provider": provider,
        "model_id": "vendor-model",
        "base_url": "http://127.0.0.1:9/v1",
        "capabilities": ["tools", "images", "json"],
        **fields,
    }
    return ModelSpec.model_validate(values)


def request(**body: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "Hello!"}], **body}
    )


# -- OpenAI-compatible ------------------------------------------------------------------------------------------
def test_openai_payload_passes_the_request_through_with_the_providers_model_name() -> None:
    req = request(temperature=0.3, seed=7, stream=True, metadata={"team": "a"}, response_format={"type": "json_object"})

    body = OpenAICompatProvider.payload(req, spec())

    assert body["model"] == "vendor-model"
    assert body["seed"] == 7 and body["temperature"] == 0.3
    assert body["response_format"] == {"type": "json_object"}
    assert "stream" not in body and "metadata" not in body


def test_openai_payload_keeps_the_json_schema_key_name() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": True}}

    body = OpenAICompatProvider.payload(request(response_format=fmt), spec())

    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"}


def test_openai_payload_caps_output_tokens_at_the_catalog_limit() -> None:
    body = OpenAICompatProvider.payload(request(max_tokens=50_000), spec(max_output_tokens=16_384))

    assert body["max_tokens"] == 16_384


def test_openai_usage_separates_cached_prompt_tokens() -> None:
    body = {
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 60},
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
    }

    answer = OpenAICompatProvider.parse(body, spec())

    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.cache_read_tokens, answer.usage.reasoning_tokens) == (40, 60, 4)
    assert answer.answered_by == "gpt-4o-mini-2024-07-18"


def test_openai_tool_calls_without_ids_or_with_object_arguments_are_normalised() -> None:
    calls = [{"function": {"name": "f", "arguments": {"x": 1}}}]
    body = {
        "choices": [{"message": {"role": "assistant", "content": None, "tool_calls": calls}, "finish_reason": "stop"}]
    }

    answer = OpenAICompatProvider.parse(body, spec())

    assert answer.finish_reason == "tool_calls"
    assert answer.tool_calls is not None
    assert answer.tool_calls[0]["id"].startswith("call_")
    assert json.loads(answer.tool_calls[0]["function"]["arguments"]) == {"x": 1}


@pytest.mark.parametrize("body", [None, {}, {"choices": []}, {"choices": [{"text": "legacy"}]}])
def test_openai_answer_that_is_not_a_chat_completion_is_retryable(body: Any) -> None:
    with pytest.raises(RetryableError):
        OpenAICompatProvider.parse(body, spec())


# -- Anthropic --------------------------------------------------------------------------------------------------
def test_anthropic_payload_splits_system_merges_turns_and_maps_tools_and_images() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use metric units."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "user", "content": "Thanks"},
    ]
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]

    body = AnthropicProvider.payload(
        request(messages=messages, tools=tools, max_tokens=300, temperature=2), spec("anthropic")
    )

    assert body["system"] == "Be brief.\n\nUse metric units."
    assert body["max_tokens"] == 300 and body["temperature"] == 1.0
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "18C"}]},
        {"type": "text", "text": "Thanks"},
    ]
    assert body["tools"] == [{"name": "weather", "description": "", "input_schema": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "weather"}}, {"type": "tool", "name": "weather"}),
    ],
)
def test_anthropic_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "weather"}}]

    body = AnthropicProvider.payload(request(tools=tools, tool_choice=choice), spec("anthropic"))

    assert body["tool_choice"] == expected


def test_anthropic_needs_max_tokens_so_the_catalog_or_a_default_supplies_it() -> None:
    assert AnthropicProvider.payload(request(), spec("anthropic"))["max_tokens"] == 4096
    assert AnthropicProvider.payload(request(), spec("anthropic", max_output_tokens=8192))["max_tokens"] == 8192


def test_anthropic_json_object_is_an_instruction_in_the_system_prompt() -> None:
    body = AnthropicProvider.payload(request(response_format={"type": "json_object"}), spec("anthropic"))

    assert "JSON" in body["system"] and "tools" not in body


def test_anthropic_response_maps_tool_use_usage_and_stop_reason() -> None:
    body = {
        "model": "claude-x",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 5,
            "output_tokens": 9,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
        },
    }

    answer = AnthropicProvider.parse(body, spec("anthropic"))

    assert answer.finish_reason == "tool_calls" and answer.content == "Checking."
    assert answer.tool_calls == [
        {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    ]
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.cache_read_tokens, answer.usage.cache_write_tokens) == (5, 100, 20)


@pytest.mark.parametrize(
    ("stop", "finish"), [("end_turn", "stop"), ("max_tokens", "length"), ("refusal", "content_filter")]
)
def test_anthropic_stop_reasons(stop: str, finish: str) -> None:
    body = {
        "content": [{"type": "text", "text": "x"}],
        "stop_reason": stop,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }

    assert AnthropicProvider.parse(body, spec("anthropic")).finish_reason == finish


def test_anthropic_context_window_stop_reason_is_a_context_overflow() -> None:
    body = {"content": [], "stop_reason": "model_context_window_exceeded"}

    with pytest.raises(ContextWindowExceeded):
        AnthropicProvider.parse(body, spec("anthropic"))


def test_image_that_is_not_a_data_url_or_not_an_image_is_the_callers_error() -> None:
    content = [{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}]

    with pytest.raises(InvalidRequest):
        AnthropicProvider.payload(request(messages=[{"role": "user", "content": content}]), spec("anthropic"))


def test_tool_arguments_that_are_not_json_are_the_callers_error() -> None:
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{not json"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "r"},
    ]

    with pytest.raises(InvalidRequest):
        AnthropicProvider.payload(request(messages=messages), spec("anthropic"))


# -- shared helpers ---------------------------------------------------------------------------------------------
def test_retry_after_reads_seconds_milliseconds_and_http_dates() -> None:
    assert http.retry_after_seconds({"retry-after": "3"}) == 3.0
    assert http.retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert http.retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert http.retry_after_seconds({"retry-after": "soon"}) is None
    assert http.retry_after_seconds({}) is None


def test_redact_masks_a_key_echoed_in_a_message() -> None:
    assert http.redact("Incorrect API key provided: sk-secret-123456", "sk-secret-123456") == (
        "Incorrect API key provided: ***"
    )
