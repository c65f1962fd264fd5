"""Errors a caller may see. Each carries its HTTP status and OpenAI error `type`/`code`; `api.py` alone renders them
(`error_envelope`)."""

from __future__ import annotations

from typing import Any


class RouterError(Exception):
    """Base of every error a caller may see; carries its HTTP status and OpenAI error `type`/`code`."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class InvalidRequestError(RouterError):
    status = 400
    type = "invalid_request_error"


class AuthenticationError(RouterError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class NotFoundError(RouterError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class RequestRejectedError(RouterError):
    """A routing rule refused the request (its status and message come from the rule)."""

    type = "invalid_request_error"
    code = "rejected_by_rule"


class AllModelsFailedError(RouterError):
    """Every candidate model failed: the decision that chose them and each attempt's error travel with it."""

    status = 503
    type = "server_error"
    code = "all_models_failed"

    def __init__(self, request_id: str, decision: dict[str, Any], attempts: list[dict[str, Any]]) -> None:
        super().__init__(
            "Every candidate model failed; try again shortly.",
            # `x-should-retry: false`: the router already retried and fell back; an SDK's automatic retries would
            # only multiply the load on models that are failing (the caller decides when to try again).
            headers={
                "Retry-After": "5",
                "x-router-request-id": request_id,
                "x-router-attempts": str(len(attempts)),
                "x-should-retry": "false",
            },
            extra={"request_id": request_id, "attempts": attempts, "queued": False},
        )
        self.request_id = request_id
        self.decision = decision
        self.attempts = attempts


class ModelNotAllowedError(RouterError):
    """The tenant's model allow-list leaves no model of the chain (see `llm-router tenants set --models`)."""

    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class BudgetExceededError(RouterError):
    """The tenant is at or over a daily or monthly budget; refused before any model is called."""

    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"
