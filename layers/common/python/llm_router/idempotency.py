"""`Idempotency-Key`: a retried call returns the first result instead of paying twice.

Powertools idempotency on the State table (`pk = idempotency`, `sk = <function>#<hash>`, TTL `expires_at`),
keyed by tenant + key + a hash of the body: the same key with another body is another request.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from typing import Any

from llm_router.errors import RouterError
from llm_router.stores.aws import client

Result = dict[str, Any]


class IdempotencyConflictError(RouterError):
    status = 409
    type = "invalid_request_error"
    code = "idempotency_in_progress"


class IdempotencyUnavailableError(RouterError):
    status = 503
    type = "server_error"
    code = "idempotency_unavailable"


class NotFinal(Exception):
    """Raised by `work` with a result that must not be kept under the key (the request was not kept, a transient
    server error): Powertools then deletes the in-progress record and the caller still gets `result`."""

    def __init__(self, result: Result) -> None:
        super().__init__("not final")
        self.result = result


class IdempotentRunner:
    def __init__(self, table_name: str, ttl_seconds: int, *, dynamodb: Any = None) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        persistence = DynamoDBPersistenceLayer(
            table_name=table_name,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value="idempotency",
            expiry_attr="expires_at",
            boto3_client=dynamodb or client("dynamodb"),
        )
        config = IdempotencyConfig(expires_after_seconds=ttl_seconds)
        self._config = config
        # Outside Lambda (local mode) there is no remaining time to register; the record then lives for the TTL.
        warnings.filterwarnings("ignore", message="Couldn't determine the remaining time", category=UserWarning)

        @idempotent_function(data_keyword_argument="key", persistence_store=persistence, config=config)
        def chat_completion(key: dict[str, str], work: Callable[[], Result]) -> Result:
            return work()

        self._run = chat_completion

    def run(
        self, tenant: str, idempotency_key: str, body: bytes, work: Callable[[], Result], context: Any = None
    ) -> Result:
        """`work()`'s result, computed once per (tenant, key, body) while the record lives.

        `context` is the Lambda context: its remaining time bounds the in-progress record, so a function that dies
        mid-request (a crash, a timeout) frees the key when the invocation would have ended, not after the TTL.
        Lambda runs one invocation per environment at a time, so the shared config holds the current one."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
        )

        key = {"tenant": tenant, "key": idempotency_key, "body": hashlib.sha256(body).hexdigest()}
        self._config.register_lambda_context(context)
        try:
            result: Result = self._run(key=key, work=work)
        except NotFinal as signal:
            return signal.result
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyConflictError(
                "A request with this Idempotency-Key is still being answered; retry in a moment."
            ) from None
        except IdempotencyPersistenceLayerError as exc:
            raise IdempotencyUnavailableError(
                "The idempotency store is unavailable, so the request was not run (it could be paid twice)."
            ) from exc
        return result
