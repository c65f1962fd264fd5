"""Outcome records for routes that learn, written behind the answers, and the shadow sample sent to the queue.

The gateway hands each answer of a route with `learn.collect` to `OutcomeRecorder.observe`, a list append: the
prompt's features, the record's write and a shadow evaluation's message happen on a writer thread, after the
caller has the answer (streamed: at the stream's end). Routes without `learn` cost one dictionary lookup and no
write. In Lambda the router function's `after_response` hook waits for the writer (`flush`) once each response has
been posted and before the runtime loop asks for the next invocation (the replay function flushes after each
batch), so nothing is left in a frozen environment; at shutdown the writer is drained too. A write that fails is
counted (`OutcomeWriteFailed`) and never reaches the caller.

Shadow sampling is deterministic by request id (`shadow_sampled`). A sampled request goes to the fallback queue as a
`shadow` message only if the second model and the judge may receive it: the request's rule regions and every
policy in force must allow both (`residency_refusal`), else it is skipped and counted (`ShadowSkipped`, reason
`residency`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from llm_router.metrics import COUNT, Dimension, Metric, MetricsRecorder
from llm_router.observability import logger
from llm_router.routing.engine import residency_refusal
from llm_router.schemas.catalog import RouteSpec

if TYPE_CHECKING:
    from llm_router.gateway import Answer
    from llm_router.routing.snapshot import ConfigSnapshot
    from llm_router.schemas.openai import ChatCompletionRequest
    from llm_router.stores.outcome_store import OutcomeRecord

# Answers waiting for the writer beyond this are dropped (and counted): a stalled table must not grow memory.
MAX_PENDING = 10_000


class OutcomeWriter(Protocol):
    def put(self, record: OutcomeRecord) -> None: ...

    def set_shadow(self, record: OutcomeRecord, shadow: dict[str, Any]) -> None: ...


class ShadowQueue(Protocol):
    def send_shadow(self, request_id: str, payload: dict[str, Any]) -> None: ...


def shadow_sampled(request_id: str, rate: float) -> bool:
    """Whether a request is in a route's shadow sample: the same request id always gives the same answer."""
    digest = hashlib.sha256(f"shadow\x00{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def shadow_candidate(route: RouteSpec, answered: str) -> str | None:
    """The model that answers a sampled request again: the route's `candidate`, else the strategy's other model
    (weak when strong answered, strong otherwise); None when that is the model that answered."""
    shadow = route.learn.shadow if route.learn is not None else None
    if shadow is None:
        return None
    if shadow.candidate is not None:
        other = shadow.candidate
    elif route.strategy is not None:
        other = route.strategy.weak if answered == route.strategy.strong else route.strategy.strong
    else:
        return None
    return None if other == answered else other


@dataclass(frozen=True)
class Observed:
    """An answer of a collecting route, as the gateway hands it over (everything the writer needs)."""

    tenant: str
    request: ChatCompletionRequest
    route: RouteSpec
    snapshot: ConfigSnapshot
    answer: Answer
    streamed: bool
    at: float


def last_user_text(request: ChatCompletionRequest) -> str:
    """What the classifier scores (as routing does): the last user message."""
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text()
    return "\n".join(m.text() for m in request.messages)


class OutcomeRecorder:
    """Builds and writes outcome records, and enqueues shadow evaluations, on one writer thread."""

    def __init__(
        self,
        store: OutcomeWriter,
        metrics: MetricsRecorder,
        *,
        queue: ShadowQueue | None = None,
        classifier: Callable[[], Any] | None = None,
        background: bool = True,
        permitted: Callable[[str], frozenset[str] | None] | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.queue = queue
        self._classifier = classifier or _default_classifier
        self._background = background
        self._permitted = permitted
        self._pending: deque[Observed] = deque()
        self._busy = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    # -- the request path -----------------------------------------------------------------------------------
    def observe(self, observed: Observed) -> None:
        """Take an answer for recording (a list append; the work runs on the writer thread)."""
        if not self._background:
            self._process(observed)
            return
        with self._cond:
            if len(self._pending) >= MAX_PENDING:
                self._count_failed(observed.route.id, "backlog")
                return
            self._pending.append(observed)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="outcome-writer", daemon=True)
                self._thread.start()
                from llm_router.lifecycle import on_shutdown

                on_shutdown(self.flush)
            self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every answer taken so far is written (or `timeout` passes); True when nothing is left."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # -- the writer thread ----------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                observed = self._pending.popleft()
                self._busy += 1
            try:
                self._process(observed)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _process(self, observed: Observed) -> None:
        from llm_router.stores.outcome_store import OutcomeRecord

        answer, learn = observed.answer, observed.route.learn
        assert learn is not None
        try:
            text = last_user_text(observed.request)
            record = OutcomeRecord(
                request_id=answer.request_id,
                tenant=observed.tenant,
                route=observed.route.id,
                rule=answer.decision.rule,
                model=answer.model.id,
                cost_usd=answer.cost_usd,
                created_at=observed.at,
                features=self._features(text),
                arm=answer.decision.arm,
                adaptation=answer.decision.adaptation,
                prompt=text if learn.keep_prompts and not _bound(answer) else None,
                streamed=observed.streamed,
            )
            payload = self._shadow(observed, record)
            self.store.put(record)
        except Exception as exc:  # noqa: BLE001 - the caller has its answer; a lost record is counted
            logger.warning("outcome_write_failed", request_id=answer.request_id, error=type(exc).__name__)
            self._count_failed(observed.route.id, "write")
            return
        if payload is not None:
            self._enqueue(record, payload)

    def _features(self, text: str) -> dict[str, float]:
        from llm_router.routing.adaptation import outcome_features

        classifier = self._classifier()
        return outcome_features(text, classifier) if classifier is not None else {}

    def _shadow(self, observed: Observed, record: OutcomeRecord) -> dict[str, Any] | None:
        """Decide the request's shadow evaluation and note it in the record; the payload to queue, or None."""
        route, answer = observed.route, observed.answer
        shadow = route.learn.shadow if route.learn is not None else None
        if shadow is None or self.queue is None or not shadow_sampled(answer.request_id, shadow.rate):
            return None
        candidate = shadow_candidate(route, answer.model.id)
        reason = self._skip_reason(observed, candidate, shadow.judge)
        if reason is not None:
            record.shadow = {"status": "skipped", "reason": reason}
            self._count_skipped(route.id, reason)
            return None
        record.shadow = {"status": "queued", "model": candidate, "judge": shadow.judge}
        request = observed.request.model_dump(mode="json", exclude_none=True, by_alias=True)
        return {"request": request, "answer": answer.completion.choices[0].message.content}

    def _skip_reason(self, observed: Observed, candidate: str | None, judge: str) -> str | None:
        answer = observed.answer
        if candidate is None:
            return "no_candidate"
        if not answer.completion.choices[0].message.content:
            return "no_text"  # tool calls: nothing a judge could compare
        # A tenant limited to some models has its prompts go to no other, for a second opinion neither.
        permitted = self._permitted(observed.tenant) if self._permitted is not None else None
        for model_id in (candidate, judge):
            model = observed.snapshot.models.get(model_id)
            if model is None:
                return "unknown_model"
            if residency_refusal(answer.decision, model) is not None:
                return "residency"
            if permitted is not None and model_id not in permitted:
                return "tenant_models"
        return None

    def _enqueue(self, record: OutcomeRecord, payload: dict[str, Any]) -> None:
        assert self.queue is not None
        try:
            self.queue.send_shadow(record.request_id, payload)
        except Exception as exc:  # noqa: BLE001 - shadow evaluation is best effort; the record says so
            logger.warning("shadow_not_queued", request_id=record.request_id, error=type(exc).__name__)
            self._count_skipped(record.route, "not_queued")
            try:
                self.store.set_shadow(record, {"status": "skipped", "reason": "not_queued"})
            except Exception:  # noqa: BLE001 - the record then says "queued" for a message that never comes
                self._count_failed(record.route, "write")

    def _count_failed(self, route: str, reason: str) -> None:
        self.metrics.record(
            [(Metric.OUTCOME_WRITE_FAILED, 1, COUNT)], dimensions={Dimension.ROUTE: route}, metadata={"why": reason}
        )

    def _count_skipped(self, route: str, reason: str) -> None:
        self.metrics.record(
            [(Metric.SHADOW_SKIPPED, 1, COUNT)], dimensions={Dimension.ROUTE: route, Dimension.REASON: reason}
        )


def _bound(answer: Answer) -> bool:
    """Whether a residency rule or a policy held the request: its text is never kept beyond the answer (as the
    response cache does not keep it), whatever `keep_prompts` says."""
    return answer.decision.regions is not None or bool(answer.decision.policies)


def _default_classifier() -> Any:
    from llm_router.routing.classifier import default_classifier

    return default_classifier()
