"""What only OpenAI-compatible APIs give is passed through the router: log probabilities and embeddings, over real
sockets to a fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.router import openai_model, router_with
from tests.integration.conftest import Router
from tests.openai_schema import violations

ENV = {"LLM_ROUTER_KEY_FAKE_OPENAI_KEY": "sk-fake"}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(api_key="sk-fake").start()
    yield server
    server.stop()


@pytest.fixture
def router(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[Router]:
    monkeypatch.setenv("LLM_ROUTER_KEY_FAKE_OPENAI_KEY", "sk-fake")
    doc: dict[str, Any] = {
        "models": [
            openai_model("gpt", fake.url, capabilities=["json", "logprobs"]),
            openai_model(
                "embedder",
                fake.url,
                model_id="text-embedding-3-small",
                capabilities=["embeddings"],
                price={"input_per_mtok": 0.02, "output_per_mtok": 0},
            ),
        ],
        "routes": [{"id": "auto", "default": ["gpt"]}],
        "rules": [],
    }
    with router_with(doc, ENV) as built:
        yield built


def test_logprobs_from_the_provider_reach_the_caller(router: Router, fake: FakeOpenAI) -> None:
    response = router.call({"model": "gpt", "messages": [{"role": "user", "content": "Hi"}], "logprobs": True})

    answer = router.json(response)
    assert response["statusCode"] == 200, answer
    assert violations("CreateChatCompletionResponse", answer) == []
    assert answer["choices"][0]["logprobs"]["content"][0]["logprob"] == -0.5
    assert fake.bodies()[-1]["logprobs"] is True


def test_embeddings_are_passed_through_and_priced(router: Router, fake: FakeOpenAI) -> None:
    response = router.call({"model": "embedder", "input": ["abcd", "abcdefgh"], "dimensions": 3}, path="/v1/embeddings")

    answer = router.json(response)
    assert response["statusCode"] == 200, answer
    assert violations("CreateEmbeddingResponse", answer) == []
    assert [d["embedding"][0] for d in answer["data"]] == [4.0, 8.0]
    assert fake.bodies()[-1]["model"] == "text-embedding-3-small" and fake.bodies()[-1]["dimensions"] == 3
    assert answer["usage"]["prompt_tokens"] == 5 and float(response["headers"]["x-router-cost-usd"]) > 0
