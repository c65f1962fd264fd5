"""The router in-process under moto, with a config document of our own (models that point at fake APIs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto import mock_aws

from llm_router.local.runtime import DEFAULT_LOCAL_KEY, LOCAL_TENANT
from llm_router.settings import DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE
from llm_router.stores.config_admin import ConfigAdmin, validate_document
from llm_router.stores.key_store import KeyStore
from llm_router.stores.tables import table_definition
from llm_router.wiring import AwsClients
from tests.integration.conftest import Router


@contextmanager
def router_with(doc: dict[str, Any], env: dict[str, str] | None = None, **overrides: Any) -> Iterator[Router]:
    """Tables, `doc` seeded, a local API key, real providers (no simulation); EMF documents captured."""
    settings = {
        "LLM_ROUTER_SIMULATE": "false",
        "RULES_TTL_SECONDS": "0",
        "CONFIG_TABLE_NAME": DEFAULT_CONFIG_TABLE,
        "STATE_TABLE_NAME": DEFAULT_STATE_TABLE,
        # Loopback fakes over plain http, keys from LLM_ROUTER_KEY_* variables: what local mode allows.
        "LLM_ROUTER_LOCAL_MODE": "true",
        **(env or {}),
    }
    with mock_aws():
        clients = AwsClients(region="us-east-1")
        ddb = clients.get("dynamodb")
        for name in (DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE):
            ddb.create_table(**table_definition(name))
        config = validate_document(doc)
        assert config.ok, config.errors
        admin = ConfigAdmin(DEFAULT_CONFIG_TABLE, dynamodb=ddb)
        admin.apply(config)
        keys = KeyStore(DEFAULT_CONFIG_TABLE, dynamodb=ddb)
        keys.create(LOCAL_TENANT, DEFAULT_LOCAL_KEY, admin=True)  # as local mode does
        yield Router(admin, keys, clients, settings).build(**overrides)


def openai_model(name: str, url: str, **fields: Any) -> dict[str, Any]:
    """A catalog entry for a model behind a fake OpenAI-compatible server."""
    return {
        "id": name,
        "provider": "openai",
        "model_id": "gpt-4o-mini",
        "base_url": f"{url}/v1",
        "api_key_ref": "FAKE_OPENAI_KEY",
        "region": "us-east-1",
        "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
        "context_window": 128000,
        "capabilities": ["tools", "images", "json"],
        **fields,
    }


def anthropic_model(name: str, url: str, **fields: Any) -> dict[str, Any]:
    """A catalog entry for a model behind a fake Anthropic server."""
    return {
        "id": name,
        "provider": "anthropic",
        "model_id": "claude-sonnet-4-5",
        "base_url": url,
        "api_key_ref": "FAKE_ANTHROPIC_KEY",
        "region": "us-east-1",
        "price": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
        "context_window": 200000,
        "capabilities": ["tools", "images", "json"],
        **fields,
    }
