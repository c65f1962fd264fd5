"""Provider keys from the Secrets Manager secret (moto), through the handler to a fake API that checks them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from llm_router.stores.aws import client
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.router import openai_model, router_with
from tests.helpers import header

SECRET_KEY = "sk-from-secrets-manager-0123456789"


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(api_key=SECRET_KEY).start()
    yield server
    server.stop()


def doc(upstream: FakeOpenAI) -> dict[str, object]:
    return {
        "models": [openai_model("gpt", upstream.url, api_key_ref="OPENAI_API_KEY")],
        "routes": [{"id": "auto", "default": ["gpt"]}],
        "rules": [],
    }


def test_the_key_in_the_secret_is_sent_and_wins_over_the_environment(upstream: FakeOpenAI) -> None:
    env = {"PROVIDER_KEYS_SECRET_ID": "llm-router/provider-keys", "LLM_ROUTER_KEY_OPENAI_API_KEY": "sk-stale-env-key"}
    with router_with(doc(upstream), env) as router:
        client("secretsmanager").create_secret(
            Name="llm-router/provider-keys", SecretString=json.dumps({"OPENAI_API_KEY": SECRET_KEY})
        )

        response = router.chat("Hello!")

    assert response["statusCode"] == 200
    assert header(response, "x-router-model") == "gpt"
    assert upstream.requests[0].headers["authorization"] == f"Bearer {SECRET_KEY}"


def test_a_name_missing_from_the_secret_is_read_from_the_environment(upstream: FakeOpenAI) -> None:
    env = {"PROVIDER_KEYS_SECRET_ID": "llm-router/provider-keys", "LLM_ROUTER_KEY_OPENAI_API_KEY": SECRET_KEY}
    with router_with(doc(upstream), env) as router:
        client("secretsmanager").create_secret(Name="llm-router/provider-keys", SecretString="{}")

        response = router.chat("Hello!")

    assert response["statusCode"] == 200


def test_no_key_anywhere_fails_over_and_names_only_the_reference(upstream: FakeOpenAI) -> None:
    env = {"PROVIDER_KEYS_SECRET_ID": "missing-secret", "LLM_ROUTER_KEY_OPENAI_API_KEY": ""}  # empty counts as no key
    with router_with(doc(upstream), env) as router:
        response = router.chat("Hello!")

    assert response["statusCode"] == 503
    attempts = router.json(response)["error"]["attempts"]
    assert [a["kind"] for a in attempts] == ["auth"]
    assert "OPENAI_API_KEY" in attempts[0]["error"]
    assert upstream.requests == []
