"""The authorizer function as API Gateway calls it: Allow with the tenant, or a Deny policy, never an exception."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from llm_router.authorizer import ANONYMOUS, Unauthorized, authorize, authorizer_response, get_key_store
from llm_router.settings import get_settings
from llm_router.stores.key_store import KeyStore
from llm_router.stores.tables import table_definition

TABLE = "authorizer-config"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/v1/chat/completions"
ROOT = Path(__file__).resolve().parents[2]


class _Context:
    function_name = "authorizer"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:authorizer"
    aws_request_id = "req-1"


def _event(authorization: str | None) -> dict[str, Any]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[KeyStore, str]]:
    monkeypatch.setenv("CONFIG_TABLE_NAME", TABLE)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    get_settings.cache_clear()
    get_key_store.cache_clear()
    with mock_aws():
        import boto3

        boto3.client("dynamodb", region_name="us-east-1").create_table(**table_definition(TABLE))
        store = KeyStore(TABLE, dynamodb=boto3.client("dynamodb", region_name="us-east-1"))
        key, _ = store.create("team-a")
        yield store, key
    get_key_store.cache_clear()
    get_settings.cache_clear()


def _handler_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("authorizer_handler", ROOT / "functions/authorizer/handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_valid_key_is_allowed_on_every_route_with_its_tenant(keys: tuple[KeyStore, str]) -> None:
    store, key = keys
    response = authorizer_response(_event(f"Bearer {key}"), store)
    assert response["principalId"] == "team-a"
    [statement] = response["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*"
    assert response["context"] == {"tenant": "team-a", "key_prefix": key[:10], "scope": "user"}


@pytest.mark.parametrize("authorization", ["Bearer sk-not-a-key", "Basic dXNlcjpwYXNz", "Bearer ", None])
def test_a_missing_or_unknown_key_is_denied_without_raising(
    keys: tuple[KeyStore, str], authorization: str | None
) -> None:
    store, _ = keys
    response = authorizer_response(_event(authorization), store)
    assert response["principalId"] == ANONYMOUS
    [statement] = response["policyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    # Nothing about a tenant leaks into the denied request
    assert "context" not in response


def test_the_lambda_handler_returns_the_deny_policy_for_a_wrong_key(keys: tuple[KeyStore, str]) -> None:
    # Given the function's own handler, reading the table named in its environment
    handler = _handler_module()
    # When API Gateway calls it with a wrong key
    response = handler.lambda_handler(_event("Bearer sk-wrong"), _Context())
    # Then it answers (no exception, so no Lambda error) with a Deny
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_the_local_servers_check_still_raises_for_a_wrong_key(keys: tuple[KeyStore, str]) -> None:
    store, key = keys
    with pytest.raises(Unauthorized):
        authorize(_event("Bearer sk-wrong"), store)
    assert authorize(_event(f"Bearer {key}"), store)["context"]["tenant"] == "team-a"


def test_the_lambda_handler_allows_a_key_sent_only_in_x_api_key(keys: tuple[KeyStore, str]) -> None:
    # Given the event API Gateway sends the uncached authorizer of /v1/messages for an Anthropic client, which puts
    # the key in `x-api-key` and sends no Authorization header at all
    _, key = keys
    handler = _handler_module()
    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/v1/messages",
        "resource": "/v1/messages",
        "path": "/v1/messages",
        "httpMethod": "POST",
        "headers": {"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"},
        "multiValueHeaders": {"x-api-key": [key]},
    }
    # When the function's own handler answers it
    response = handler.lambda_handler(event, _Context())
    # Then the key is allowed on every route with its tenant, as with `Authorization: Bearer`
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert response["policyDocument"]["Statement"][0]["Resource"].endswith("abc123/prod/*")
    assert response["context"]["tenant"] == "team-a"
    # And a wrong x-api-key is denied the same way a wrong bearer token is
    event["headers"] = {"x-api-key": "sk-wrong"}
    assert handler.lambda_handler(event, _Context())["policyDocument"]["Statement"][0]["Effect"] == "Deny"
