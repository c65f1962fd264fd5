"""The handler's `context`, field for field what the managed Python runtime passes.

Powertools (`inject_lambda_context`, the tracer) and handlers read these attributes by name, so they keep the
managed runtime's names and types: `memory_limit_in_mb` is the environment's string, as it is there.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, cognito_identity_id: str | None = None, cognito_identity_pool_id: str | None = None) -> None:
        self.cognito_identity_id = cognito_identity_id
        self.cognito_identity_pool_id = cognito_identity_pool_id


class Client:
    __slots__ = ("app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id")

    def __init__(self, fields: dict[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, fields: dict[str, Any]) -> None:
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = fields.get("custom")
        self.env = fields.get("env")


class LambdaContext:
    """Per-invocation facts from the Runtime API's headers plus the function's environment."""

    def __init__(
        self,
        aws_request_id: str,
        deadline_ms: int,
        invoked_function_arn: str,
        client_context: dict[str, Any] | None = None,
        cognito_identity: dict[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self.client_context = ClientContext(client_context) if client_context is not None else None
        identity = cognito_identity or {}
        self.identity = CognitoIdentity(identity.get("cognitoIdentityId"), identity.get("cognitoIdentityPoolId"))
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def __repr__(self) -> str:
        return (
            f"LambdaContext(aws_request_id={self.aws_request_id!r}, function_name={self.function_name!r}, "
            f"invoked_function_arn={self.invoked_function_arn!r})"
        )


def parse_json_header(value: str | None, name: str) -> dict[str, Any] | None:
    """Client context and Cognito identity arrive as JSON headers; a malformed one fails the invocation."""
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError as error:
        raise ValueError(f"Unable to parse {name} JSON: {error}") from error
    return parsed if isinstance(parsed, dict) else None
