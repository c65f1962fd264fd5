"""Every answer, streamed chunk and error validates against OpenAI's own published schema (openai/openai-openapi):
clients generated from it in typed languages reject anything less. Each request is checked against the request
schema first, so the test covers only what a real OpenAI client may send."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Router
from tests.openai_schema import sse_data, violations

IMAGE = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    },
}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


REQUESTS: dict[str, dict[str, Any]] = {
    "plain": {"messages": [user("Hello!")]},
    "system_and_developer": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Answer in English."},
            user("Hello!"),
        ]
    },
    "content_parts": {"messages": [user([{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}])]},
    "image": {
        "messages": [
            user([{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": IMAGE}}])
        ]
    },
    "tools_auto": {"messages": [user("Weather in Paris?")], "tools": [WEATHER]},
    "tools_required": {"messages": [user("Weather in Paris?")], "tools": [WEATHER], "tool_choice": "required"},
    "tools_named": {
        "messages": [user("Weather in Paris?")],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
    },
    "tool_round_trip": {
        "messages": [
            user("Weather in Paris?"),
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        ],
        "tools": [WEATHER],
    },
    "json_object": {"messages": [user("A person as JSON")], "response_format": {"type": "json_object"}},
    "json_schema": {"messages": [user("A person")], "response_format": PERSON},
    "sampling": {
        "messages": [user("Hello!")],
        "temperature": 0.2,
        "top_p": 0.9,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.1,
        "seed": 7,
        "stop": ["\n\n"],
        "n": 1,
        "user": "u-1",
        "metadata": {"team": "docs"},
    },
    "max_completion_tokens": {"messages": [user("Hello!")], "max_completion_tokens": 2},
    "max_tokens": {"messages": [user("Hello!")], "max_tokens": 300},
    "reasoning_effort": {"messages": [user("Hello!")], "reasoning_effort": "low"},
    "modalities": {"messages": [user("Hello!")], "modalities": ["text"]},
    "logprobs": {"model": "gpt-4o-mini", "messages": [user("Hello!")], "logprobs": True, "top_logprobs": 0},
    "named_model": {"model": "claude-sonnet", "messages": [user("Hello!")]},
}


def body_of(shape: str, **extra: Any) -> dict[str, Any]:
    body = {"model": "auto", **REQUESTS[shape], **extra}
    assert violations("CreateChatCompletionRequest", body) == [], "the test request itself is not valid"
    return body


@pytest.mark.parametrize("shape", sorted(REQUESTS))
def test_answers_conform(router: Router, shape: str) -> None:
    response = router.call(body_of(shape))

    assert response["statusCode"] == 200, response["body"]
    assert violations("CreateChatCompletionResponse", router.json(response)) == []


@pytest.mark.parametrize("shape", ["plain", "tools_required", "json_schema", "logprobs", "image", "sampling"])
def test_streamed_chunks_conform(router: Router, shape: str) -> None:
    response = router.call(body_of(shape, stream=True, stream_options={"include_usage": True}))

    assert response["statusCode"] == 200, response["body"]
    chunks = sse_data(response["body"])
    assert len(chunks) >= 3
    assert [line for chunk in chunks for line in violations("CreateChatCompletionStreamResponse", chunk)] == []
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_answers_carry_required_nullable_fields(router: Router) -> None:
    text = router.json(router.call(body_of("plain")))["choices"][0]
    call = router.json(router.call(body_of("tools_required")))["choices"][0]

    assert text["logprobs"] is None and text["message"]["refusal"] is None
    assert call["message"]["content"] is None and call["message"]["tool_calls"]


def test_logprobs_are_passed_through_when_the_model_gives_them(router: Router) -> None:
    answer = router.json(router.call(body_of("logprobs")))

    tokens = answer["choices"][0]["logprobs"]["content"]
    assert "".join(t["token"] for t in tokens) == answer["choices"][0]["message"]["content"]


def test_logprobs_from_a_model_that_cannot_give_them_are_refused(router: Router) -> None:
    response = router.call(body_of("plain", model="claude-sonnet", logprobs=True))

    assert response["statusCode"] == 400
    error = router.json(response)
    assert violations("ErrorResponse", error) == []
    assert error["error"]["code"] == "no_capable_model"
    assert "logprobs" in error["error"]["message"]


@pytest.mark.parametrize(
    ("body", "kwargs", "status"),
    [
        ({"model": "auto", "messages": []}, {}, 400),
        ("{not json", {}, 400),
        ({"model": "no-such-model", "messages": [user("Hi")]}, {}, 404),
        ({"model": "auto", "messages": [user("Hi")]}, {"key": None}, 401),
        ({"model": "auto", "messages": [user("Hi")]}, {"path": "/v1/nothing"}, 404),
    ],
    ids=["empty_messages", "bad_json", "unknown_model", "no_key", "unknown_path"],
)
def test_errors_conform(router: Router, body: Any, kwargs: dict[str, Any], status: int) -> None:
    response = router.call(body, **kwargs)

    assert response["statusCode"] == status
    assert violations("ErrorResponse", json.loads(response["body"])) == []


def test_the_model_list_conforms(router: Router) -> None:
    response = router.call(method="GET", path="/v1/models")

    assert response["statusCode"] == 200
    assert violations("ListModelsResponse", router.json(response)) == []
