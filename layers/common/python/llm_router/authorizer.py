"""The API Gateway REQUEST authorizer: `Authorization: Bearer <key>` -> the key's tenant, or a Deny policy.

A refused key is an answer, not a failure: the Lambda function returns a Deny policy (which API Gateway turns
into the same 401 body as a missing key, see the gateway responses) instead of raising, so failed logins never
count as function errors. The local server runs the same check before the router, so authentication behaves
alike locally and in AWS.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Protocol

from llm_router.observability import logger
from llm_router.schemas.records import ApiKeyItem
from llm_router.settings import AuthorizerSettings
from llm_router.stores.key_store import KeyStore

# The principal of a Deny policy: API Gateway needs one, and no tenant is known.
ANONYMOUS = "anonymous"


class Unauthorized(Exception):
    """What `authorize` raises for a missing or unknown key; the local server answers it with a 401."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class KeyLookup(Protocol):
    """API keys by their plain value (stores/key_store.py keeps only hashes)."""

    def lookup(self, key: str) -> ApiKeyItem | None: ...


@cache
def get_key_store() -> KeyStore:
    return KeyStore(AuthorizerSettings.from_env().config_table_name)


def bearer_token(headers: dict[str, Any] | None) -> str | None:
    """The key from `Authorization: Bearer <key>` (OpenAI clients) or else `x-api-key` (Anthropic clients)."""
    fallback = None
    for name, value in (headers or {}).items():
        if not isinstance(value, str):
            continue
        if name.lower() == "authorization":
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name.lower() == "x-api-key" and value.strip():
            fallback = value.strip()
    return fallback


def _allow_all_routes(method_arn: str) -> str:
    """`arn:...:api/stage/*`: API Gateway caches the policy per key, so it must cover every route."""
    parts = method_arn.split("/")
    return "/".join(parts[:2]) + "/*" if len(parts) >= 2 else method_arn


def _policy(principal: str, effect: str, method_arn: str) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": _allow_all_routes(method_arn)}
            ],
        },
    }


def _lookup(event: dict[str, Any], store: KeyLookup | None) -> ApiKeyItem | None:
    token = bearer_token(event.get("headers"))
    if token is None:
        return None
    record = (store or get_key_store()).lookup(token)
    if record is None:
        logger.info("key_rejected")
    return record


def authorizer_response(event: dict[str, Any], store: KeyLookup | None = None) -> dict[str, Any]:
    """The authorizer's answer: Allow with the tenant in the context, or Deny for a missing or unknown key."""
    method_arn = str(event.get("methodArn", "*"))
    record = _lookup(event, store)
    if record is None:
        return _policy(ANONYMOUS, "Deny", method_arn)
    return {
        **_policy(record.tenant, "Allow", method_arn),
        "context": {"tenant": record.tenant, "key_prefix": record.prefix, "scope": record.scope},
    }


def authorize(event: dict[str, Any], store: KeyLookup | None = None) -> dict[str, Any]:
    """The Allow response for a valid key, or raise Unauthorized (for callers that answer the 401 themselves)."""
    response = authorizer_response(event, store)
    if "context" not in response:
        raise Unauthorized()
    return response
