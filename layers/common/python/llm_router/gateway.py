"""One request end to end: decide -> call with fallbacks -> account -> a domain outcome.

The gateway knows nothing of HTTP: it returns what happened (answered, streaming, queued, not kept, refused) and
`api.py` renders that as statuses, headers and bodies. Everything a request needs lives in local variables or in
the objects it creates, so one gateway serves many threads at once.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

from llm_router.breaker import CircuitBreaker
from llm_router.cache import (
    CACHEABLE_FINISH,
    USE_CACHE,
    CacheControl,
    CachedAnswer,
    CachePlan,
    CacheStatus,
    ResponseCache,
    plan_cache,
)
from llm_router.errors import (
    AllModelsFailedError,
    InvalidRequestError,
    PolicyViolationError,
    RequestRejectedError,
    RouterError,
)
from llm_router.metrics import COUNT, MS, NONE, Dimension, Metric, MetricsRecorder
from llm_router.observability import logger
from llm_router.outcomes import Observed, OutcomeRecorder
from llm_router.pricing import cost_usd
from llm_router.providers.base import (
    WHILE_WAITING,
    ContentFiltered,
    ContextWindowExceeded,
    Deadline,
    Embeddings,
    InvalidRequest,
    Provider,
    ProviderAuthError,
    ProviderError,
    ProviderResponse,
    RetryableError,
    StreamDelta,
    Usage,
)
from llm_router.routing.engine import Decision, Plan, decide, plan
from llm_router.routing.features import REGEX_SCAN_CHARS, Features, estimate_tokens
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.openai import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    CompletionTokensDetails,
    CompletionUsage,
    EmbeddingRequest,
    PromptTokensDetails,
    ToolCall,
)
from llm_router.stores.fallback_queue import QueuedRequest

# Below this much time left, a retry or another candidate cannot answer in time.
MIN_ATTEMPT_SECONDS = 0.25
# A provider that asks to wait longer than this (Retry-After) is not waited for: the request moves to the next
# candidate and the model rests in this process until the time it named.
MAX_RETRY_AFTER_WAIT_SECONDS = 2.0
# Attempt kinds that mean a model was passed over without being called.
SKIPPED_KINDS = frozenset({"circuit_open", "context_too_small"})

T = TypeVar("T")
# What `_route` settles before any model is called: the config it read, the decision and the candidates to try.
Routed = tuple[ConfigSnapshot, Decision, Plan]


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


@dataclass
class Trail:
    """The attempts of one request, and how long its provider calls took."""

    attempts: list[Attempt] = field(default_factory=list)
    provider_ms: float = 0.0

    def skipped(self, model: ModelSpec, why: str, kind: str) -> None:
        self.attempts.append(Attempt(model.id, False, why, kind))

    def failed(self, model: ModelSpec, exc: ProviderError, started: float) -> None:
        ms = (time.perf_counter() - started) * 1000
        self.provider_ms += ms
        self.attempts.append(Attempt(model.id, False, exc.message, exc.kind, ms))

    def succeeded(self, model: ModelSpec, started: float) -> None:
        ms = (time.perf_counter() - started) * 1000
        self.provider_ms += ms
        self.attempts.append(Attempt(model.id, True, ms=ms))

    def as_dicts(self) -> list[dict[str, Any]]:
        return [a.as_dict() for a in self.attempts]


@dataclass
class Priced:
    """What any answer cost and who gave it: what accounting, metrics and the `x-router-*` headers need."""

    request_id: str
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


@dataclass
class Answer(Priced):
    """A chat completion."""

    completion: ChatCompletion


@dataclass
class Embedded(Priced):
    """Embeddings, one vector per input text."""

    vectors: list[list[float]]


# -- outcomes ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answered:
    """A model answered (or the cache did, `cache="hit"`); the whole completion is ready."""

    answer: Answer
    cache: CacheStatus | None = None


@dataclass(frozen=True)
class Queued:
    """The request waits on the fallback queue: asked for (`async`) or after every candidate failed (`fallback`)."""

    request_id: str
    mode: Literal["async", "fallback"]
    attempts: list[dict[str, Any]]


@dataclass(frozen=True)
class NotKept:
    """The request had to be queued but the queue could not be written: the caller must retry it."""

    request_id: str
    mode: Literal["async", "fallback"]
    attempts: list[dict[str, Any]]


@dataclass(frozen=True)
class Refused:
    """Refused with a reason the caller can act on (a rule, a budget, a bad request, every model failed)."""

    error: RouterError


@dataclass(frozen=True)
class StreamStart:
    """What is known once a provider produced its first delta: enough for the status line and the headers."""

    request_id: str
    completion_id: str
    created: int
    model: ModelSpec
    decision: Decision
    attempts: list[Attempt]
    simulated: bool


@dataclass(frozen=True)
class StreamEnd:
    """The last event of a stream: what it cost (accounted already) and, if it broke off, why."""

    answer: Answer
    error: ProviderError | None = None


StreamEvent = StreamDelta | StreamEnd


@dataclass
class Streaming:
    """A stream under way: `events` yields the provider's deltas, then one StreamEnd. Closing it early (the client
    went away) still accounts for what was delivered."""

    start: StreamStart
    events: Iterator[StreamEvent]
    cache: CacheStatus | None = None
    # What the caller's `prepare` made of the stream (see `serve`), while the model worked on its first token.
    prepared: object = None


Outcome = Answered | Streaming | Queued | NotKept | Refused
# What a caller makes of a live stream before its first delta: given the stream's start and its events (not read
# yet), while the model works on its first token (see `Gateway.serve`).
Prepare = Callable[[StreamStart, Iterator[StreamEvent]], object]


class ClosingIterator(Iterator[T]):
    """A generator whose `close()` also runs `on_close`: a generator closed before its first `next()` (a client
    gone before the first chunk was written) never runs its own `finally`. `on_close` must be safe to repeat.
    A reader that will call `close()` itself may read `items`, the generator, directly (a frame less per item)."""

    def __init__(self, items: Generator[T, None, None], on_close: Callable[[], object]) -> None:
        self._items = items
        self._on_close = on_close

    @property
    def items(self) -> Generator[T, None, None]:
        return self._items

    def __next__(self) -> T:
        return next(self._items)

    def close(self) -> None:
        try:
            self._items.close()
        finally:
            self._on_close()


class Accounting(Protocol):
    """Spend control around each call: budgets before, usage counters after (see llm_router.accounting)."""

    def before_call(self, ctx: RequestContext, decision: Decision, chain: Plan, config: ConfigSnapshot) -> Plan:
        """Return the chain to try (possibly degraded to cheaper models), or raise a RouterError (e.g. 429)."""
        ...

    def after_answer(self, ctx: RequestContext, answer: Priced) -> None:
        """Record what the answer cost (atomic counters per tenant, day and month)."""
        ...

    def permitted_models(self, tenant: str) -> frozenset[str] | None:
        """The catalog models the tenant may use, or None when it may use all of them."""
        ...


class ConfigSource(Protocol):
    def snapshot(self) -> ConfigSnapshot: ...


class ProviderSource(Protocol):
    def for_model(self, model: ModelSpec) -> Provider: ...


class QueuePort(Protocol):
    def send(self, item: QueuedRequest) -> None: ...


class RequestRecords(Protocol):
    def put_queued(
        self, request_id: str, tenant: str, mode: str, decision: dict[str, Any], errors: list[Any]
    ) -> None: ...

    def mark_failed(self, request_id: str, errors: list[Any], decision: dict[str, Any] | None) -> None: ...


class Gateway:
    """Routes and answers chat completions; shared by the router function, the replay worker and local mode."""

    def __init__(
        self,
        config: ConfigSource,
        providers: ProviderSource,
        metrics: MetricsRecorder,
        *,
        deadline_seconds: float = 27.5,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        accounting: Accounting | None = None,
        queue: QueuePort | None = None,
        requests: RequestRecords | None = None,
        regex_scan_chars: int = REGEX_SCAN_CHARS,
        cache: ResponseCache | None = None,
        outcomes: OutcomeRecorder | None = None,
        defer: Callable[[Callable[[], object]], None] | None = None,
    ) -> None:
        self.config = config
        self.providers = providers
        self.metrics = metrics
        self.deadline_seconds = deadline_seconds
        self.breaker = breaker or CircuitBreaker()
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.accounting = accounting
        self.queue = queue
        self.requests = requests
        self.regex_scan_chars = regex_scan_chars
        self.cache = cache
        self.outcomes = outcomes
        # Where cache writes go to wait until the response is out (runtime/deferred.py); None: written before it.
        self.defer = defer

    # -- dry run -------------------------------------------------------------------------------------------
    def explain(self, request: ChatCompletionRequest, ctx: RequestContext) -> dict[str, Any]:
        """The decision, the candidates that would be tried, and the trace; no model is called."""
        snapshot = self.config.snapshot()
        features = Features(request, ctx.tenant, regex_scan_chars=self.regex_scan_chars)
        decision = decide(request.model, features, snapshot, explain=True)
        result: dict[str, Any] = {"request_id": ctx.request_id, **decision.as_dict()}
        if decision.reject is None:
            try:
                chain = plan(decision, features, snapshot)
                result["would_try"] = [m.id for m in chain.models]
                result["skipped"] = [{"model": m, "why": why} for m, why in chain.skipped]
            except (InvalidRequestError, PolicyViolationError) as exc:
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

    def visible_models(self, ctx: RequestContext) -> list[ModelSpec | RouteSpec]:
        """The routes and models the caller may name: models outside its allow-list, and routes none of whose
        models it may use, are left out."""
        snapshot = self.config.snapshot()
        permitted = self.accounting.permitted_models(ctx.tenant) if self.accounting is not None else None
        if permitted is None:
            return [*snapshot.routes.values(), *snapshot.models.values()]
        routes = [r for r in snapshot.routes.values() if permitted.intersection(_route_models(r))]
        return [*routes, *(m for m in snapshot.models.values() if m.id in permitted)]

    # -- the outcome of one request -------------------------------------------------------------------------
    def serve(
        self,
        request: ChatCompletionRequest,
        ctx: RequestContext,
        body: bytes,
        *,
        prefer_async: bool = False,
        cache_control: CacheControl = USE_CACHE,
        prepare: Prepare | None = None,
    ) -> Outcome:
        """Answer the request (streamed when it asks), from the cache when its route caches and holds the answer,
        or queue it: straight away when asked to (async), or when every candidate failed before producing anything.

        `prepare`, for a live stream: called with the stream's start and its events as soon as they are known
        (while the model works on its first token, when the provider says it is waiting), its result handed back in
        `Streaming.prepared`, so that the caller does its share of the work before the first byte, not after it.
        The start's `attempts` gain the successful one, and `simulated` may change, once the first delta is in."""
        try:
            if prefer_async:
                return self._queue_now(request, ctx, body)
            routed = self._route(request, ctx)
            caching = self._cache_plan(request, ctx, routed, cache_control)
            if caching is not None and caching.lookup:
                hit = self._from_cache(request, ctx, routed, caching)
                if hit is not None:
                    return hit
            status = caching.status if caching is not None else None
            if request.stream:
                store = caching if caching is not None and caching.store else None
                streaming = self._stream(request, ctx, routed, prepare, store)
                streaming.cache = status
                return streaming
            answer = self._complete(request, ctx, routed)
            if caching is not None and caching.store:
                self._store(ctx, caching, answer)
            return Answered(answer, status)
        except AllModelsFailedError as exc:
            if self.queue is None or self.requests is None:
                return Refused(exc)
            return self._enqueue(ctx, "fallback", body, exc.decision, exc.attempts)
        except RouterError as exc:
            return Refused(exc)

    def _queue_now(self, request: ChatCompletionRequest, ctx: RequestContext, body: bytes) -> Queued | NotKept:
        if self.queue is None or self.requests is None:
            raise InvalidRequestError(
                "Asynchronous requests need the fallback queue, which is not configured.", code="async_unavailable"
            )
        # Refuse now what would be refused later (unknown model, rejecting rule, no capable model, budget).
        _, decision, _ = self._route(request, ctx)
        return self._enqueue(ctx, "async", body, decision.as_dict(), [])

    def complete(self, request: ChatCompletionRequest, ctx: RequestContext) -> Answer:
        """Call the candidates in order until one answers; raises AllModelsFailedError when none does."""
        return self._complete(request, ctx, self._route(request, ctx))

    def _complete(self, request: ChatCompletionRequest, ctx: RequestContext, routed: Routed) -> Answer:
        snapshot, decision, chain = routed

        def call(provider: Provider, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
            return provider.complete(request, model, deadline)

        model, response, trail = self._first_success(request, ctx, decision, chain, call)
        usage = response.usage or _estimated_usage(request, response.content or "", response.tool_calls)
        completion = build_completion(ctx, model, response, usage)
        priced = self._priced(ctx, snapshot, decision, model, trail, usage, response.simulated)
        answer = Answer(**priced, completion=completion)
        self._record(ctx, answer, chain, trail, response.answered_by)
        if self.accounting is not None:
            self.accounting.after_answer(ctx, answer)
        self._observe(ctx, request, snapshot, answer, streamed=False)
        return answer

    def embed(self, request: EmbeddingRequest, ctx: RequestContext) -> Embedded:
        """Embeddings through the same rules, candidate loop, accounting and metrics as chat. A request that every
        candidate failed is refused (503), not queued: a caller waiting for vectors retries on its own."""
        routing = request.routing_request()
        snapshot, decision, chain = self._route(routing, ctx, embeddings=True)
        texts = request.texts()

        def call(provider: Provider, model: ModelSpec, deadline: Deadline) -> Embeddings:
            result = provider.embed(texts, model, deadline, request.dimensions)
            if len(result.vectors) != len(texts):
                raise RetryableError(f"{model.id}: {len(result.vectors)} embeddings for {len(texts)} inputs",
                                     kind="malformed_response")  # fmt: skip
            return result

        model, result, trail = self._first_success(routing, ctx, decision, chain, call)
        usage = Usage(result.input_tokens, 0, estimated=result.estimated)
        priced = self._priced(ctx, snapshot, decision, model, trail, usage, result.simulated)
        answer = Embedded(**priced, vectors=result.vectors)
        self._record(ctx, answer, chain, trail, None)
        if self.accounting is not None:
            self.accounting.after_answer(ctx, answer)
        return answer

    def stream(
        self,
        request: ChatCompletionRequest,
        ctx: RequestContext,
        prepare: Prepare | None = None,
    ) -> Streaming:
        """Fall back exactly as `complete` does until a provider has produced its first delta; from then on the
        stream is committed to that model. Raises AllModelsFailedError when no candidate produced anything.
        `prepare` as for `serve`."""
        return self._stream(request, ctx, self._route(request, ctx), prepare)

    def _stream(
        self,
        request: ChatCompletionRequest,
        ctx: RequestContext,
        routed: Routed,
        prepare: Prepare | None = None,
        store: CachePlan | None = None,
    ) -> Streaming:
        snapshot, decision, chain = routed
        trail = Trail()
        # Made while a model works on its first token (providers call `while_waiting` once the request is out):
        # the stream's start as it will be if that model's first delta arrives, its events (not started), and
        # what `prepare` makes of them. From the first byte to the first chunk handed on, only what depends on
        # that byte is left to do. A model that fails before its first delta leaves its preparation unused.
        ready: list[Any] = []

        def get_ready(model: ModelSpec, simulated: bool = False) -> list[Any]:
            start = self._stream_start(ctx, decision, model, list(trail.attempts), simulated=simulated)
            live = _LiveStream(self, request, ctx, snapshot, chain, trail)
            events: Iterator[StreamEvent] = live.events
            if store is not None:
                events = self._storing(events, ctx, store)
            return [start, live, Streaming(start, events, prepared=None if prepare is None else prepare(start, events))]

        def call(
            provider: Provider, model: ModelSpec, deadline: Deadline
        ) -> tuple[StreamDelta, Generator[StreamDelta, None, None]]:
            def while_waiting() -> None:
                ready[:] = get_ready(model)

            ready.clear()
            deltas = provider.stream(request, model, deadline)
            waiting = WHILE_WAITING.set(while_waiting)
            try:
                first = next(deltas)
            except StopIteration:
                raise RetryableError(f"{model.id}: the stream ended before any output", kind="empty_stream") from None
            finally:
                WHILE_WAITING.reset(waiting)
            return first, deltas

        model, (first, deltas), trail = self._first_success(request, ctx, decision, chain, call, trail)
        if ready and ready[0].model is model and len(ready[0].attempts) + 1 == len(trail.attempts):
            start, live, streaming = ready
            start.attempts.append(trail.attempts[-1])  # this model's success, the one attempt it lacked
            if first.simulated:
                start = streaming.start = replace(start, simulated=True)
        else:  # a provider that does not wait (the simulation), or one that did not say it was waiting
            start, live, streaming = get_ready(model, first.simulated)  # its attempts include the success
        live.begin(start, first, deltas)
        return streaming

    @staticmethod
    def _stream_start(
        ctx: RequestContext, decision: Decision, model: ModelSpec, attempts: list[Attempt], *, simulated: bool
    ) -> StreamStart:
        return StreamStart(
            request_id=ctx.request_id,
            completion_id=f"chatcmpl-{ctx.request_id}",
            created=int(time.time()),
            model=model,
            decision=decision,
            attempts=attempts,
            simulated=simulated,
        )

    # -- the response cache ----------------------------------------------------------------------------------
    def _cache_plan(
        self, request: ChatCompletionRequest, ctx: RequestContext, routed: Routed, control: CacheControl
    ) -> CachePlan | None:
        if self.cache is None:
            return None
        snapshot, decision, chain = routed
        return plan_cache(request, ctx.tenant, decision, chain, snapshot, control)

    def _from_cache(
        self, request: ChatCompletionRequest, ctx: RequestContext, routed: Routed, caching: CachePlan
    ) -> Answered | Streaming | None:
        """The stored answer, replayed as the model gave it (streamed when the request streams), at no cost; None
        on a miss. A cache that cannot be read is a miss: the model answers instead."""
        assert self.cache is not None
        snapshot, decision, _ = routed
        try:
            entry = self.cache.get(caching.key, ctx.tenant)
        except Exception as exc:  # noqa: BLE001 - any read failure: the model answers as if nothing were cached
            logger.warning("cache_read_failed", request_id=ctx.request_id, error=type(exc).__name__)
            return None
        model = snapshot.models.get(entry.model) if entry is not None else None
        if entry is None or model is None:
            return None
        response = ProviderResponse(
            content=entry.content,
            finish_reason=entry.finish_reason,
            usage=entry.usage,
            tool_calls=entry.tool_calls,
            simulated=entry.simulated,
        )
        completion = build_completion(ctx, model, response, entry.usage)
        # Nothing was paid: what the answer would have cost again is all saved.
        answer = Answer(
            request_id=ctx.request_id,
            model=model,
            decision=decision,
            attempts=[],
            cost_usd=0.0,
            baseline_cost_usd=entry.cost_usd,
            usage=entry.usage,
            simulated=entry.simulated,
            completion=completion,
        )
        self._record_hit(ctx, answer, caching, streamed=bool(request.stream))
        if self.accounting is not None:
            # In the tenant's counters like any answer: one request, no cost, the first call's cost saved, and no
            # tokens (no model read or wrote any).
            self.accounting.after_answer(ctx, replace(answer, usage=Usage(0, 0)))
        if not request.stream:
            return Answered(answer, "hit")
        start = StreamStart(
            ctx.request_id, completion.id, completion.created, model, decision, [], simulated=entry.simulated
        )
        return Streaming(start, _replayed(entry, answer), "hit")

    def _storing(self, events: Iterator[StreamEvent], ctx: RequestContext, caching: CachePlan) -> Iterator[StreamEvent]:
        """Pass a live stream on; keep its answer once it has ended without an error (never a partial one). Closing
        it closes the live stream, even before the first read, so that stream still settles its accounting."""

        def passing() -> Generator[StreamEvent, None, None]:
            for event in events:
                if isinstance(event, StreamEnd) and event.error is None:
                    self._store(ctx, caching, event.answer)
                yield event

        close = getattr(events, "close", None)
        return ClosingIterator(passing(), close if close is not None else lambda: None)

    def _store(self, ctx: RequestContext, caching: CachePlan, answer: Answer) -> None:
        """Keep a whole answer; refusals and empty answers are not kept, and a failed write never fails the answer."""
        assert self.cache is not None
        choice = answer.completion.choices[0]
        message = choice.message
        if choice.finish_reason not in CACHEABLE_FINISH or message.refusal:
            return
        if not (message.content or message.tool_calls):
            return
        entry = CachedAnswer(
            tenant=ctx.tenant,
            route=caching.route,
            model=answer.model.id,
            content=message.content,
            tool_calls=[c.model_dump() for c in message.tool_calls] if message.tool_calls else None,
            finish_reason=choice.finish_reason,
            usage=answer.usage,
            cost_usd=answer.cost_usd,
            simulated=answer.simulated,
            created_at=int(time.time()),
        )
        if self.defer is not None:
            self.defer(lambda: self._put(ctx, caching, entry))
        else:
            self._put(ctx, caching, entry)

    def _put(self, ctx: RequestContext, caching: CachePlan, entry: CachedAnswer) -> None:
        assert self.cache is not None
        try:
            self.cache.put(caching.key, entry, caching.spec.ttl_seconds)
        except Exception as exc:  # noqa: BLE001 - the caller has its answer; a lost cache entry costs one more call
            logger.warning("cache_write_failed", request_id=ctx.request_id, error=type(exc).__name__)

    def _record_hit(self, ctx: RequestContext, answer: Answer, caching: CachePlan, *, streamed: bool) -> None:
        """A hit's EMF document: a request that cost nothing and saved what the answer cost the first time."""
        total_ms = (time.perf_counter() - ctx.started) * 1000
        self.metrics.record(
            [
                (Metric.REQUESTS, 1, COUNT),
                (Metric.CACHE_HITS, 1, COUNT),
                (Metric.COST_USD, 0.0, NONE),
                (Metric.SAVED_USD, answer.saved_usd or 0.0, NONE),
                (Metric.LATENCY_MS, total_ms, MS),
                (Metric.ROUTER_OVERHEAD_MS, total_ms, MS),
            ],
            dimensions={Dimension.ROUTE: caching.route},
            metadata={
                "message": "cache_hit",
                "tenant": ctx.tenant,
                "request_id": ctx.request_id,
                "rule": answer.decision.rule,
                "model": answer.model.id,
                "streamed": True if streamed else None,
            },
        )

    # -- queueing ------------------------------------------------------------------------------------------
    def _enqueue(
        self, ctx: RequestContext, mode: Literal["async", "fallback"], body: bytes, decision: dict[str, Any],
        attempts: list[dict[str, Any]],
    ) -> Queued | NotKept:  # fmt: skip
        assert self.queue is not None and self.requests is not None
        item = QueuedRequest(
            ctx.request_id, ctx.tenant, mode, json.loads(body), decision, attempts,
            deadline_seconds=self.deadline_seconds,
        )  # fmt: skip
        try:
            # The record first, so a replay that runs at once finds it.
            self.requests.put_queued(ctx.request_id, ctx.tenant, mode, decision, attempts)
            self.queue.send(item)
        except Exception as exc:  # noqa: BLE001 - any failure to persist: the caller must learn the request was not kept
            logger.error("queue_write_failed", request_id=ctx.request_id, error=type(exc).__name__)
            self.metrics.record(
                [(Metric.QUEUE_WRITE_FAILED, 1, COUNT)], dimensions={}, metadata={"request_id": ctx.request_id}
            )
            with contextlib.suppress(Exception):
                self.requests.mark_failed(ctx.request_id, [{"error": "the fallback queue could not be written"}], None)
            return NotKept(ctx.request_id, mode, attempts)
        self.metrics.record(
            [(Metric.QUEUED, 1, COUNT)], dimensions={}, metadata={"request_id": ctx.request_id, "mode": mode}
        )
        logger.info("queued", request_id=ctx.request_id, tenant=ctx.tenant, mode=mode)
        return Queued(ctx.request_id, mode, attempts)

    # -- the request path ----------------------------------------------------------------------------------
    def _route(
        self, request: ChatCompletionRequest, ctx: RequestContext, *, embeddings: bool = False
    ) -> tuple[ConfigSnapshot, Decision, Plan]:
        """Decide and filter the candidates, or raise the refusal the caller gets (rule, capability, budget)."""
        snapshot = self.config.snapshot()
        features = Features(request, ctx.tenant, regex_scan_chars=self.regex_scan_chars)
        decision = decide(request.model, features, snapshot)
        if decision.reject is not None:
            raise RequestRejectedError(
                decision.reject.message, status=decision.reject.status, extra={"rule": decision.rule}
            )
        chain = plan(decision, features, snapshot, embeddings=embeddings)
        if self.accounting is not None:
            chain = self.accounting.before_call(ctx, decision, chain, snapshot)
        return snapshot, decision, chain

    def _first_success(
        self,
        request: ChatCompletionRequest,
        ctx: RequestContext,
        decision: Decision,
        chain: Plan,
        call: Callable[[Provider, ModelSpec, Deadline], T],
        trail: Trail | None = None,
    ) -> tuple[ModelSpec, T, Trail]:
        """The candidate loop: the first model whose `call` succeeds, with what was tried before it (in `trail`,
        a new one unless given)."""
        deadline = Deadline(self.deadline_seconds)
        trail = Trail() if trail is None else trail
        overflowed: ModelSpec | None = None  # the largest model whose context window the prompt did not fit
        for model in chain.models:
            if overflowed is not None and model.context_window <= overflowed.context_window:
                why = f"context window {model.context_window} is not larger than {overflowed.id}'s, which overflowed"
                trail.skipped(model, why, "context_too_small")
                continue
            if not self.breaker.allow(model.id):
                trail.skipped(model, "circuit open: resting after repeated failures", "circuit_open")
                continue
            try:
                return model, self._attempt(model, ctx, deadline, trail, call), trail
            except ContextWindowExceeded:
                overflowed = model
            except (RetryableError, ProviderAuthError):
                pass
        logger.warning("all_models_failed", request_id=ctx.request_id, attempts=trail.as_dicts())
        raise AllModelsFailedError(ctx.request_id, decision.as_dict(), trail.as_dicts())

    def _attempt(
        self,
        model: ModelSpec,
        ctx: RequestContext,
        deadline: Deadline,
        trail: Trail,
        call: Callable[[Provider, ModelSpec, Deadline], T],
    ) -> T:
        """One model: a call, and once more after a short wait if it failed in a way that waiting may fix.

        Raises the provider's error when the model cannot answer (the loop moves on), or InvalidRequestError when
        the request itself is at fault (the caller gets it; no other model would do better)."""
        # The breaker hears of every end of this attempt: a provider-side failure counts (failure), a success closes
        # it, and anything else (the request at fault, no time left, an unexpected error) ends a half-open trial
        # without a verdict, so the model can never stay skipped because a trial was left open.
        judged = False
        try:
            for try_number in (1, 2):
                if deadline.remaining() < MIN_ATTEMPT_SECONDS:
                    raise RetryableError(f"{model.id}: no time left for another attempt", kind="timeout")
                started = time.perf_counter()
                try:
                    result = call(self.providers.for_model(model), model, deadline)
                except RetryableError as exc:
                    self._failed(trail, model, exc, started)
                    self.breaker.failure(model.id)
                    if exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER_WAIT_SECONDS:
                        self.breaker.rest(model.id, exc.retry_after)
                    backoff = self._backoff(exc, deadline)
                    if try_number == 1 and backoff is not None and self.breaker.allow(model.id):
                        self.sleep(backoff)
                        continue
                    judged = True
                    raise
                except (ContextWindowExceeded, ProviderAuthError) as exc:
                    self._failed(trail, model, exc, started)
                    raise
                except (InvalidRequest, ContentFiltered) as exc:
                    self._provider_error(model, exc)
                    raise InvalidRequestError(
                        f"{model.id} refused the request: {exc.message}",
                        code=exc.kind,
                        headers={"x-router-model": model.id, "x-router-request-id": ctx.request_id},
                    ) from exc
                trail.succeeded(model, started)
                self.breaker.success(model.id)
                judged = True
                return result
            raise AssertionError("unreachable: the second try returns or raises")
        finally:
            if not judged:
                self.breaker.release(model.id)

    def _backoff(self, exc: RetryableError, deadline: Deadline) -> float | None:
        """Jittered wait before retrying the same model once (the provider's Retry-After when it sent one);
        None when the wait is too long to be worth it or would not fit the deadline."""
        if exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER_WAIT_SECONDS:
            return None
        wait = exc.retry_after if exc.retry_after is not None else self.rng.uniform(0.05, 0.25)
        if wait + MIN_ATTEMPT_SECONDS > deadline.remaining():
            return None
        return wait

    def _failed(self, trail: Trail, model: ModelSpec, exc: ProviderError, started: float) -> None:
        trail.failed(model, exc, started)
        self._provider_error(model, exc)

    def _provider_error(self, model: ModelSpec, exc: ProviderError) -> None:
        logger.warning("provider_error", model=model.id, provider=model.provider, kind=exc.kind, status=exc.status)
        self.metrics.record(
            [(Metric.PROVIDER_ERRORS, 1, COUNT)],
            dimensions={Dimension.PROVIDER: model.provider, Dimension.MODEL: model.id, Dimension.ERROR_KIND: exc.kind},
        )

    # -- streaming -----------------------------------------------------------------------------------------
    def _stream_answer(
        self,
        request: ChatCompletionRequest,
        ctx: RequestContext,
        snapshot: ConfigSnapshot,
        start: StreamStart,
        trail: Trail,
        collected: _Collected,
    ) -> Answer:
        tool_calls = collected.tool_calls()
        response = ProviderResponse(
            content=collected.text() if collected.content else None,
            finish_reason=collected.finish_reason or "stop",
            usage=collected.usage,
            tool_calls=tool_calls,
            answered_by=collected.answered_by,
            simulated=start.simulated,
        )
        usage = collected.usage or _estimated_usage(request, collected.text(), tool_calls)
        completion = build_completion(ctx, start.model, response, usage, created=start.created)
        priced = self._priced(ctx, snapshot, start.decision, start.model, trail, usage, start.simulated)
        return Answer(**priced, completion=completion)

    # -- learning ------------------------------------------------------------------------------------------
    def _observe(
        self, ctx: RequestContext, request: ChatCompletionRequest, snapshot: ConfigSnapshot, answer: Answer, *,
        streamed: bool, whole: bool = True,
    ) -> None:  # fmt: skip
        """Hand a whole answer (not a stream that broke off) of a route that collects outcomes to the recorder;
        other routes pay one lookup."""
        route_id = answer.decision.route
        route = snapshot.routes.get(route_id) if route_id is not None and self.outcomes is not None and whole else None
        if route is None or route.learn is None or not route.learn.collect:
            return
        assert self.outcomes is not None
        self.outcomes.observe(Observed(ctx.tenant, request, route, snapshot, answer, streamed, time.time()))

    # -- pricing and the request's metrics -------------------------------------------------------------------
    @staticmethod
    def _priced(
        ctx: RequestContext,
        snapshot: ConfigSnapshot,
        decision: Decision,
        model: ModelSpec,
        trail: Trail,
        usage: Usage,
        simulated: bool,
    ) -> dict[str, Any]:
        """The fields of a Priced answer."""
        cost = cost_usd(usage, model.price)
        baseline_model = snapshot.models.get(decision.baseline) if decision.baseline else None
        baseline_cost = cost_usd(usage, baseline_model.price) if baseline_model is not None else None
        return {
            "request_id": ctx.request_id, "model": model, "decision": decision, "attempts": trail.attempts,
            "cost_usd": cost, "baseline_cost_usd": baseline_cost, "usage": usage, "simulated": simulated,
        }  # fmt: skip

    def _record(
        self,
        ctx: RequestContext,
        answer: Priced,
        chain: Plan,
        trail: Trail,
        answered_by: str | None,
        *,
        streamed: bool = False,
        interrupted: bool = False,
    ) -> None:
        """The request's EMF document, which is also its log line (CloudWatch Logs keeps it; Logs Insights queries
        it): a second, Powertools-formatted line with the same facts would cost more than the rest of the routing."""
        usage = answer.usage
        prompt_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        total_ms = (time.perf_counter() - ctx.started) * 1000
        values: list[tuple[str, float, str]] = [
            (Metric.REQUESTS, 1, COUNT),
            (Metric.INPUT_TOKENS, prompt_tokens, COUNT),
            (Metric.OUTPUT_TOKENS, usage.output_tokens, COUNT),
            (Metric.COST_USD, answer.cost_usd, NONE),
            (Metric.LATENCY_MS, total_ms, MS),
            (Metric.ROUTER_OVERHEAD_MS, max(0.0, total_ms - trail.provider_ms), MS),
            # Failed calls before the answer; models passed over without a call are not counted.
            (Metric.FALLBACKS, sum(1 for a in trail.attempts if a.kind not in SKIPPED_KINDS) - 1, COUNT),
        ]
        if answer.baseline_cost_usd is not None:
            values += [
                (Metric.BASELINE_COST_USD, answer.baseline_cost_usd, NONE),
                (Metric.SAVED_USD, answer.baseline_cost_usd - answer.cost_usd, NONE),
            ]
        if interrupted:
            values.append((Metric.STREAM_INTERRUPTED, 1, COUNT))
        decision = answer.decision
        self.metrics.record(
            values,
            dimensions={
                Dimension.MODEL: answer.model.id,
                Dimension.ROUTE: decision.route or "pinned",
                Dimension.PROVIDER: answer.model.provider,
            },
            metadata={
                "message": "routed",
                "tenant": ctx.tenant,
                "request_id": ctx.request_id,
                "rule": decision.rule,
                "adaptation": decision.adaptation,
                "attempts": len(trail.attempts),
                "skipped": [f"{m}: {why}" for m, why in chain.skipped] or None,
                "cost_estimated": usage.estimated,
                # Prompt routers and inference profiles name the model that actually answered.
                "answered_by": answered_by,
                "streamed": True if streamed else None,
                "interrupted": True if interrupted else None,
            },
        )


def _replayed(entry: CachedAnswer, answer: Answer) -> Iterator[StreamEvent]:
    """A cached answer as the deltas of a live stream: text, tool calls, the finish reason, then the end."""
    if entry.content:
        yield StreamDelta(content=entry.content, simulated=entry.simulated)
    if entry.tool_calls:
        yield StreamDelta(tool_calls=[{"index": i, **call} for i, call in enumerate(entry.tool_calls)])
    yield StreamDelta(finish_reason=entry.finish_reason, usage=entry.usage)
    yield StreamEnd(answer)


class _LiveStream:
    """A stream's way through the gateway: its deltas passed on as they come, and what was received accounted
    once, however the stream ends: to its end, broken off by the provider, or closed by the client (even before
    its first read). Made before the first delta (while the model works on it); `begin` starts it."""

    def __init__(
        self,
        gateway: Gateway,
        request: ChatCompletionRequest,
        ctx: RequestContext,
        snapshot: ConfigSnapshot,
        chain: Plan,
        trail: Trail,
    ) -> None:
        self.gateway, self.request, self.ctx, self.snapshot, self.chain, self.trail = (
            gateway, request, ctx, snapshot, chain, trail,
        )  # fmt: skip
        self.collected = _Collected()
        self.begun = False
        self.settled: Answer | None = None
        self.completed = False
        # The stream's events, for the caller to hand on; they may be read only after `begin`.
        self.events = ClosingIterator(self._events(), self._closed)

    def begin(self, start: StreamStart, first: StreamDelta, deltas: Generator[StreamDelta, None, None]) -> None:
        self.start, self.first, self.deltas, self.begun = start, first, deltas, True
        self.collected.add(first)  # received, so charged, even if the client never reads it
        self.since = time.perf_counter()

    def _closed(self) -> None:
        if self.begun:  # the events of a model that never produced a delta have nothing to settle
            self._settle(None)

    def _settle(self, error: ProviderError | None) -> Answer:
        if self.settled is None:
            gateway, ctx, trail, collected = self.gateway, self.ctx, self.trail, self.collected
            with contextlib.suppress(Exception):
                self.deltas.close()
            trail.provider_ms += (time.perf_counter() - self.since) * 1000
            answer = gateway._stream_answer(self.request, ctx, self.snapshot, self.start, trail, collected)
            interrupted = error is not None or not self.completed
            gateway._record(
                ctx, answer, self.chain, trail, collected.answered_by, streamed=True, interrupted=interrupted
            )
            if gateway.accounting is not None:
                gateway.accounting.after_answer(ctx, answer)
            gateway._observe(ctx, self.request, self.snapshot, answer, streamed=True, whole=not interrupted)
            self.settled = answer
        return self.settled

    def _events(self) -> Generator[StreamEvent, None, None]:
        error: ProviderError | None = None
        deltas, collected = self.deltas, self.collected
        try:
            delta: StreamDelta | None = self.first
            while delta is not None:
                if delta.content or delta.tool_calls or delta.finish_reason:
                    yield delta
                delta = next(deltas, None)
                if delta is not None:
                    collected.add(delta)
            self.completed = True
        except ProviderError as exc:
            error = exc
            self.gateway._provider_error(self.start.model, exc)
        finally:
            # Also reached when the client goes away (GeneratorExit): the tokens it got are still charged.
            answer = self._settle(error)
        if error is not None:
            logger.warning(
                "stream_interrupted", request_id=self.ctx.request_id, model=self.start.model.id, kind=error.kind
            )
        yield StreamEnd(answer, error)


class _Collected:
    """What a stream delivered so far: text, tool calls by index, finish reason, usage."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.answered_by: str | None = None

    def add(self, delta: StreamDelta) -> None:
        if delta.content:
            self.content.append(delta.content)
        for part in delta.tool_calls or ():
            call = self.calls.setdefault(int(part.get("index", 0)), {"id": "", "name": "", "arguments": []})
            function = part.get("function") or {}
            call["id"] = part.get("id") or call["id"]
            call["name"] = function.get("name") or call["name"]
            if function.get("arguments"):
                call["arguments"].append(function["arguments"])
        self.finish_reason = delta.finish_reason or self.finish_reason
        self.usage = delta.usage or self.usage
        self.answered_by = delta.answered_by or self.answered_by

    def text(self) -> str:
        return "".join(self.content)

    def tool_calls(self) -> list[dict[str, Any]] | None:
        if not self.calls:
            return None
        return [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": "".join(c["arguments"])}}
            for _, c in sorted(self.calls.items())
        ]


def _route_models(route: RouteSpec) -> set[str]:
    models = set(route.default)
    if route.strategy is not None:
        models |= {route.strategy.weak, route.strategy.strong}
    return models


def _estimated_usage(request: ChatCompletionRequest, text: str, tool_calls: list[dict[str, Any]] | None) -> Usage:
    """Token counts when the provider reported none (flagged: `x-router-cost-estimated`)."""
    arguments = "".join(str((c.get("function") or {}).get("arguments") or "") for c in tool_calls or ())
    return Usage(
        input_tokens=estimate_tokens("\n".join(m.text() for m in request.messages)),
        output_tokens=estimate_tokens(text + arguments),
        estimated=True,
    )


def build_completion(
    ctx: RequestContext, model: ModelSpec, response: ProviderResponse, usage: Usage, *, created: int | None = None
) -> ChatCompletion:
    """The OpenAI `chat.completion` for a provider's answer."""
    prompt_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    tool_calls = [ToolCall.model_validate(c) for c in response.tool_calls] if response.tool_calls else None
    return ChatCompletion(
        id=f"chatcmpl-{ctx.request_id}",
        created=created if created is not None else int(time.time()),
        model=model.id,
        choices=[
            Choice(
                message=AssistantMessage(content=response.content, tool_calls=tool_calls),
                finish_reason=response.finish_reason,
                logprobs=response.logprobs,
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
