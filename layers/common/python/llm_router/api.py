"""The HTTP surface, and the only module that knows HTTP: API Gateway proxy events in, statuses, headers and the
OpenAI error envelope out.

The caller's tenant comes from the API Gateway authorizer context (`requestContext.authorizer.tenant`); the
authorizer has already checked the key, so the router does not check it again. Nothing request-scoped is kept on
the object or the module: one `RouterApi` serves many threads at once (the local server does).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import struct
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from llm_router.cache import USE_CACHE, CacheControl
from llm_router.errors import AuthenticationError, InvalidRequestError, NotFoundError, RouterError
from llm_router.gateway import (
    Answered,
    ClosingIterator,
    Embedded,
    Gateway,
    NotKept,
    Outcome,
    Priced,
    Queued,
    Refused,
    RequestContext,
    StreamEnd,
    StreamEvent,
    Streaming,
    StreamStart,
)
from llm_router.idempotency import NotFinal
from llm_router.observability import logger
from llm_router.providers.base import StreamDelta
from llm_router.runtime import StreamingResponse
from llm_router.schemas import anthropic, responses
from llm_router.schemas.anthropic import MessagesRequest
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.feedback import FeedbackRequest
from llm_router.schemas.openai import ChatCompletionRequest, EmbeddingRequest
from llm_router.schemas.responses import ResponsesRequest, is_response_id
from llm_router.stores.outcome_store import Feedback
from llm_router.stores.request_store import RequestRecord
from llm_router.stores.response_store import StoredResponse

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
Result = dict[str, Any]  # status, content_type, body, headers: a response an idempotent retry can get again


def error_envelope(message: str, type: str, code: str | None, param: str | None = None, **extra: Any) -> dict[str, Any]:
    """OpenAI's error body, `{"error": {"message", "type", "param", "code", ...}}`: the one place it is built."""
    return {"error": {"message": message, "type": type, "param": param, "code": code, **extra}}


def error_of(exc: RouterError) -> dict[str, Any]:
    return error_envelope(exc.message, exc.type, exc.code, exc.param, **exc.extra)


@dataclass(frozen=True)
class HttpRequest:
    """What a route needs from the proxy event: header names lower-cased, the body decoded."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    tenant: str | None
    request_id: str
    admin: bool = False
    lambda_context: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> HttpRequest:
        context = event.get("requestContext") or {}
        authorizer = context.get("authorizer") or {}
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8", "surrogateescape")
        request_id = str(context.get("requestId") or "").replace("-", "")
        return cls(
            method=str(event.get("httpMethod") or "GET").upper(),
            path=str(event.get("path") or "/"),
            headers={str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()},
            body=body,
            tenant=str(authorizer["tenant"]) if authorizer.get("tenant") else None,
            request_id=request_id if request_id.isalnum() else uuid.uuid4().hex,
            admin=authorizer.get("scope") == "admin",
        )

    def with_lambda_context(self, context: Any) -> HttpRequest:
        """The same request carrying the Lambda context (idempotency registers its remaining time)."""
        return dataclasses.replace(self, lambda_context=context)

    def context(self) -> RequestContext:
        if not self.tenant:
            raise AuthenticationError(
                "Missing or invalid API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
            )
        return RequestContext(tenant=self.tenant, request_id=self.request_id)


class Idempotency(Protocol):
    def run(
        self, tenant: str, idempotency_key: str, body: bytes, work: Callable[[], Result], context: Any = None
    ) -> Result: ...


def is_final(result: Result) -> bool:
    """Whether a retry with the same Idempotency-Key should get this response again: answers, queued requests
    (they carry a Location to poll) and client errors. Not a request that was not kept, a transient server error,
    or a budget refusal (a retry after the reset must run)."""
    status = int(result["status"])
    if status < 400 or "Location" in result["headers"]:
        return True
    return status < 500 and status != 429


class RequestReader(Protocol):
    def get(self, request_id: str) -> RequestRecord | None: ...


class FeedbackStore(Protocol):
    """Where ratings go (stores/outcome_store.py): None when the tenant has no such answer on record."""

    def set_feedback(
        self, request_id: str, tenant: str, score: float, thumbs: str | None, comment: str | None
    ) -> Feedback | None: ...


class ResponseKeeper(Protocol):
    """Responses kept with `store: true` (stores/response_store.py), each readable only by its tenant."""

    def put(self, tenant: str, response: dict[str, Any], items: list[dict[str, Any]]) -> None: ...

    def get(self, tenant: str, response_id: str) -> StoredResponse | None: ...

    def delete(self, tenant: str, response_id: str) -> bool: ...


Response = dict[str, Any] | StreamingResponse


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway proxy result with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON, **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_response(exc: RouterError) -> dict[str, Any]:
    if exc.status >= 500:
        logger.warning("request_failed", status=exc.status, code=exc.code)
    return json_response(exc.status, error_of(exc), exc.headers)


UNAUTHORIZED = AuthenticationError(
    "Missing or invalid API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
)
# What API Gateway answers itself when the authorizer refuses a key (infra/constructs/api.py renders it).
UNAUTHORIZED_BODY = error_of(UNAUTHORIZED)


class RouterApi:
    """OpenAI-compatible routes over one gateway."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        max_body_bytes: int,
        idempotency: Idempotency | None = None,
        requests: RequestReader | None = None,
        cors_origins: tuple[str, ...] = (),
        feedback: FeedbackStore | None = None,
        response_store: ResponseKeeper | None = None,
        response_ttl_seconds: int = 86_400,
    ) -> None:
        self.gateway = gateway
        self.max_body_bytes = max_body_bytes
        self.idempotency = idempotency
        self.requests = requests
        self.cors_origins = cors_origins
        self.feedback_store = feedback
        self.response_store = response_store
        self.response_ttl_hours = response_ttl_seconds / 3600
        self._routes: dict[tuple[str, str], Callable[[HttpRequest], Response]] = {
            ("POST", "/v1/chat/completions"): self.chat_completions,
            ("POST", "/v1/messages"): self.messages,
            ("POST", "/v1/embeddings"): self.embeddings,
            ("POST", "/v1/responses"): self.responses,
            ("POST", "/v1/completions"): self.legacy_completions,
            ("POST", "/v1/route"): self.route_dry_run,
            ("POST", "/v1/feedback"): self.feedback,
            ("GET", "/v1/models"): self.list_models,
            ("GET", "/openapi.json"): self.openapi,
            ("GET", "/health"): self.health,
        }
        # Routes whose last path segment is an id.
        self._prefixed: dict[tuple[str, str], Callable[[HttpRequest, str], Response]] = {
            ("GET", "/v1/requests/"): self.get_request,
            ("GET", "/v1/models/"): self.retrieve_model,
            ("GET", "/v1/responses/"): self.get_response,
            ("DELETE", "/v1/responses/"): self.delete_response,
        }

    def handle(self, event: dict[str, Any], context: Any = None) -> Response:
        """An API Gateway REST proxy event -> a proxy result, or a StreamingResponse for a streamed answer."""
        try:
            request = HttpRequest.from_event(event).with_lambda_context(context)
            response = self._dispatch(request)
            return with_cors(response, request, self.cors_origins) if self.cors_origins else response
        except RouterError as exc:
            return error_response(exc)
        except Exception:  # noqa: BLE001 - the caller sees a plain message; operators get the stack trace in the log
            logger.exception("unhandled_error")
            return json_response(
                500, error_envelope("The router hit an internal error.", "server_error", "internal_error")
            )

    def _dispatch(self, request: HttpRequest) -> Response:
        if request.method == "OPTIONS":
            return preflight(request, self.cors_origins, self._allowed_methods(request.path))
        route = self._routes.get((request.method, request.path.rstrip("/") or "/"))
        if route is not None:
            return route(request)
        for (method, prefix), by_id in self._prefixed.items():
            if request.method == method and request.path.startswith(prefix) and len(request.path) > len(prefix):
                return by_id(request, request.path.removeprefix(prefix))
        return self._unknown(request)

    def _allowed_methods(self, path: str) -> list[str]:
        path = path.rstrip("/") or "/"
        methods = {m for (m, p) in self._routes if p == path}
        methods |= {m for (m, p) in self._prefixed if path.startswith(p)}
        return sorted(methods | {"OPTIONS"})

    # -- routes ------------------------------------------------------------------------------------------
    def chat_completions(self, http: HttpRequest) -> Response:
        ctx = http.context()
        request, raw = self._parse(http)
        prefer_async = prefers_async(http)
        cache_control = cache_control_of(http.headers.get("cache-control", ""))

        def prepare(start: StreamStart, events: Iterator[StreamEvent]) -> PreparedStream:
            return PreparedStream.of(start, events, request)

        return self._once(
            http,
            ctx,
            raw,
            lambda: self.render(
                self.gateway.serve(
                    request, ctx, raw, prefer_async=prefer_async, cache_control=cache_control, prepare=prepare
                ),
                request,
            ),
        )

    def _once(
        self, http: HttpRequest, ctx: RequestContext, raw: bytes, produce: Callable[[], Result | StreamingResponse]
    ) -> Response:
        """`produce`'s response; under an `Idempotency-Key`, a retry gets the first response again instead of
        paying twice (a streamed answer is kept whole, so that a retry replays exactly what was sent)."""
        key = http.headers.get("idempotency-key")
        if not key or self.idempotency is None:
            rendered = produce()
            return rendered if isinstance(rendered, StreamingResponse) else to_proxy(rendered)

        def run() -> Result:
            result = drained(produce())
            if not is_final(result):
                raise NotFinal(result)  # the key is freed: a retry runs the request again
            return result

        result = self.idempotency.run(ctx.tenant, key, raw, run, http.lambda_context)
        if result["headers"].get("x-router-request-id") != ctx.request_id:
            result = {**result, "headers": {**result["headers"], "x-router-idempotent-replay": "true"}}
        return to_proxy(result)

    def get_request(self, http: HttpRequest, request_id: str) -> Response:
        """A queued request's state and, once answered, its result."""
        ctx = http.context()
        record = self.requests.get(request_id) if self.requests is not None and request_id.isalnum() else None
        # Another tenant's request is reported exactly like a missing one.
        if record is None or record.tenant != ctx.tenant:
            raise NotFoundError(
                f"No request {request_id!r} (it may have expired).", param="request_id", code="request_not_found"
            )
        return json_response(200, record.public(), {"x-router-request-id": request_id})

    def feedback(self, http: HttpRequest) -> Response:
        """A rating of one of the caller's answers, on a route that collects outcomes. Repeating it changes
        nothing; a different rating of the same answer replaces the first (the latest counts). Another tenant's
        request, and one whose route keeps no outcomes, are reported exactly like a missing one."""
        ctx = http.context()
        rating = validated(FeedbackRequest, self._body(http))
        stored = None
        if self.feedback_store is not None:
            stored = self.feedback_store.set_feedback(
                rating.request_id, ctx.tenant, rating.value, rating.thumbs, rating.comment
            )
        if stored is None:
            raise NotFoundError(
                f"No answer {rating.request_id!r} of yours to rate: it does not exist, it has expired, or its route "
                "does not collect outcomes (learn.collect).",
                param="request_id",
                code="request_not_found",
            )
        return json_response(200, {"object": "feedback", "request_id": rating.request_id, **stored.as_dict()})

    def route_dry_run(self, http: HttpRequest) -> Response:
        """The routing decision for a request, no model called. Only admin keys see why (the trace names other
        tenants' rules, keywords and regexes, and says whether PII was found); other keys see the decision."""
        ctx = http.context()
        request, _ = self._parse(http)
        explained = self.gateway.explain(request, ctx)
        if not http.admin:
            would_try = explained.get("would_try") or []
            explained = {
                "request_id": explained["request_id"],
                "rule": explained["rule"],
                "model": would_try[0] if would_try else None,
                **({"error": explained["error"]} if "error" in explained else {}),
            }
        return json_response(200, explained, {"x-router-request-id": ctx.request_id})

    def list_models(self, http: HttpRequest) -> Response:
        """The routes and models the caller's key may use (its tenant's allow-list applied)."""
        created = int(time.time())
        data = [model_object(entry, created) for entry in self.gateway.visible_models(http.context())]
        return json_response(200, {"object": "list", "data": data})

    def retrieve_model(self, http: HttpRequest, model_id: str) -> Response:
        created = int(time.time())
        for entry in self.gateway.visible_models(http.context()):
            if entry.id == model_id:
                return json_response(200, model_object(entry, created))
        raise NotFoundError(f"The model {model_id!r} does not exist or you do not have access to it.", param="model",
                            code="model_not_found")  # fmt: skip

    def legacy_completions(self, http: HttpRequest) -> Response:
        """The legacy text completions API is not translated: every catalog model is a chat model, and a prompt
        string rendered as one user message would silently change what instruction-tuned clients expect."""
        http.context()
        message = (
            "The legacy /v1/completions API is not supported; send the prompt as a user message to "
            "POST /v1/chat/completions (or POST /v1/responses or /v1/messages)."
        )
        return json_response(404, error_envelope(message, "invalid_request_error", "unsupported_endpoint"))

    def openapi(self, http: HttpRequest) -> Response:
        from llm_router.openapi import document

        return json_response(200, document())

    def embeddings(self, http: HttpRequest) -> Response:
        ctx = http.context()
        refuse_async(http, "/v1/embeddings")
        request = validated(EmbeddingRequest, self._body(http))
        answer = self.gateway.embed(request, ctx)
        return json_response(200, embedding_list(answer, request.encoding_format or "float"), answer_headers(answer))

    def responses(self, http: HttpRequest) -> Response:
        """OpenAI's Responses API over the same gateway; `store: true` keeps the response and its conversation for
        `previous_response_id` and `GET /v1/responses/{id}`."""
        ctx = http.context()
        refuse_async(http, "/v1/responses")
        raw = self._body(http)
        incoming = validated(ResponsesRequest, raw)
        history = self._history(incoming, ctx.tenant)
        request = translated(lambda: incoming.to_chat(history))
        body = request.model_dump_json(exclude_none=True, by_alias=True).encode()

        def keep(response: dict[str, Any]) -> None:
            if not incoming.store or self.response_store is None:
                return
            items = [*history, *incoming.input_items(), *response["output"]]
            try:
                self.response_store.put(ctx.tenant, response, items)
            except Exception as exc:  # noqa: BLE001 - the caller has its answer; a follow-up by id will say it is gone
                logger.warning("response_store_failed", request_id=ctx.request_id, error=type(exc).__name__)

        def produce() -> Result | StreamingResponse:
            outcome = self.gateway.serve(request, ctx, body)
            if isinstance(outcome, Answered):
                answer = outcome.answer
                rendered = responses.response_of(incoming, answer.request_id, answer.completion, answer.usage)
                keep(rendered)
                return _json_result(200, rendered, answer_headers(answer))
            if isinstance(outcome, Streaming):
                events = responses_stream(incoming, outcome.start, outcome.events, keep)
                return StreamingResponse(200, stream_headers(outcome.start), events)
            return self.render(outcome, request)

        return self._once(http, ctx, raw, produce)

    def _history(self, incoming: ResponsesRequest, tenant: str) -> list[dict[str, Any]]:
        """The conversation `previous_response_id` names (another tenant's is reported as missing)."""
        previous = incoming.previous_response_id
        if previous is None:
            return []
        stored = self.response_store.get(tenant, previous) if self.response_store is not None else None
        if stored is None:
            raise NotFoundError(
                f"Previous response with id {previous!r} not found: responses are kept only when created with "
                f"`store: true`, for {self.response_ttl_hours:g} h; send the whole conversation in `input` instead.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return stored.items

    def get_response(self, http: HttpRequest, response_id: str) -> Response:
        """A response created with `store: true`, as it was answered."""
        ctx = http.context()
        stored = None
        if self.response_store is not None and is_response_id(response_id):
            stored = self.response_store.get(ctx.tenant, response_id)
        if stored is None:
            raise NotFoundError(
                f"No response {response_id!r} (only responses created with `store: true` are kept; it may have "
                "expired).",
                param="response_id",
                code="response_not_found",
            )
        return json_response(200, stored.response)

    def delete_response(self, http: HttpRequest, response_id: str) -> Response:
        ctx = http.context()
        store = self.response_store
        if store is None or not is_response_id(response_id) or not store.delete(ctx.tenant, response_id):
            raise NotFoundError(f"No response {response_id!r}.", param="response_id", code="response_not_found")
        return json_response(200, {"id": response_id, "object": "response.deleted", "deleted": True})

    def messages(self, http: HttpRequest) -> Response:
        """Anthropic's Messages API over the same gateway; errors in Anthropic's format."""
        try:
            ctx = http.context()
            refuse_async(http, "/v1/messages")
            raw = self._body(http)
            request = translated(validated(MessagesRequest, raw).to_chat)
            body = request.model_dump_json(exclude_none=True, by_alias=True).encode()
            return self._once(http, ctx, raw, lambda: anthropic_response(self.gateway.serve(request, ctx, body)))
        except RouterError as exc:
            return json_response(exc.status, anthropic.error_body(exc.status, exc.message), exc.headers)

    def health(self, http: HttpRequest) -> Response:
        return json_response(200, {"status": "ok"})

    def _unknown(self, http: HttpRequest) -> Response:
        path = http.path.rstrip("/") or "/"
        allowed = [method for method in self._allowed_methods(path) if method != "OPTIONS"]
        if allowed:
            message = f"{http.method} is not allowed on {path}; use {' or '.join(allowed)}."
            body = error_envelope(message, "invalid_request_error", "method_not_allowed")
            return json_response(405, body, {"Allow": ", ".join(allowed)})
        message = f"Unknown endpoint: {http.method} {http.path}. Try POST /v1/chat/completions."
        return json_response(404, error_envelope(message, "invalid_request_error", "unknown_url"))

    # -- request bodies -------------------------------------------------------------------------------------
    def _parse(self, http: HttpRequest) -> tuple[ChatCompletionRequest, bytes]:
        raw = self._body(http)
        return validated(ChatCompletionRequest, raw), raw

    def _body(self, http: HttpRequest) -> bytes:
        """The raw body, refused when too large, empty or not UTF-8."""
        raw = http.body
        if len(raw) > self.max_body_bytes:
            raise InvalidRequestError(
                f"The request body is {len(raw)} bytes; the limit is {self.max_body_bytes}.", code="request_too_large"
            )
        if not raw.strip():
            raise InvalidRequestError("The request body is empty; send a JSON object.", code="invalid_json")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequestError(
                f"The request body is not valid UTF-8 (byte {exc.start}); send JSON text.", code="invalid_json"
            ) from None
        if b"NaN" in raw or b"Infinity" in raw:
            refuse_non_finite(raw)  # also in fields the router forwards without reading
        return raw

    # -- outcomes -> responses ------------------------------------------------------------------------------
    def render(self, outcome: Outcome, request: ChatCompletionRequest) -> Result | StreamingResponse:
        """An outcome as a response: a plain dict, or a StreamingResponse for a stream under way."""
        if isinstance(outcome, Answered):
            body = _ENCODER.encode(outcome.answer.completion.wire())
            headers = answer_headers(outcome.answer)
            if outcome.cache is not None:
                headers["x-router-cache"] = outcome.cache
            return {"status": 200, "content_type": JSON, "body": body, "headers": headers}
        if isinstance(outcome, Streaming):
            return chat_stream_response(outcome, request)
        if isinstance(outcome, Queued):
            return _json_result(*queued(outcome))
        if isinstance(outcome, NotKept):
            return _json_result(*not_kept(outcome))
        if isinstance(outcome, Refused):
            exc = outcome.error
            if exc.status >= 500:
                logger.warning("request_failed", status=exc.status, code=exc.code)
            return _json_result(exc.status, error_of(exc), exc.headers)
        raise TypeError(f"unknown outcome {outcome!r}")


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], raw: bytes) -> M:
    """`raw` as `model`, or a 400 naming every failing field."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        message, param = describe(exc)
        raise InvalidRequestError(message, param=param, code="invalid_request") from None


def translated(convert: Callable[[], ChatCompletionRequest]) -> ChatCompletionRequest:
    """Another API's request as a chat completion, or a 400 saying what does not translate."""
    try:
        return convert()
    except ValidationError as exc:
        raise InvalidRequestError(f"Cannot route this request: {describe(exc)[0]}", code="invalid_request") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidRequestError(f"Cannot route this request: {exc}", code="invalid_request") from None


def prefers_async(http: HttpRequest) -> bool:
    return "respond-async" in http.headers.get("prefer", "").lower()


def refuse_async(http: HttpRequest, path: str) -> None:
    """`Prefer: respond-async` is refused, not ignored, where it cannot be honoured: a queued request's result is
    kept and served (`GET /v1/requests/{id}`) as a chat completion, which an embeddings, Responses or Anthropic
    client could not read. Answering synchronously instead would hold a caller that asked not to wait."""
    if prefers_async(http):
        raise InvalidRequestError(
            f"Prefer: respond-async is not supported on POST {path}: a queued request's result is kept as a chat "
            "completion (GET /v1/requests/{id}). Send the request without it, or use POST /v1/chat/completions "
            "for an asynchronous answer.",
            code="async_unsupported",
        )


def cache_control_of(header: str) -> CacheControl:
    """The caller's `Cache-Control`: `no-cache` answers afresh (and stores the answer), `no-store` keeps nothing."""
    directives = {part.strip().lower().split("=", 1)[0] for part in header.split(",")}
    if "no-store" in directives:
        return CacheControl(lookup=False, store=False)
    if "no-cache" in directives:
        return CacheControl(lookup=False, store=True)
    return USE_CACHE


def _json_result(status: int, body: Any, headers: dict[str, str]) -> Result:
    return {"status": status, "content_type": JSON, "body": json.dumps(body, separators=(",", ":")), "headers": headers}


def embedding_list(answer: Embedded, encoding: str) -> dict[str, Any]:
    """OpenAI's embedding list; `base64` packs little-endian float32, as OpenAI does (its SDKs ask for it)."""

    def encoded(vector: list[float]) -> list[float] | str:
        if encoding == "base64":
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return vector

    tokens = answer.usage.input_tokens
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encoded(v)} for i, v in enumerate(answer.vectors)],
        "model": answer.model.id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def model_object(entry: ModelSpec | RouteSpec, created: int) -> dict[str, Any]:
    owner = "llm-router:route" if isinstance(entry, RouteSpec) else f"llm-router:{entry.provider}"
    return {"id": entry.id, "object": "model", "created": created, "owned_by": owner}


# -- CORS ------------------------------------------------------------------------------------------------------
# Off unless origins are configured (CORS_ALLOWED_ORIGINS): browsers then may call the API with a key of their own.
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key, Prefer, x-api-key, anthropic-version, OpenAI-Beta"


def _allowed_origin(http: HttpRequest, origins: tuple[str, ...]) -> str | None:
    origin = http.headers.get("origin")
    if not origin or not origins:
        return None
    return "*" if "*" in origins else origin if origin in origins else None


def preflight(http: HttpRequest, origins: tuple[str, ...], methods: list[str]) -> Response:
    """`OPTIONS` is always answered (204 with `Allow`); the CORS headers come only for a configured origin."""
    headers = {"Allow": ", ".join(methods)}
    origin = _allowed_origin(http, origins)
    if origin is not None:
        headers |= {
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Max-Age": "600",
        }
    return {"statusCode": 204, "headers": headers, "body": "", "isBase64Encoded": False}


def with_cors(response: Response, http: HttpRequest, origins: tuple[str, ...]) -> Response:
    origin = _allowed_origin(http, origins)
    if origin is None:
        return response
    extra = {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "*", "Vary": "Origin"}
    if isinstance(response, StreamingResponse):
        response.headers.update(extra)
    else:
        response["headers"] = {**(response.get("headers") or {}), **extra}
    return response


# -- Anthropic's Messages format -------------------------------------------------------------------------------
def anthropic_response(outcome: Outcome) -> Result | StreamingResponse:
    if isinstance(outcome, Answered):
        answer = outcome.answer
        return _json_result(200, anthropic.message_of(answer.completion, answer.usage), answer_headers(answer))
    if isinstance(outcome, Streaming):
        return StreamingResponse(200, stream_headers(outcome.start), anthropic_stream(outcome.start, outcome.events))
    if isinstance(outcome, Refused):
        exc = outcome.error
        return _json_result(exc.status, anthropic.error_body(exc.status, exc.message), exc.headers)
    status, body, headers = queued(outcome) if isinstance(outcome, Queued) else not_kept(outcome)
    error = body.get("error", {})
    extra = {k: v for k, v in error.items() if k in ("request_id", "queued")}
    return _json_result(status, {**anthropic.error_body(status, str(error.get("message", ""))), **extra}, headers)


def responses_stream(
    request: ResponsesRequest,
    start: StreamStart,
    events: Iterator[StreamEvent],
    on_completed: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[bytes]:
    """Responses API events, each as `event: <type>` and its JSON; `on_completed` gets the final response object
    of a stream that ended whole, before its last event goes out (so a follow-up sent on that event finds it)."""
    translator = responses.StreamTranslator(request, start.request_id, start.model.id, start.created)

    def frame(data: dict[str, Any]) -> bytes:
        return b"event: " + data["type"].encode() + b"\ndata: " + _ENCODER.encode(data).encode() + b"\n\n"

    try:
        yield from map(frame, translator.start())
        for event in events:
            if isinstance(event, StreamEnd):
                if event.error is not None:
                    yield from map(
                        frame, translator.failed(f"The model stopped answering mid-stream: {event.error.message}")
                    )
                    return
                ending = list(translator.end(event.answer.usage))
                if on_completed is not None:
                    on_completed(ending[-1]["response"])
                yield from map(frame, ending)
                return
            yield from map(frame, translator.delta(event))
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def anthropic_stream(start: StreamStart, events: Iterator[StreamEvent]) -> Iterator[bytes]:
    translator = anthropic.StreamTranslator("msg_" + start.request_id, start.model.id)

    def frame(name: str, data: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _ENCODER.encode(data).encode() + b"\n\n"

    try:
        yield from (frame(*e) for e in translator.start())
        for event in events:
            if isinstance(event, StreamEnd):
                if event.error is not None:
                    message = f"The model stopped answering mid-stream: {event.error.message}"
                    yield frame("error", anthropic.error_body(500, message))
                    return
                yield from (frame(*e) for e in translator.end(event.answer.usage))
                return
            yield from (frame(*e) for e in translator.delta(event))
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def stream_headers(start: StreamStart) -> dict[str, str]:
    return _fixed_stream_headers(start) | _stream_outcome_headers(start)


def _fixed_stream_headers(start: StreamStart) -> dict[str, str]:
    """The headers known before the first token: they name the model, not how getting to it went."""
    headers = {
        "Content-Type": EVENT_STREAM,
        "Cache-Control": "no-cache",
        "x-router-model": start.model.id,
        "x-router-rule": start.decision.rule,
        "x-router-request-id": start.request_id,
    }
    if start.decision.adaptation is not None:
        headers["x-router-adaptation"] = start.decision.adaptation
    return headers


def _stream_outcome_headers(start: StreamStart) -> dict[str, str]:
    """The headers known once the first delta is in: the attempts it took, and whether it was simulated."""
    headers = {"x-router-attempts": str(len(start.attempts))}
    if start.simulated:
        headers["x-router-simulated"] = "true"
    return headers


@dataclass(frozen=True)
class StreamHead:
    """A chat stream's fixed chunk fields, and the bytes every chunk starts with (serialised once: each chunk
    encodes only its delta)."""

    base: dict[str, Any]
    chunk_head: bytes


def stream_head(start: StreamStart) -> StreamHead:
    base = {
        "id": start.completion_id,
        "object": "chat.completion.chunk",
        "created": start.created,
        "model": start.model.id,
    }
    return StreamHead(base, b"data: " + _ENCODER.encode(base)[:-1].encode() + b',"choices":[{"index":0,"delta":')


def chat_stream_response(outcome: Streaming, request: ChatCompletionRequest) -> StreamingResponse:
    """A live chat stream's response: the one prepared while the model worked, when there is one, with the
    headers that depend on how getting to the first delta went."""
    prepared = outcome.prepared
    if not isinstance(prepared, PreparedStream) or prepared.events is not outcome.events:
        prepared = PreparedStream.of(outcome.start, outcome.events, request)
    response = prepared.response
    response.headers.update(_stream_outcome_headers(outcome.start))
    if outcome.cache is not None:
        response.headers["x-router-cache"] = outcome.cache
    return response


@dataclass(frozen=True)
class PreparedStream:
    """A chat stream's response, made from the stream's start and its events while the model works on its first
    token (`Gateway.serve`'s `prepare`): once the first delta is in, only the headers that depend on it are added."""

    events: Iterator[StreamEvent]
    response: StreamingResponse

    @classmethod
    def of(cls, start: StreamStart, events: Iterator[StreamEvent], request: ChatCompletionRequest) -> PreparedStream:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        body = sse_stream(start, events, include_usage, stream_head(start))
        return cls(events, StreamingResponse(200, _fixed_stream_headers(start), body))


def answer_headers(answer: Priced) -> dict[str, str]:
    headers = {
        "x-router-model": answer.model.id,
        "x-router-rule": answer.decision.rule,
        "x-router-cost-usd": f"{answer.cost_usd:.8f}",
        "x-router-request-id": answer.request_id,
        "x-router-attempts": str(len(answer.attempts)),
    }
    if answer.decision.adaptation is not None:
        headers["x-router-adaptation"] = answer.decision.adaptation
    if answer.saved_usd is not None:
        headers["x-router-saved-usd"] = f"{answer.saved_usd:.8f}"
    if answer.usage.estimated:
        headers["x-router-cost-estimated"] = "true"
    if answer.simulated:
        headers["x-router-simulated"] = "true"
    return headers


def queued(outcome: Queued) -> tuple[int, dict[str, Any], dict[str, str]]:
    location = f"/v1/requests/{outcome.request_id}"
    headers = {"Location": location, "x-router-request-id": outcome.request_id}
    if outcome.mode == "async":
        accepted = {
            "id": outcome.request_id,
            "object": "chat.completion.request",
            "status": "queued",
            "location": location,
        }
        return 202, accepted, headers
    message = f"Every candidate model failed; the request is queued and will be answered: GET {location}"
    body = error_envelope(
        message, "server_error", "all_models_failed",
        request_id=outcome.request_id, queued=True, attempts=outcome.attempts,
    )  # fmt: skip
    # `x-should-retry: false`: the request is kept, so an SDK's automatic retry would only queue it again.
    headers |= {"Retry-After": "30", "x-router-attempts": str(len(outcome.attempts)), "x-should-retry": "false"}
    return 503, body, headers


def not_kept(outcome: NotKept) -> tuple[int, dict[str, Any], dict[str, str]]:
    message = (
        "Every candidate model failed and the request could not be queued; it was not kept. Retry it."
        if outcome.mode == "fallback"
        else "The request could not be queued; it was not kept. Retry it."
    )
    body = error_envelope(
        message, "server_error", "queue_unavailable",
        request_id=outcome.request_id, queued=False, attempts=outcome.attempts,
    )  # fmt: skip
    # No automatic SDK retry either: with the queue failing, a burst of immediate retries only adds load; the
    # caller retries after Retry-After.
    return 503, body, {"Retry-After": "5", "x-router-request-id": outcome.request_id, "x-should-retry": "false"}


def drained(rendered: Result | StreamingResponse) -> Result:
    """A response as a plain dict: a stream is read to its end."""
    if isinstance(rendered, dict):
        return rendered
    headers = dict(rendered.headers)
    content_type = headers.pop("Content-Type", EVENT_STREAM)
    body = b"".join(rendered.body).decode()
    return {"status": rendered.status_code, "content_type": content_type, "body": body, "headers": headers}


def to_proxy(rendered: Result | StreamingResponse) -> Response:
    if isinstance(rendered, StreamingResponse):
        return rendered
    return {
        "statusCode": rendered["status"],
        "headers": {"Content-Type": rendered["content_type"], **rendered["headers"]},
        "body": rendered["body"],
        "isBase64Encoded": False,
    }


def refuse_non_finite(raw: bytes) -> None:
    """400 for NaN, Infinity or -Infinity anywhere in the body: they are not JSON, and a provider would choke on
    them (the bytes may also occur inside strings, hence the full parse on this rare path)."""

    def refuse(constant: str) -> Any:
        raise InvalidRequestError(
            f"The request body contains {constant}, which is not valid JSON; send finite numbers.",
            code="invalid_json",
        )

    with contextlib.suppress(ValueError):  # not JSON at all: the schema's parser names the problem
        json.loads(raw, parse_constant=refuse)


def describe(exc: ValidationError) -> tuple[str, str | None]:
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


def iter_body(response: Response) -> Iterator[bytes]:
    """The body of any response, as bytes chunks (tests and the local server)."""
    if isinstance(response, StreamingResponse):
        yield from response.body
        return
    body = response.get("body") or ""
    yield base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


# -- server-sent events ----------------------------------------------------------------------------------------
# Each provider delta becomes an OpenAI `chat.completion.chunk` the moment it arrives. The usage chunk (sent when the
# request sets `stream_options.include_usage`) also carries what the answer cost, in an extension field `x_router`
# (`cost_usd`, `baseline_cost_usd`, `saved_usd`, `cost_estimated`), since the response headers are gone by then. A
# provider failure after the first chunk ends the stream with an OpenAI-style error event (`data: {"error": ...}`),
# which the official SDKs raise as an API error.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
DONE = b"data: [DONE]\n\n"
_PLAIN_CHUNK_END = b',"logprobs":null,"finish_reason":null}]}\n\n'
_FIRST_TEXT_DELTA = b'{"role":"assistant","content":'
_TEXT_DELTA = b'{"content":'
_TEXT_CHUNK_END = b"}" + _PLAIN_CHUNK_END


def _event(body: dict[str, Any]) -> bytes:
    return b"data: " + _ENCODER.encode(body).encode() + b"\n\n"


def sse_stream(
    start: StreamStart, events: Iterator[StreamEvent], include_usage: bool, head: StreamHead | None = None
) -> Iterator[bytes]:
    """`text/event-stream` chunks: content and tool-call deltas, the finish chunk, usage, then `[DONE]`. Closing
    it, even before the first read, closes `events` (which accounts for the stream)."""
    close = getattr(events, "close", None)
    head = stream_head(start) if head is None else head
    return ClosingIterator(
        _sse_events(start, events, include_usage, head), close if close is not None else lambda: None
    )


def _sse_events(
    start: StreamStart, events: Iterator[StreamEvent], include_usage: bool, prepared: StreamHead
) -> Generator[bytes, None, None]:
    base, head = prepared.base, prepared.chunk_head
    # Read the generator under the gateway's ClosingIterator directly: `finally` below closes `events` itself.
    source = events.items if isinstance(events, ClosingIterator) else events

    role_sent = finished = False
    try:
        for event in source:
            if isinstance(event, StreamEnd):
                yield from _ending(base, head, event, include_usage, finished)
                return
            content = event.content
            if content and event.tool_calls is None and event.logprobs is None and not event.finish_reason:
                # Text alone, as nearly every chunk is: written straight out, the bytes `chunk` would write.
                text = (_TEXT_DELTA if role_sent else _FIRST_TEXT_DELTA) + encode_basestring(content).encode()
                role_sent = True
                yield head + text + _TEXT_CHUNK_END
                continue
            delta = _chunk_delta(event, first=not role_sent)
            role_sent = True
            if delta:
                yield _chunk(head, delta, logprobs=event.logprobs)
            if event.finish_reason and not finished:
                finished = True
                yield _chunk(head, {}, event.finish_reason)
    except Exception:  # noqa: BLE001 - the status line is sent: the client gets an error event, operators the trace
        logger.exception("stream_failed", request_id=start.request_id)
        yield _event(error_envelope("The router hit an internal error mid-stream.", "server_error", "internal_error"))
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def _chunk_delta(event: StreamDelta, *, first: bool) -> dict[str, Any]:
    """The `delta` of a chunk: the first one names the role (with empty content when it has no text of its own);
    empty when the event carries nothing a client sees."""
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
    if event.content:
        delta["content"] = event.content
    if event.tool_calls:
        delta["tool_calls"] = event.tool_calls
    return delta


def _chunk(
    head: bytes, delta: dict[str, Any], finish: str | None = None, logprobs: dict[str, Any] | None = None
) -> bytes:
    """What `_event({**base, "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason":
    finish}]})` writes, byte for byte, given the bytes every chunk of the stream starts with (`StreamHead`)."""
    if finish is None and logprobs is None:
        return head + _ENCODER.encode(delta).encode() + _PLAIN_CHUNK_END
    tail = _ENCODER.encode({"logprobs": logprobs, "finish_reason": finish})[1:].encode()
    return head + _ENCODER.encode(delta).encode() + b"," + tail + b"]}\n\n"


def _ending(base: dict[str, Any], head: bytes, end: StreamEnd, include_usage: bool, finished: bool) -> Iterator[bytes]:
    if end.error is not None:
        message = f"The model stopped answering mid-stream: {end.error.message}"
        yield _event(error_envelope(message, "server_error", "stream_interrupted"))
        return
    if not finished:
        yield _chunk(head, {}, end.answer.completion.choices[0].finish_reason or "stop")
    if include_usage and end.answer.completion.usage is not None:
        answer = end.answer
        usage = answer.completion.usage.model_dump(exclude_none=True) if answer.completion.usage else {}
        usage["x_router"] = {
            "cost_usd": round(answer.cost_usd, 10),
            "baseline_cost_usd": None if answer.baseline_cost_usd is None else round(answer.baseline_cost_usd, 10),
            "saved_usd": None if answer.saved_usd is None else round(answer.saved_usd, 10),
            "cost_estimated": answer.usage.estimated,
        }
        yield _event({**base, "choices": [], "usage": usage})
    yield DONE
