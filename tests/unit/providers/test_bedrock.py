"""BedrockProvider against botocore's Stubber: recorded Converse shapes in, typed errors and OpenAI shapes out."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import ANY, Stubber

from llm_router.providers.base import (
    ContextWindowExceeded,
    Deadline,
    InvalidRequest,
    ProviderAuthError,
    RetryableError,
)
from llm_router.providers.bedrock import BedrockProvider, region_for, timeout_bucket
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image-bytes").decode()
ROUTER_ARN = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"


def spec(model_id: str = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", **fields: Any) -> ModelSpec:
    values: dict[str, Any] = {
        "id": "sonnet",
        "provider": "bedrock",
        "model_id": model_id,
        "region": "eu-central-1",
        "capabilities": ["tools", "images", "json"],
        **fields,
    }
    return ModelSpec.model_validate(values)


def request(**body: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "Hello!"}], **body}
    )


def converse_response(content: list[dict[str, Any]], stop: str = "end_turn", **extra: Any) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19},
        "metrics": {"latencyMs": 321},
        **extra,
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[BedrockProvider, Stubber, list[tuple[str | None, float]]]]:
    client = boto3.client("bedrock-runtime", region_name="eu-central-1")
    created: list[tuple[str | None, float]] = []

    def factory(region: str | None, timeout: float) -> Any:
        created.append((region, timeout))
        return client

    with Stubber(client) as stubber:
        yield BedrockProvider(factory), stubber, created
        stubber.assert_no_pending_responses()


def test_text_answer_maps_usage_stop_reason_and_system_prompt(stubbed: Any) -> None:
    provider, stubber, created = stubbed
    expected = {
        "modelId": "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "messages": [{"role": "user", "content": [{"text": "Hello!"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 100, "temperature": 1.0, "topP": 0.9, "stopSequences": ["END"]},
    }
    usage = {
        "inputTokens": 10,
        "outputTokens": 5,
        "totalTokens": 45,
        "cacheReadInputTokens": 20,
        "cacheWriteInputTokens": 10,
    }
    stubber.add_response("converse", {**converse_response([{"text": "Hi there."}]), "usage": usage}, expected)
    req = request(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}],
        max_tokens=100,
        temperature=1.5,
        top_p=0.9,
        stop="END",
    )

    answer = provider.complete(req, spec(), Deadline(22))

    assert answer.content == "Hi there."
    assert answer.finish_reason == "stop"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (10, 5)
    assert (answer.usage.cache_read_tokens, answer.usage.cache_write_tokens) == (20, 10)
    assert created == [("eu-central-1", 20.0)]


def test_tool_calls_translate_both_ways(stubbed: Any) -> None:
    provider, stubber, _ = stubbed
    tools: list[dict[str, Any]] = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather now",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    history = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "24C"},
        {"role": "user", "content": "And Oslo?"},
    ]
    expected = {
        "modelId": ANY,
        "messages": [
            {"role": "user", "content": [{"text": "Weather in Paris and Rome?"}]},
            {
                "role": "assistant",
                "content": [
                    {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": "call_2", "name": "weather", "input": {"city": "Rome"}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"text": "18C"}]}},
                    {"toolResult": {"toolUseId": "call_2", "content": [{"text": "24C"}]}},
                    {"text": "And Oslo?"},
                ],
            },
        ],
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "weather",
                        "description": "Weather now",
                        "inputSchema": {"json": tools[0]["function"]["parameters"]},
                    }
                }
            ],
            "toolChoice": {"any": {}},
        },
    }
    reply = converse_response(
        [
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "tooluse_abc", "name": "weather", "input": {"city": "Oslo"}}},
        ],
        stop="tool_use",
    )
    stubber.add_response("converse", reply, expected)

    answer = provider.complete(request(messages=history, tools=tools, tool_choice="required"), spec(), Deadline(20))

    assert answer.finish_reason == "tool_calls"
    assert answer.content == "Checking."
    assert answer.tool_calls == [
        {"id": "tooluse_abc", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    ]


def test_named_tool_choice_becomes_a_specific_tool(stubbed: Any) -> None:
    provider, stubber, _ = stubbed
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    expected = {
        "modelId": ANY,
        "messages": ANY,
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object", "properties": {}}}}}],
            "toolChoice": {"tool": {"name": "lookup"}},
        },
    }
    stubber.add_response("converse", converse_response([{"text": "ok"}]), expected)

    choice = {"type": "function", "function": {"name": "lookup"}}
    provider.complete(request(tools=tools, tool_choice=choice), spec(), Deadline(20))


def test_data_url_images_become_image_bytes(stubbed: Any) -> None:
    provider, stubber, _ = stubbed
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    expected = {
        "modelId": ANY,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "What is this?"},
                    {"image": {"format": "png", "source": {"bytes": b"\x89PNG\r\n\x1a\nfake-image-bytes"}}},
                ],
            }
        ],
    }
    stubber.add_response("converse", converse_response([{"text": "A picture."}]), expected)

    answer = provider.complete(request(messages=[{"role": "user", "content": content}]), spec(), Deadline(20))

    assert answer.content == "A picture."


def test_image_urls_that_bedrock_cannot_fetch_are_the_callers_error(stubbed: Any) -> None:
    provider, _, _ = stubbed
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]

    with pytest.raises(InvalidRequest):
        provider.complete(request(messages=[{"role": "user", "content": content}]), spec(), Deadline(20))


def test_json_schema_is_answered_through_a_forced_tool(stubbed: Any) -> None:
    provider, stubber, _ = stubbed
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    expected = {
        "modelId": ANY,
        "messages": ANY,
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "json_response",
                        "description": "Return the answer as reply.",
                        "inputSchema": {"json": schema},
                    }
                }
            ],
            "toolChoice": {"tool": {"name": "json_response"}},
        },
    }
    reply = converse_response(
        [{"toolUse": {"toolUseId": "t1", "name": "json_response", "input": {"answer": "42"}}}], stop="tool_use"
    )
    stubber.add_response("converse", reply, expected)
    fmt = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}

    answer = provider.complete(request(response_format=fmt), spec(), Deadline(20))

    assert json.loads(answer.content or "") == {"answer": "42"}
    assert answer.finish_reason == "stop" and answer.tool_calls is None


def test_json_object_without_tools_capability_is_an_instruction(stubbed: Any) -> None:
    provider, stubber, _ = stubbed
    expected = {"modelId": ANY, "messages": ANY, "system": [{"text": ANY}]}
    stubber.add_response("converse", converse_response([{"text": '{"a": 1}'}]), expected)

    provider.complete(request(response_format={"type": "json_object"}), spec(capabilities=["json"]), Deadline(20))


@pytest.mark.parametrize(
    "model_id",
    [
        "amazon.nova-micro-v1:0",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "arn:aws:bedrock:eu-central-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
    ],
)
def test_every_kind_of_model_id_is_sent_as_is(stubbed: Any, model_id: str) -> None:
    provider, stubber, _ = stubbed
    stubber.add_response("converse", converse_response([{"text": "ok"}]), {"modelId": model_id, "messages": ANY})

    assert provider.complete(request(), spec(model_id), Deadline(20)).content == "ok"


def test_prompt_router_reports_the_model_that_answered(stubbed: Any) -> None:
    provider, stubber, _ = stubbed
    invoked = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    reply = converse_response([{"text": "ok"}], trace={"promptRouter": {"invokedModelId": invoked}})
    stubber.add_response("converse", reply, {"modelId": ROUTER_ARN, "messages": ANY})

    answer = provider.complete(request(), spec(ROUTER_ARN, region=None), Deadline(20))

    assert answer.answered_by == invoked


def test_region_comes_from_the_catalog_then_from_an_arn() -> None:
    assert region_for(spec(region="eu-west-1")) == "eu-west-1"
    assert region_for(spec(ROUTER_ARN, region=None)) == "us-east-1"
    assert region_for(spec("amazon.nova-micro-v1:0", region=None)) is None


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ThrottlingException", 429, "throttle"),
        ("ServiceUnavailableException", 503, "unavailable"),
        ("InternalServerException", 500, "server_error"),
        ("ModelTimeoutException", 408, "timeout"),
        ("ModelNotReadyException", 429, "model_not_ready"),
        ("ModelErrorException", 424, "model_error"),
    ],
)
def test_transient_errors_are_retryable(stubbed: Any, code: str, status: int, kind: str) -> None:
    provider, stubber, _ = stubbed
    stubber.add_client_error("converse", service_error_code=code, service_message="try later", http_status_code=status)

    with pytest.raises(RetryableError) as caught:
        provider.complete(request(), spec(), Deadline(20))

    assert caught.value.kind == kind and caught.value.status == status


@pytest.mark.parametrize(
    "message",
    ["Input is too long for requested model.", "prompt is too long: 215000 tokens > 200000 maximum"],
)
def test_oversized_prompt_is_a_context_overflow(stubbed: Any, message: str) -> None:
    provider, stubber, _ = stubbed
    stubber.add_client_error("converse", service_error_code="ValidationException", service_message=message)

    with pytest.raises(ContextWindowExceeded):
        provider.complete(request(), spec(), Deadline(20))


def test_context_window_exceeded_stop_reason_is_a_context_overflow(stubbed: Any) -> None:
    provider, stubber, _ = stubbed
    stubber.add_response("converse", converse_response([{"text": "partial"}], stop="model_context_window_exceeded"))

    with pytest.raises(ContextWindowExceeded):
        provider.complete(request(), spec(), Deadline(20))


def test_other_validation_errors_are_the_callers(stubbed: Any) -> None:
    provider, stubber, _ = stubbed
    stubber.add_client_error(
        "converse",
        service_error_code="ValidationException",
        service_message="A conversation must start with a user message.",
    )

    with pytest.raises(InvalidRequest) as caught:
        provider.complete(request(), spec(), Deadline(20))

    assert "start with a user message" in caught.value.message


@pytest.mark.parametrize(
    ("code", "kind"), [("AccessDeniedException", "auth"), ("ResourceNotFoundException", "not_found")]
)
def test_permission_and_unknown_model_are_configuration_errors(stubbed: Any, code: str, kind: str) -> None:
    provider, stubber, _ = stubbed
    stubber.add_client_error("converse", service_error_code=code, service_message="no", http_status_code=403)

    with pytest.raises(ProviderAuthError) as caught:
        provider.complete(request(), spec(), Deadline(20))

    assert caught.value.kind == kind


def test_guardrail_intervention_is_a_content_filter_finish(stubbed: Any) -> None:
    provider, stubber, _ = stubbed
    stubber.add_response("converse", converse_response([{"text": "Sorry."}], stop="guardrail_intervened"))

    assert provider.complete(request(), spec(), Deadline(20)).finish_reason == "content_filter"


def test_malformed_model_output_is_retryable(stubbed: Any) -> None:
    provider, stubber, _ = stubbed
    stubber.add_response("converse", converse_response([{"text": "{"}], stop="malformed_tool_use"))

    with pytest.raises(RetryableError):
        provider.complete(request(), spec(), Deadline(20))


class _RaisingClient:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def converse(self, **_: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ReadTimeoutError(endpoint_url="https://bedrock-runtime.eu-central-1.amazonaws.com"), "timeout"),
        (EndpointConnectionError(endpoint_url="https://bedrock-runtime.eu-central-1.amazonaws.com"), "connection"),
    ],
)
def test_transport_failures_are_retryable(exc: Exception, kind: str) -> None:
    provider = BedrockProvider(lambda region, timeout: _RaisingClient(exc))

    with pytest.raises(RetryableError) as caught:
        provider.complete(request(), spec(), Deadline(20))

    assert caught.value.kind == kind


def test_clients_are_created_once_per_region_and_timeout_bucket() -> None:
    created: list[tuple[str | None, float]] = []

    def new_client(region: str | None, timeout: float) -> object:
        created.append((region, timeout))
        return object()

    provider = BedrockProvider(new_client)

    first = provider.client("eu-central-1", 27.4)
    again = provider.client("eu-central-1", 26.0)
    other = provider.client("us-east-1", 27.4)

    assert first is again and first is not other
    assert created == [("eu-central-1", 25.0), ("us-east-1", 25.0)]


def test_read_timeout_never_runs_past_the_deadline() -> None:
    assert timeout_bucket(27.5) == 25
    assert timeout_bucket(4.9) == 3
    assert timeout_bucket(0.2) == 1
