"""The HTTP surface: OpenAI-compatible routes on Powertools' APIGatewayRestResolver, errors mapped in one place.

The caller's tenant comes from the API Gateway authorizer context (`requestContext.authorizer.tenant`); the
authorizer has already checked the key, so the router does not check it again.
"""

from __future__ import annotations

import json
import time
import uuid
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as ResolverNotFound
from pydantic import ValidationError

from llm_router.accounting import UsageAccounting
from llm_router.errors import AuthenticationError, InvalidRequestError, NotFoundError, RouterError
from llm_router.gateway import Answer, CircuitBreaker, Deferred, Gateway, RequestContext
from llm_router.idempotency import IdempotentRunner
from llm_router.metrics import COUNT, MetricsRecorder, emitter_for
from llm_router.observability import logger
from llm_router.providers.factories import FACTORIES
from llm_router.providers.registry import ProviderRegistry
from llm_router.routing.snapshot import InvalidItem
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.settings import get_settings
from llm_router.stores.config_store import ConfigStore
from llm_router.stores.fallback_queue import FallbackQueue
from llm_router.stores.payload_store import PayloadStore
from llm_router.stores.request_store import RequestStore
from llm_router.streaming import sse_body

JSON = "application/json"

app = APIGatewayRestResolver()


@cache
def get_gateway() -> Gateway:
    """The process-wide gateway, built from settings on first use (warm invocations reuse it)."""
    settings = get_settings()
    metrics = MetricsRecorder(emitter_for(settings.metrics_sink), settings.service_name)

    def count_invalid(items: tuple[InvalidItem, ...]) -> None:
        metrics.record([("InvalidConfigItems", len(items), COUNT)], dimensions={})

    config = ConfigStore(settings.config_table_name, ttl_seconds=settings.rules_ttl_seconds, on_invalid=count_invalid)
    providers = ProviderRegistry(simulate_all=settings.simulate_all, factories=FACTORIES)
    queue = requests = None
    if settings.fallback_queue_url:
        payloads = PayloadStore(settings.state_table_name)
        queue = FallbackQueue(
            settings.fallback_queue_url, payloads, inline_limit_bytes=settings.queue_inline_limit_bytes
        )
        requests = RequestStore(settings.state_table_name, ttl_seconds=settings.request_result_ttl_seconds)
    return Gateway(
        config,
        providers,
        metrics,
        deadline_seconds=settings.deadline_seconds,
        breaker=CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_cooldown_seconds),
        queue=queue,
        requests=requests,
        accounting=UsageAccounting.from_settings(settings, metrics),
    )


@cache
def get_idempotency() -> IdempotentRunner:
    settings = get_settings()
    return IdempotentRunner(settings.state_table_name, settings.idempotency_ttl_seconds)


def _context() -> RequestContext:
    event = app.current_event
    authorizer = (event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    tenant = authorizer.get("tenant")
    if not tenant:
        raise AuthenticationError("Missing or invalid API key. Send it as 'Authorization: Bearer <key>'.")
    request_id = str((event.raw_event.get("requestContext") or {}).get("requestId") or "").replace("-", "")
    return RequestContext(tenant=str(tenant), request_id=request_id or uuid.uuid4().hex)


def _body_bytes() -> bytes:
    event = app.current_event
    raw = ((event.decoded_body if event.is_base64_encoded else event.body) or "").encode()
    limit = get_settings().max_body_bytes
    if len(raw) > limit:
        raise InvalidRequestError(
            f"The request body is {len(raw)} bytes; the limit is {limit}.", code="request_too_large"
        )
    if not raw.strip():
        raise InvalidRequestError("The request body is empty; send a JSON object.", code="invalid_json")
    return raw


def _parse_request() -> ChatCompletionRequest:
    return _parse_request_and_body()[0]


def _parse_request_and_body() -> tuple[ChatCompletionRequest, bytes]:
    raw = _body_bytes()
    try:
        return ChatCompletionRequest.model_validate_json(raw), raw
    except ValidationError as exc:
        message, param = _describe(exc)
        raise InvalidRequestError(message, param=param, code="invalid_request") from None


def _describe(exc: ValidationError) -> tuple[str, str | None]:
    """A message naming every failing field, and the first field as OpenAI's `param`."""
    errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        return f"The request body is not valid JSON: {errors[0]['msg']}.", None
    if errors and errors[0]["type"] == "model_type" and not errors[0]["loc"]:
        return "The request body must be a JSON object.", None
    parts, first = [], None
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        # Union branches repeat the location with the branch type; keep the readable path.
        loc = loc.replace(".str", "").replace(".list[tagged-union[TextPart,ImagePart]]", "")
        first = first or loc.split(".")[0]
        parts.append(f"{loc}: {err['msg']}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "Invalid request: " + "; ".join(parts) + more, first


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, JSON, json.dumps(body, separators=(",", ":")), headers)


@app.post("/v1/chat/completions")
def chat_completions() -> Response:
    ctx = _context()
    request, raw = _parse_request_and_body()
    headers = app.current_event.headers  # a new case-insensitive copy on every access: read once
    prefer_async = "respond-async" in (headers.get("prefer") or "").lower()

    def run() -> dict[str, Any]:
        outcome = get_gateway().serve(request, ctx, raw, prefer_async=prefer_async)
        return _render(outcome, request, ctx)

    key = headers.get("idempotency-key")
    if not key:
        result = run()
    else:
        result = get_idempotency().run(ctx.tenant, key, raw, run)
        if result["headers"].get("x-router-request-id") != ctx.request_id:
            result["headers"]["x-router-idempotent-replay"] = "true"
    return Response(result["status"], result["content_type"], result["body"], result["headers"])


def _render(outcome: Answer | Deferred, request: ChatCompletionRequest, ctx: RequestContext) -> dict[str, Any]:
    """A response as a plain dict, so an idempotent retry can get the very same one back."""
    if isinstance(outcome, Deferred):
        body = json.dumps(outcome.body, separators=(",", ":"))
        return {"status": outcome.status, "content_type": JSON, "body": body, "headers": dict(outcome.headers)}
    headers = outcome.headers(ctx.request_id)
    if request.stream:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        headers["cache-control"] = "no-cache"
        body = sse_body(outcome.completion, include_usage)
        return {"status": 200, "content_type": "text/event-stream", "body": body, "headers": headers}
    body = outcome.completion.model_dump_json(exclude_none=True)
    return {"status": 200, "content_type": JSON, "body": body, "headers": headers}


@app.get("/v1/requests/<request_id>")
def get_request(request_id: str) -> Response:
    ctx = _context()
    requests = get_gateway().requests
    record = requests.get(request_id) if requests is not None and request_id.isalnum() else None
    # Another tenant's request is reported exactly like a missing one.
    if record is None or record.tenant != ctx.tenant:
        raise NotFoundError(
            f"No request {request_id!r} (it may have expired).", param="request_id", code="request_not_found"
        )
    return _json(200, record.public(), {"x-router-request-id": request_id})


@app.post("/v1/route")
def route_dry_run() -> Response:
    ctx = _context()
    request = _parse_request()
    return _json(200, get_gateway().explain(request, ctx), {"x-router-request-id": ctx.request_id})


@app.get("/v1/models")
def list_models() -> Response:
    _context()
    snapshot = get_gateway().config.snapshot()
    created = int(time.time())
    data = [
        {"id": route.id, "object": "model", "created": created, "owned_by": "llm-router:route"}
        for route in snapshot.routes.values()
    ] + [
        {"id": model.id, "object": "model", "created": created, "owned_by": f"llm-router:{model.provider}"}
        for model in snapshot.models.values()
    ]
    return _json(200, {"object": "list", "data": data})


@app.get("/health")
def health() -> Response:
    return _json(200, {"status": "ok"})


@app.exception_handler(RouterError)
def handle_router_error(exc: RouterError) -> Response:
    if exc.status >= 500:
        logger.warning("request_failed", status=exc.status, code=exc.code)
    return _json(exc.status, exc.body(), exc.headers)


@app.exception_handler(ResolverNotFound)
def handle_resolver_not_found(exc: ResolverNotFound) -> Response:
    return _not_found_body()


@app.not_found
def handle_not_found(exc: Exception) -> Response:
    return _not_found_body()


def _not_found_body() -> Response:
    event = app.current_event
    message = f"Unknown endpoint: {event.http_method} {event.path}. Try POST /v1/chat/completions."
    return _json(
        404, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "unknown_url"}}
    )


@app.exception_handler(Exception)
def handle_unexpected(exc: Exception) -> Response:
    # Logged with its stack trace for operators; the caller sees a plain message and nothing internal.
    logger.exception("unhandled_error")
    body = {
        "error": {
            "message": "The router hit an internal error.",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    return _json(500, body)


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point for the router Lambda function."""
    return app.resolve(event, context)
