"""One request end to end: decide -> call with fallbacks -> account -> answer.

The gateway holds no HTTP knowledge: the API turns its results and errors into responses.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llm_router.errors import AllModelsFailedError, InvalidRequestError, RequestRejectedError
from llm_router.metrics import COUNT, MS, NONE, MetricsRecorder
from llm_router.observability import logger
from llm_router.pricing import cost_usd
from llm_router.providers.base import (
    ContentFiltered,
    ContextWindowExceeded,
    Deadline,
    InvalidRequest,
    ProviderAuthError,
    ProviderError,
    ProviderResponse,
    RetryableError,
    Usage,
)
from llm_router.providers.registry import ProviderRegistry
from llm_router.routing.engine import Decision, Plan, decide, plan
from llm_router.routing.features import Features, estimate_tokens
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    CompletionTokensDetails,
    CompletionUsage,
    PromptTokensDetails,
    ToolCall,
)
from llm_router.stores.config_store import ConfigStore
from llm_router.stores.fallback_queue import FallbackQueue, QueuedRequest
from llm_router.stores.request_store import RequestStore

# Below this much time left, a retry or another candidate cannot answer in time.
MIN_ATTEMPT_SECONDS = 0.25
# A provider that asks to wait longer than this (Retry-After) is not waited for: the request moves to the next
# candidate and the model rests in this process until the time it named.
MAX_RETRY_AFTER_WAIT_SECONDS = 2.0
# Attempt kinds that mean a model was passed over without being called.
SKIPPED_KINDS = frozenset({"circuit_open", "context_too_small"})


@dataclass
class RequestContext:
    tenant: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class Attempt:
    model: str
    ok: bool
    error: str | None = None
    kind: str | None = None
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "ok": self.ok, "ms": round(self.ms, 2)}
        if self.error:
            out["error"] = self.error
            out["kind"] = self.kind
        return out


@dataclass(frozen=True)
class Deferred:
    """A request that was queued (202 async, 503 after every candidate failed) or could not be (503)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Answer:
    completion: ChatCompletion
    model: ModelSpec
    decision: Decision
    attempts: list[Attempt]
    cost_usd: float
    baseline_cost_usd: float | None
    usage: Usage
    simulated: bool

    @property
    def saved_usd(self) -> float | None:
        return None if self.baseline_cost_usd is None else self.baseline_cost_usd - self.cost_usd

    def headers(self, request_id: str) -> dict[str, str]:
        headers = {
            "x-router-model": self.model.id,
            "x-router-rule": self.decision.rule,
            "x-router-cost-usd": f"{self.cost_usd:.8f}",
            "x-router-request-id": request_id,
            "x-router-attempts": str(len(self.attempts)),
        }
        if self.saved_usd is not None:
            headers["x-router-saved-usd"] = f"{self.saved_usd:.8f}"
        if self.usage.estimated:
            headers["x-router-cost-estimated"] = "true"
        if self.simulated:
            headers["x-router-simulated"] = "true"
        return headers


class CircuitBreaker:
    """Per model, per process: after `threshold` consecutive retryable failures the model rests for `cooldown`
    seconds; then one trial request decides whether it closes again."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._trial: set[str] = set()
        self._lock = threading.Lock()

    def allow(self, model_id: str) -> bool:
        with self._lock:
            until = self._open_until.get(model_id)
            if until is None:
                return True
            if self._clock() < until or model_id in self._trial:
                return False
            self._trial.add(model_id)  # half-open: exactly one trial request
            return True

    def success(self, model_id: str) -> None:
        with self._lock:
            self._failures.pop(model_id, None)
            self._open_until.pop(model_id, None)
            self._trial.discard(model_id)

    def failure(self, model_id: str) -> None:
        with self._lock:
            count = self._failures.get(model_id, 0) + 1
            self._failures[model_id] = count
            if model_id in self._trial or count >= self.threshold:
                self._open_until[model_id] = self._clock() + self.cooldown
                self._trial.discard(model_id)

    def rest(self, model_id: str, seconds: float) -> None:
        """Skip the model for `seconds` (a provider's Retry-After), then allow one trial request."""
        with self._lock:
            until = self._clock() + seconds
            self._open_until[model_id] = max(until, self._open_until.get(model_id, until))
            self._trial.discard(model_id)


class Accounting(Protocol):
    """Spend control around each call: budgets before, usage counters after (see llm_router.accounting)."""

    def before_call(self, ctx: RequestContext, decision: Decision, chain: Plan, config: ConfigSnapshot) -> Plan:
        """Return the chain to try (possibly degraded to cheaper models), or raise a RouterError (e.g. 429)."""
        ...

    def after_answer(self, ctx: RequestContext, answer: Answer) -> None:
        """Record what the answer cost (atomic counters per tenant, day and month)."""
        ...


class Gateway:
    """Routes and answers chat completions; shared by the router function, the replay worker and local mode."""

    def __init__(
        self,
        config: ConfigStore,
        providers: ProviderRegistry,
        metrics: MetricsRecorder,
        *,
        deadline_seconds: float = 27.5,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        accounting: Accounting | None = None,
        queue: FallbackQueue | None = None,
        requests: RequestStore | None = None,
    ) -> None:
        self.config = config
        self.providers = providers
        self.metrics = metrics
        self.deadline_seconds = deadline_seconds
        self.breaker = breaker or CircuitBreaker()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.accounting = accounting
        self.queue = queue
        self.requests = requests

    # -- dry run -------------------------------------------------------------------------------------------
    def explain(self, request: ChatCompletionRequest, ctx: RequestContext) -> dict[str, Any]:
        """The decision, the candidates that would be tried, and the trace; no model is called."""
        snapshot = self.config.snapshot()
        features = Features(request, ctx.tenant)
        decision = decide(request.model, features, snapshot, explain=True)
        result: dict[str, Any] = {"request_id": ctx.request_id, **decision.as_dict()}
        if decision.reject is None:
            try:
                chain = plan(decision, features, snapshot)
                result["would_try"] = [m.id for m in chain.models]
                result["skipped"] = [{"model": m, "why": why} for m, why in chain.skipped]
            except InvalidRequestError as exc:
                result["would_try"] = []
                result["error"] = exc.message
        result["features"] = {
            "chars": features.chars,
            "estimated_tokens": features.tokens,
            "has_tools": features.has_tools,
            "has_images": features.has_images,
        }
        result["scores"] = features.scores()
        return result

    # -- answer now, or queue -------------------------------------------------------------------------------
    def serve(
        self, request: ChatCompletionRequest, ctx: RequestContext, body: bytes, *, prefer_async: bool = False
    ) -> Answer | Deferred:
        """Answer the request, or queue it: straight away when asked to (async), or when every candidate failed."""
        if prefer_async:
            if self.queue is None or self.requests is None:
                raise InvalidRequestError(
                    "Asynchronous requests need the fallback queue, which is not configured.", code="async_unavailable"
                )
            # Refuse now what would be refused later (unknown model, rejecting rule, no capable model, budget).
            _, decision, _ = self._route(request, ctx)
            return self._enqueue(ctx, "async", body, decision.as_dict(), [])
        try:
            return self.complete(request, ctx)
        except AllModelsFailedError as exc:
            if self.queue is None or self.requests is None:
                raise
            return self._enqueue(ctx, "fallback", body, exc.decision, exc.extra.get("attempts", []))

    def _enqueue(
        self, ctx: RequestContext, mode: str, body: bytes, decision: dict[str, Any], errors: list[Any]
    ) -> Deferred:
        assert self.queue is not None and self.requests is not None
        location = f"/v1/requests/{ctx.request_id}"
        item = QueuedRequest(
            ctx.request_id, ctx.tenant, mode, json.loads(body), decision, errors, deadline_seconds=self.deadline_seconds
        )
        try:
            # The record first, so a replay that runs at once finds it.
            self.requests.put_queued(ctx.request_id, ctx.tenant, mode, decision, errors)
            self.queue.send(item)
        except Exception as exc:  # noqa: BLE001 - any failure to persist: the caller must learn the request was not kept
            logger.error("queue_write_failed", request_id=ctx.request_id, error=type(exc).__name__)
            self.metrics.record(
                [("QueueWriteFailed", 1, COUNT)], dimensions={}, metadata={"request_id": ctx.request_id}
            )
            with contextlib.suppress(Exception):
                self.requests.mark_failed(ctx.request_id, [{"error": "the fallback queue could not be written"}], None)
            message = (
                "Every candidate model failed and the request could not be queued; it was not kept. Retry it."
                if mode == "fallback"
                else "The request could not be queued; it was not kept. Retry it."
            )
            body_out = {
                "error": {
                    "message": message,
                    "type": "server_error",
                    "param": None,
                    "code": "queue_unavailable",
                    "request_id": ctx.request_id,
                    "queued": False,
                    "attempts": errors,
                }
            }
            return Deferred(503, body_out, {"Retry-After": "5", "x-router-request-id": ctx.request_id})
        self.metrics.record(
            [("Queued", 1, COUNT)], dimensions={}, metadata={"request_id": ctx.request_id, "mode": mode}
        )
        logger.info("queued", request_id=ctx.request_id, tenant=ctx.tenant, mode=mode)
        headers = {"Location": location, "x-router-request-id": ctx.request_id}
        if mode == "async":
            accepted = {
                "id": ctx.request_id,
                "object": "chat.completion.request",
                "status": "queued",
                "location": location,
            }
            return Deferred(202, accepted, headers)
        queued = {
            "error": {
                "message": f"Every candidate model failed; the request is queued and will be answered: GET {location}",
                "type": "server_error",
                "param": None,
                "code": "all_models_failed",
                "request_id": ctx.request_id,
                "queued": True,
                "attempts": errors,
            }
        }
        return Deferred(503, queued, {**headers, "Retry-After": "30", "x-router-attempts": str(len(errors))})

    # -- the request path ----------------------------------------------------------------------------------
    def _route(self, request: ChatCompletionRequest, ctx: RequestContext) -> tuple[ConfigSnapshot, Decision, Plan]:
        """Decide and filter the candidates, or raise the refusal the caller gets (rule, capability, budget)."""
        snapshot = self.config.snapshot()
        features = Features(request, ctx.tenant)
        decision = decide(request.model, features, snapshot)
        if decision.reject is not None:
            raise RequestRejectedError(
                decision.reject.message, status=decision.reject.status, extra={"rule": decision.rule}
            )
        chain = plan(decision, features, snapshot)
        if self.accounting is not None:
            chain = self.accounting.before_call(ctx, decision, chain, snapshot)
        return snapshot, decision, chain

    def complete(self, request: ChatCompletionRequest, ctx: RequestContext) -> Answer:
        """Call the candidates in order until one answers; raises AllModelsFailedError when none does."""
        snapshot, decision, chain = self._route(request, ctx)
        deadline = Deadline(self.deadline_seconds)
        attempts: list[Attempt] = []
        provider_ms = 0.0
        overflowed: ModelSpec | None = None  # the largest model whose context window the prompt did not fit

        for model in chain.models:
            if overflowed is not None and model.context_window <= overflowed.context_window:
                why = f"context window {model.context_window} is not larger than {overflowed.id}'s, which overflowed"
                attempts.append(Attempt(model.id, False, why, "context_too_small"))
                continue
            if not self.breaker.allow(model.id):
                attempts.append(
                    Attempt(model.id, False, "circuit open: resting after repeated failures", "circuit_open")
                )
                continue
            for try_number in (1, 2):
                if deadline.remaining() < MIN_ATTEMPT_SECONDS:
                    break
                t0 = time.perf_counter()
                try:
                    response = self.providers.for_model(model).complete(request, model, deadline)
                except RetryableError as exc:
                    provider_ms += self._failed(attempts, model, exc, t0)
                    self.breaker.failure(model.id)
                    if exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER_WAIT_SECONDS:
                        self.breaker.rest(model.id, exc.retry_after)
                    backoff = self._backoff(exc, deadline)
                    if try_number == 1 and backoff is not None and self.breaker.allow(model.id):
                        self._sleep(backoff)
                        continue
                    break
                except (ContextWindowExceeded, ProviderAuthError) as exc:
                    provider_ms += self._failed(attempts, model, exc, t0)
                    if isinstance(exc, ContextWindowExceeded):
                        overflowed = model
                    break
                except (InvalidRequest, ContentFiltered) as exc:
                    self._provider_error(model, exc)
                    raise InvalidRequestError(
                        f"{model.id} refused the request: {exc.message}",
                        code=exc.kind,
                        headers={"x-router-model": model.id, "x-router-request-id": ctx.request_id},
                    ) from exc
                ms = (time.perf_counter() - t0) * 1000
                provider_ms += ms
                attempts.append(Attempt(model.id, True, ms=ms))
                self.breaker.success(model.id)
                answer = self._answer(request, ctx, snapshot, decision, chain, model, response, attempts, provider_ms)
                if self.accounting is not None:
                    self.accounting.after_answer(ctx, answer)
                return answer

        logger.warning("all_models_failed", request_id=ctx.request_id, attempts=[a.as_dict() for a in attempts])
        failed = AllModelsFailedError(
            "Every candidate model failed; try again shortly.",
            headers={
                "Retry-After": "5",
                "x-router-request-id": ctx.request_id,
                "x-router-attempts": str(len(attempts)),
            },
            extra={"request_id": ctx.request_id, "attempts": [a.as_dict() for a in attempts], "queued": False},
        )
        failed.decision = decision.as_dict()
        raise failed

    def _backoff(self, exc: RetryableError, deadline: Deadline) -> float | None:
        """Jittered wait before retrying the same model once (the provider's Retry-After when it sent one);
        None when the wait is too long to be worth it or would not fit the deadline."""
        if exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER_WAIT_SECONDS:
            return None
        wait = exc.retry_after if exc.retry_after is not None else self._rng.uniform(0.05, 0.25)
        if wait + MIN_ATTEMPT_SECONDS > deadline.remaining():
            return None
        return wait

    def _failed(self, attempts: list[Attempt], model: ModelSpec, exc: ProviderError, started: float) -> float:
        """Record a failed call in the trail and the metrics; returns its duration in milliseconds."""
        ms = (time.perf_counter() - started) * 1000
        attempts.append(Attempt(model.id, False, exc.message, exc.kind, ms))
        self._provider_error(model, exc)
        return ms

    def _provider_error(self, model: ModelSpec, exc: ProviderError) -> None:
        logger.warning("provider_error", model=model.id, provider=model.provider, kind=exc.kind, status=exc.status)
        self.metrics.record(
            [("ProviderErrors", 1, COUNT)],
            dimensions={"Provider": model.provider, "Model": model.id, "ErrorKind": exc.kind},
        )

    def _answer(
        self,
        request: ChatCompletionRequest,
        ctx: RequestContext,
        snapshot: ConfigSnapshot,
        decision: Decision,
        chain: Plan,
        model: ModelSpec,
        response: ProviderResponse,
        attempts: list[Attempt],
        provider_ms: float,
    ) -> Answer:
        usage = response.usage or Usage(
            input_tokens=estimate_tokens("\n".join(m.text() for m in request.messages)),
            output_tokens=estimate_tokens(response.content or ""),
            estimated=True,
        )
        cost = cost_usd(usage, model.price)
        baseline_model = snapshot.models.get(decision.baseline) if decision.baseline else None
        baseline_cost = cost_usd(usage, baseline_model.price) if baseline_model is not None else None
        prompt_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        completion = ChatCompletion(
            id=f"chatcmpl-{ctx.request_id}",
            created=int(time.time()),
            model=model.id,
            choices=[
                Choice(
                    message=AssistantMessage(
                        content=response.content,
                        tool_calls=[ToolCall.model_validate(c) for c in response.tool_calls]
                        if response.tool_calls
                        else None,
                    ),
                    finish_reason=response.finish_reason,
                )
            ],
            usage=CompletionUsage(
                prompt_tokens=prompt_tokens,
                completion_tokens=usage.output_tokens,
                total_tokens=prompt_tokens + usage.output_tokens,
                prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cache_read_tokens)
                if usage.cache_read_tokens
                else None,
                completion_tokens_details=CompletionTokensDetails(reasoning_tokens=usage.reasoning_tokens)
                if usage.reasoning_tokens
                else None,
            ),
        )
        answer = Answer(completion, model, decision, attempts, cost, baseline_cost, usage, response.simulated)
        total_ms = (time.perf_counter() - ctx.started) * 1000
        values = [
            ("Requests", 1, COUNT),
            ("InputTokens", prompt_tokens, COUNT),
            ("OutputTokens", usage.output_tokens, COUNT),
            ("CostUSD", cost, NONE),
            ("LatencyMs", total_ms, MS),
            ("RouterOverheadMs", max(0.0, total_ms - provider_ms), MS),
            # Failed calls before the answer; models passed over without a call are not counted.
            ("Fallbacks", sum(1 for a in attempts if a.kind not in SKIPPED_KINDS) - 1, COUNT),
        ]
        if baseline_cost is not None:
            values += [("BaselineCostUSD", baseline_cost, NONE), ("SavedUSD", baseline_cost - cost, NONE)]
        # This EMF document is also the request's log line (CloudWatch Logs keeps it; Logs Insights queries it):
        # a second, Powertools-formatted line with the same facts would cost more than the rest of the routing.
        self.metrics.record(
            values,
            dimensions={"Model": model.id, "Route": decision.route or "pinned", "Provider": model.provider},
            metadata={
                "message": "routed",
                "tenant": ctx.tenant,
                "request_id": ctx.request_id,
                "rule": decision.rule,
                "attempts": len(attempts),
                "skipped": [f"{m}: {why}" for m, why in chain.skipped] or None,
                "cost_estimated": usage.estimated,
                # Prompt routers and inference profiles name the model that actually answered.
                "answered_by": response.answered_by,
            },
        )
        return answer
