"""Bedrock through the real handler (Converse stubbed: moto has no Converse), and ConverseStream against a loopback
server speaking the AWS event-stream encoding, so botocore parses real bytes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber

from llm_router.providers.base import (
    Deadline,
    InvalidRequest,
    ProviderAuthError,
    ProviderError,
    RetryableError,
)
from llm_router.providers.bedrock import BedrockProvider
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest
from tests.fakes.bedrock_api import FakeBedrock
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.router import openai_model, router_with
from tests.fakes.streams import Assembled, assemble, eventually
from tests.helpers import header
from tests.integration.conftest import Router

PNG_BYTES = b"\x89PNG\r\n\x1a\nfake-image"
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


def bedrock_model(model_id: str = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", **fields: Any) -> dict[str, Any]:
    return {
        "id": "sonnet",
        "provider": "bedrock",
        "model_id": model_id,
        "region": "eu-central-1",
        "price": {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cache_read_per_mtok": 0.3},
        "context_window": 200000,
        "capabilities": ["tools", "images", "json"],
        **fields,
    }


def reply(content: list[dict[str, Any]], stop: str = "end_turn", **extra: Any) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 100, "outputTokens": 20, "totalTokens": 1120, "cacheReadInputTokens": 1000},
        "metrics": {"latencyMs": 250},
        **extra,
    }


@pytest.fixture
def fallback() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def router(fallback: FakeOpenAI) -> Iterator[tuple[Router, Stubber]]:
    doc = {
        "models": [bedrock_model(), openai_model("backup", fallback.url, api_key_ref=None)],
        "routes": [{"id": "auto", "default": ["sonnet", "backup"]}],
        "rules": [],
    }
    with router_with(doc) as r:
        client = boto3.client("bedrock-runtime", region_name="eu-central-1")
        with Stubber(client) as stubber:
            r.build(providers={"bedrock": BedrockProvider(lambda region, timeout: client)})
            yield r, stubber
            stubber.assert_no_pending_responses()


def test_answer_cost_counts_cached_tokens_at_their_price(router: tuple[Router, Stubber]) -> None:
    r, stubber = router
    stubber.add_response("converse", reply([{"text": "Hi!"}]))

    response = r.chat("Hello!")
    body = r.json(response)

    assert header(response, "x-router-model") == "sonnet"
    assert body["usage"] == {
        "prompt_tokens": 1100,
        "completion_tokens": 20,
        "total_tokens": 1120,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }
    assert float(header(response, "x-router-cost-usd") or 0) == pytest.approx((100 * 3 + 20 * 15 + 1000 * 0.3) / 1e6)


def test_tools_survive_translation_both_ways(router: tuple[Router, Stubber]) -> None:
    r, stubber = router
    use = {"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Paris"}}}
    stubber.add_response("converse", reply([use], stop="tool_use"))
    expected_second = {
        "modelId": ANY,
        "messages": [
            {"role": "user", "content": [{"text": "Weather?"}]},
            {"role": "assistant", "content": [use]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "18C"}]}}]},
        ],
        "toolConfig": ANY,
    }
    stubber.add_response("converse", reply([{"text": "It is 18C."}]), expected_second)

    first = r.json(r.chat("Weather?", tools=TOOLS))
    call = first["choices"][0]["message"]["tool_calls"][0]
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C"},
    ]
    second = r.json(r.call({"model": "auto", "messages": history, "tools": TOOLS}))

    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert call == {
        "id": "tooluse_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
    }
    assert second["choices"][0]["message"]["content"] == "It is 18C."


def test_images_arrive_as_bytes(router: tuple[Router, Stubber]) -> None:
    r, stubber = router
    expected = {
        "modelId": ANY,
        "messages": [
            {
                "role": "user",
                "content": [{"text": "What?"}, {"image": {"format": "png", "source": {"bytes": PNG_BYTES}}}],
            }
        ],
    }
    stubber.add_response("converse", reply([{"text": "A logo."}]), expected)
    url = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
    content = [{"type": "text", "text": "What?"}, {"type": "image_url", "image_url": {"url": url}}]

    response = r.call({"model": "auto", "messages": [{"role": "user", "content": content}]})

    assert r.json(response)["choices"][0]["message"]["content"] == "A logo."


def test_throttled_bedrock_falls_back_to_the_next_provider(
    router: tuple[Router, Stubber], fallback: FakeOpenAI
) -> None:
    r, stubber = router
    for _ in range(2):
        stubber.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)

    response = r.chat("Hello!")

    assert header(response, "x-router-model") == "backup"
    assert header(response, "x-router-attempts") == "3"
    assert [(d["Provider"], d["ErrorKind"]) for d in r.emitted if "ProviderErrors" in d] == [
        ("bedrock", "throttle")
    ] * 2


def test_access_denied_is_a_configuration_error_that_falls_back(router: tuple[Router, Stubber]) -> None:
    r, stubber = router
    stubber.add_client_error("converse", service_error_code="AccessDeniedException", http_status_code=403)

    response = r.chat("Hello!")

    assert header(response, "x-router-model") == "backup"
    assert header(response, "x-router-attempts") == "2"


def test_a_validation_error_is_returned_to_the_caller(router: tuple[Router, Stubber], fallback: FakeOpenAI) -> None:
    r, stubber = router
    stubber.add_client_error(
        "converse", service_error_code="ValidationException", service_message="temperature must be <= 1"
    )

    response = r.chat("Hello!")

    assert response["statusCode"] == 400
    assert "temperature" in json.loads(response["body"])["error"]["message"]
    assert fallback.requests == []


# -- streaming: ConverseStream against a loopback server speaking the AWS event-stream encoding ---------------
STREAM_MODEL = ModelSpec.model_validate(
    {**bedrock_model(), "id": "sonnet", "model_id": "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"}
)


@pytest.fixture
def upstream() -> Iterator[FakeBedrock]:
    server = FakeBedrock().start()
    yield server
    server.stop()


def loopback_provider(upstream: FakeBedrock, **options: Any) -> BedrockProvider:
    def factory(region: str | None, read_timeout: float) -> Any:
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=read_timeout, connect_timeout=2
        )
        return boto3.client("bedrock-runtime", region_name=region, endpoint_url=upstream.url, config=config)

    return BedrockProvider(factory, **options)


def chat(**body: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "Hello!"}], **body}
    )


@pytest.mark.parametrize(
    "body",
    [{}, {"tools": TOOLS}, {"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {}}}}],
    ids=["text", "tool_use", "json_schema"],
)
def test_a_reassembled_converse_stream_is_the_converse_answer(upstream: FakeBedrock, body: dict[str, Any]) -> None:
    upstream.cached_tokens, upstream.invoked_model = 4, "anthropic.claude-haiku-4-5"
    provider = loopback_provider(upstream)

    streamed = assemble(provider.stream(chat(**body), STREAM_MODEL, Deadline(10)))
    completed = provider.complete(chat(**body), STREAM_MODEL, Deadline(10))

    assert streamed.same_answer() == Assembled.of(completed).same_answer()
    assert streamed.answered_by == "anthropic.claude-haiku-4-5"
    assert streamed.usage is not None and streamed.usage.cache_read_tokens == 4
    assert upstream.requests[0].path.endswith("/converse-stream") and len(streamed.deltas) > 3


def test_converse_stream_deltas_arrive_while_bedrock_is_still_writing(upstream: FakeBedrock) -> None:
    upstream.stream_chunks, upstream.stream_interval = 20, 0.05
    deltas = loopback_provider(upstream).stream(chat(), STREAM_MODEL, Deadline(10))

    first = next(deltas)

    assert first.content and not upstream.streams[0].completed and len(upstream.streams[0].times) < 10
    assert assemble([first, *deltas]).finish_reason == "stop"


@pytest.mark.parametrize(
    ("exception", "error", "kind"),
    [
        ("modelStreamErrorException", RetryableError, "model_error"),
        ("internalServerException", RetryableError, "server_error"),
        ("throttlingException", RetryableError, "throttle"),
        ("serviceUnavailableException", RetryableError, "unavailable"),
        ("validationException", InvalidRequest, "invalid_request"),
    ],
)
def test_exception_events_mid_stream_are_typed_errors(
    upstream: FakeBedrock, exception: str, error: type[ProviderError], kind: str
) -> None:
    upstream.mode, upstream.stream_exception = "stream_error", exception
    deltas = loopback_provider(upstream).stream(chat(), STREAM_MODEL, Deadline(10))
    next(deltas)

    with pytest.raises(error) as caught:
        list(deltas)

    assert caught.value.kind == kind


@pytest.mark.parametrize(
    ("mode", "error", "kind"),
    [
        ("throttle", RetryableError, "throttle"),
        ("overloaded", RetryableError, "unavailable"),
        ("not_found", ProviderAuthError, "not_found"),
        ("bad_request", InvalidRequest, "invalid_request"),
        ("drop", RetryableError, "connection"),
    ],
)
def test_failures_before_the_stream_raise_the_same_typed_errors_as_converse(
    upstream: FakeBedrock, mode: str, error: type[ProviderError], kind: str
) -> None:
    upstream.mode = mode
    provider = loopback_provider(upstream)

    with pytest.raises(error) as streamed:
        next(provider.stream(chat(), STREAM_MODEL, Deadline(10)))
    with pytest.raises(error) as completed:
        provider.complete(chat(), STREAM_MODEL, Deadline(10))

    assert streamed.value.kind == completed.value.kind == kind


def test_a_cut_converse_stream_raises_from_a_later_next(upstream: FakeBedrock) -> None:
    upstream.mode = "stream_cut"
    deltas = loopback_provider(upstream).stream(chat(), STREAM_MODEL, Deadline(10))
    next(deltas)

    with pytest.raises(RetryableError) as caught:
        list(deltas)

    assert caught.value.kind == "connection"


def test_closing_a_converse_stream_early_closes_the_connection(upstream: FakeBedrock) -> None:
    upstream.stream_interval = 0.05
    deltas = loopback_provider(upstream).stream(chat(), STREAM_MODEL, Deadline(10))
    next(deltas)

    deltas.close()

    assert eventually(lambda: upstream.streams[0].aborted)
    assert not upstream.streams[0].completed


def test_after_the_first_delta_converse_stream_reads_wait_for_the_idle_timeout(upstream: FakeBedrock) -> None:
    upstream.stream_interval = 1.5
    deltas = loopback_provider(upstream, stream_idle_seconds=0.3).stream(chat(), STREAM_MODEL, Deadline(30))
    next(deltas)

    with pytest.raises(RetryableError) as caught:
        next(deltas)

    assert caught.value.kind == "timeout"
