"""The API Gateway REQUEST authorizer: `Authorization: Bearer <key>` -> the key's tenant, or Unauthorized.

The local server runs this same code before the router, so authentication behaves alike locally and in AWS.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from llm_router.observability import logger
from llm_router.settings import AuthorizerSettings
from llm_router.stores.key_store import KeyStore


class Unauthorized(Exception):
    """Raised with the message "Unauthorized", which API Gateway turns into a 401 (see the gateway responses)."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


@cache
def get_key_store() -> KeyStore:
    return KeyStore(AuthorizerSettings.from_env().config_table_name)


def bearer_token(headers: dict[str, Any] | None) -> str | None:
    for name, value in (headers or {}).items():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _allow_all_routes(method_arn: str) -> str:
    """`arn:...:api/stage/*`: API Gateway caches the policy per key, so it must cover every route."""
    parts = method_arn.split("/")
    return "/".join(parts[:2]) + "/*" if len(parts) >= 2 else method_arn


def authorize(event: dict[str, Any], store: KeyStore | None = None) -> dict[str, Any]:
    """The authorizer response (an IAM policy plus the tenant in the context), or raise Unauthorized."""
    token = bearer_token(event.get("headers"))
    if token is None:
        raise Unauthorized()
    record = (store or get_key_store()).lookup(token)
    if record is None:
        logger.info("key_rejected")
        raise Unauthorized()
    return {
        "principalId": record.tenant,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": _allow_all_routes(str(event.get("methodArn", "*"))),
                }
            ],
        },
        "context": {"tenant": record.tenant, "key_prefix": record.prefix},
    }
