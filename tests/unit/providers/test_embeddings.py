"""Embeddings from each provider: Bedrock Titan (one text per call) and Cohere (a batch) through botocore's
Stubber, and the simulator's deterministic vectors."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from llm_router.providers.anthropic import AnthropicProvider
from llm_router.providers.base import Deadline, InvalidRequest
from llm_router.providers.bedrock import BedrockProvider
from llm_router.providers.simulated import SimulatedProvider
from llm_router.schemas.catalog import ModelSpec


def spec(model_id: str, provider: str = "bedrock") -> ModelSpec:
    return ModelSpec.model_validate(
        {"id": "embedder", "provider": provider, "model_id": model_id, "region": "us-east-1",
         "capabilities": ["embeddings"], **({"base_url": "http://127.0.0.1:9"} if provider == "anthropic" else {})}
    )  # fmt: skip


def body(payload: dict[str, Any]) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


@pytest.fixture
def stubbed() -> Iterator[tuple[BedrockProvider, Stubber]]:
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield BedrockProvider(lambda region, timeout: client), stubber
        stubber.assert_no_pending_responses()


def test_titan_embeds_one_text_per_call_and_counts_its_tokens(stubbed: Any) -> None:
    provider, stubber = stubbed
    for text, vector, tokens in (("a", [0.1, 0.2], 3), ("b", [0.3, 0.4], 4)):
        expected = {
            "modelId": "amazon.titan-embed-text-v2:0",
            "body": json.dumps({"inputText": text, "dimensions": 2}),
            "contentType": "application/json",
            "accept": "application/json",
        }
        answer = {"body": body({"embedding": vector, "inputTextTokenCount": tokens}), "contentType": "application/json"}
        stubber.add_response("invoke_model", answer, expected)

    result = provider.embed(["a", "b"], spec("amazon.titan-embed-text-v2:0"), Deadline(20), 2)

    assert result.vectors == [[0.1, 0.2], [0.3, 0.4]]
    assert result.input_tokens == 7 and not result.estimated


def test_cohere_embeds_a_batch(stubbed: Any) -> None:
    provider, stubber = stubbed
    expected = {
        "modelId": "cohere.embed-english-v3",
        "body": json.dumps({"texts": ["a", "b"], "input_type": "search_document", "embedding_types": ["float"]}),
        "contentType": "application/json",
        "accept": "application/json",
    }
    answer = {"body": body({"embeddings": {"float": [[1.0], [2.0]]}}), "contentType": "application/json"}
    stubber.add_response("invoke_model", answer, expected)

    result = provider.embed(["a", "b"], spec("cohere.embed-english-v3"), Deadline(20), None)

    assert result.vectors == [[1.0], [2.0]]
    assert result.estimated  # Bedrock reports Cohere's tokens in a header the stub does not send


def test_simulated_embeddings_depend_on_the_text_alone_and_are_unit_vectors() -> None:
    provider = SimulatedProvider(sleep=lambda s: None)

    first = provider.embed(["hello", "world"], spec("x", "simulated"), Deadline(5), None)
    again = provider.embed(["hello"], spec("y", "simulated"), Deadline(5), 256)
    short = provider.embed(["hello"], spec("x", "simulated"), Deadline(5), 8)

    assert first.vectors[0] == again.vectors[0] != first.vectors[1]
    assert math.isclose(sum(v * v for v in first.vectors[0]), 1.0, abs_tol=1e-4)
    assert len(short.vectors[0]) == 8 and first.input_tokens > 0


def test_anthropic_has_no_embeddings() -> None:
    with pytest.raises(InvalidRequest):
        AnthropicProvider(keys={}).embed(["a"], spec("claude", "anthropic"), Deadline(5), None)
