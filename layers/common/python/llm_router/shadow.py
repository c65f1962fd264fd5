"""Shadow evaluation, the replay function's side: another candidate answers a sampled request, a judge grades both.

The router queued a `shadow` message naming the request after its answer had gone out (outcomes.py). Here the
other model answers the same request, the judge grades both answers with a rubric, and both scores (0..1) and costs
go into the request's outcome record. Nothing here can reach the caller: every failure is logged and counted
(`ShadowFailed`) and the message is consumed, never retried into the dead-letter queue.

Budget: shadow answers and judging of a route spend at most `learn.shadow.daily_budget_usd` per UTC day. Their
cost is counted in the usage counters under the tenant `shadow:<route>` (so `llm-router usage` shows it, apart
from the tenants' own spend); an evaluation starts only while that day's total is below the budget, so the
budget is overshot by at most the evaluations running at once, each by its own cost.

The judge sees the two answers in an order fixed by the request id (half the time the routed answer comes first),
so a judge's preference for the first position does not favour one model.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from llm_router.metrics import COUNT, NONE, Dimension, Metric, MetricsRecorder
from llm_router.observability import logger
from llm_router.pricing import cost_usd
from llm_router.providers.base import Deadline, ProviderResponse, Usage
from llm_router.routing.features import estimate_tokens
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.schemas.tenants import UsageAmounts
from llm_router.stores.outcome_store import OutcomeRecord

SHADOW_TENANT_PREFIX = "shadow:"
JUDGE_MAX_TOKENS = 200
# How much of the conversation and of each answer the judge reads.
JUDGE_TEXT_CHARS = 12_000
RUBRIC = (
    "You grade answers to a user's request. Grade each answer on its own from 1 (wrong, unhelpful or off-topic) "
    "to 10 (correct, complete and directly useful). Correctness matters most, then completeness, then clarity; "
    "length and style do not count. Reply with JSON only, no other text: "
    '{"answer_1": <1-10>, "answer_2": <1-10>}'
)


class JudgeUnreadable(ValueError):
    """The judge's reply holds no pair of scores."""


def budget_tenant(route: str) -> str:
    """The usage-counter tenant that shadow evaluation of `route` spends under."""
    return SHADOW_TENANT_PREFIX + route


def routed_first(request_id: str) -> bool:
    """Whether the routed answer is shown to the judge first (deterministic, half of the requests)."""
    return hashlib.sha256(f"judge-order\x00{request_id}".encode()).digest()[0] % 2 == 0


_NUMBER = r"(-?\d+(?:\.\d+)?)"
_LABELS = ((r"answer[\s_-]*1|answer[\s_-]*a\b|first", r"answer[\s_-]*2|answer[\s_-]*b\b|second"),)


def parse_scores(text: str) -> tuple[float, float]:
    """The two grades of a judge's reply, each in [0, 1]: a JSON object `{"answer_1": 8, "answer_2": 3}` or text
    naming answer 1/2 (A/B, first/second) with a number. Grades on the rubric's 1-10 scale map linearly onto
    [0, 1]; a pair of grades both within [0, 1], one of them fractional, is taken as already on that scale."""
    pair = _from_json(text) or _from_text(text)
    if pair is None:
        raise JudgeUnreadable("no pair of scores in the judge's reply")
    first, second = pair
    if not all(math.isfinite(v) for v in pair):
        raise JudgeUnreadable("a score is not a finite number")
    if 0 <= first <= 1 and 0 <= second <= 1 and (first % 1 or second % 1):
        return first, second
    if not (1 <= first <= 10 and 1 <= second <= 10):
        raise JudgeUnreadable(f"scores {first}, {second} are outside the rubric's 1-10")
    return (first - 1) / 9, (second - 1) / 9


def _from_json(text: str) -> tuple[float, float] | None:
    for match in re.finditer(r"\{[^{}]*\}", text):
        try:
            data = json.loads(match.group(0))
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        values = {re.sub(r"[\s_-]", "", str(k)).lower(): v for k, v in data.items()}
        for first, second in (("answer1", "answer2"), ("answera", "answerb"), ("1", "2"), ("a", "b")):
            a, b = values.get(first), values.get(second)
            if isinstance(a, int | float | str) and isinstance(b, int | float | str):
                try:
                    return float(a), float(b)
                except ValueError:
                    continue
    return None


def _from_text(text: str) -> tuple[float, float] | None:
    lowered = text.lower()
    for first_label, second_label in _LABELS:
        first = re.search(rf"(?:{first_label})\D{{0,30}}?{_NUMBER}", lowered)
        second = re.search(rf"(?:{second_label})\D{{0,30}}?{_NUMBER}", lowered)
        if first and second:
            return float(first.group(1)), float(second.group(1))
    return None


def judge_request(request: ChatCompletionRequest, answers: tuple[str, str]) -> ChatCompletionRequest:
    """The judge's prompt: the rubric, the conversation, and the two answers in the order given."""
    conversation = "\n\n".join(f"{m.role}: {m.text()}" for m in request.messages)[-JUDGE_TEXT_CHARS:]
    shown = "\n\n".join(f"[Answer {i}]\n{text[:JUDGE_TEXT_CHARS]}" for i, text in enumerate(answers, start=1))
    return ChatCompletionRequest.model_validate(
        {
            "model": "judge",
            "messages": [
                {"role": "system", "content": RUBRIC},
                {"role": "user", "content": f"[Conversation]\n{conversation}\n\n{shown}"},
            ],
            "temperature": 0,
            "max_tokens": JUDGE_MAX_TOKENS,
        }
    )


class ShadowRecords(Protocol):
    def get(self, request_id: str) -> OutcomeRecord | None: ...

    def set_shadow(self, record: OutcomeRecord, shadow: dict[str, Any]) -> None: ...


class ShadowPayloads(Protocol):
    def shadow_payload(self, request_id: str) -> dict[str, Any]: ...

    def release_shadow(self, request_id: str) -> None: ...


class SpendCounters(Protocol):
    """The usage counters (stores/usage_store.py): today's spend, and adding to it."""

    def spend(self, tenant: str, when: datetime, *, day: bool = True, month: bool = True) -> Any: ...

    def add(self, tenant: str, *, model: str, route: str, amounts: UsageAmounts, when: datetime) -> None: ...


class ModelCaller(Protocol):
    """The gateway's providers and config: what a shadow call needs to reach a catalog model."""

    def snapshot_models(self) -> dict[str, ModelSpec]: ...

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse: ...


class ShadowEvaluator:
    """Answers a shadow message: the other candidate, the judge, the record."""

    def __init__(
        self,
        records: ShadowRecords,
        payloads: ShadowPayloads,
        models: ModelCaller,
        usage: SpendCounters,
        metrics: MetricsRecorder,
        *,
        budget_usd: Callable[[str], float | None],
        deadline_seconds: float = 25.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.records = records
        self.payloads = payloads
        self.models = models
        self.usage = usage
        self.metrics = metrics
        self._budget_usd = budget_usd
        self.deadline_seconds = deadline_seconds
        self._clock = clock

    def evaluate(self, request_id: str) -> None:
        """Run one shadow evaluation; never raises (a failure is counted and noted in the record)."""
        record: OutcomeRecord | None = None
        try:
            record = self.records.get(request_id)
            if record is None or (record.shadow or {}).get("status") != "queued":
                return  # expired, or a duplicate delivery of one already evaluated
            self._evaluate(record)
        except Exception as exc:  # noqa: BLE001 - shadow work must never surface; it is counted instead
            reason = "judge_unreadable" if isinstance(exc, JudgeUnreadable) else type(exc).__name__
            logger.warning("shadow_failed", request_id=request_id, reason=reason)
            route = record.route if record is not None else "unknown"
            self.metrics.record(
                [(Metric.SHADOW_FAILED, 1, COUNT)], dimensions={Dimension.ROUTE: route, Dimension.REASON: reason}
            )
            if record is not None:
                try:
                    self.records.set_shadow(record, {**(record.shadow or {}), "status": "failed", "reason": reason})
                except Exception:  # noqa: BLE001 - the metric and the log already tell
                    logger.warning("shadow_state_not_written", request_id=request_id)
        finally:
            try:
                self.payloads.release_shadow(request_id)
            except Exception:  # noqa: BLE001 - the payload expires on its own
                logger.warning("shadow_payload_not_released", request_id=request_id)

    def _evaluate(self, record: OutcomeRecord) -> None:
        shadow = dict(record.shadow or {})
        now = datetime.fromtimestamp(self._clock(), UTC)
        budget = self._budget_usd(record.route)
        if budget is None:
            self._skip(record, shadow, "disabled")
            return
        spent = self.usage.spend(budget_tenant(record.route), now, day=True, month=False).day_usd or 0.0
        if spent >= budget:
            self._skip(record, shadow, "budget")
            return
        models = self.models.snapshot_models()
        candidate, judge = models.get(str(shadow.get("model"))), models.get(str(shadow.get("judge")))
        if candidate is None or judge is None:
            self._skip(record, shadow, "unknown_model")
            return
        payload = self.payloads.shadow_payload(record.request_id)
        request = ChatCompletionRequest.model_validate({**payload["request"], "stream": False})
        request = request.model_copy(update={"stream_options": None})
        routed_answer = str(payload.get("answer") or "")

        other, other_cost = self._call(request, candidate, record.route, now)
        other_text = other.content or ""
        first = routed_first(record.request_id)
        answers = (routed_answer, other_text) if first else (other_text, routed_answer)
        ask = judge_request(request, answers)
        verdict, judge_cost = self._call(ask, judge, record.route, now)
        scores = parse_scores(verdict.content or "")
        routed_score, other_score = scores if first else (scores[1], scores[0])
        shadow.update(
            status="judged",
            scores={record.model: round(routed_score, 4), candidate.id: round(other_score, 4)},
            costs={candidate.id: round(other_cost, 10)},
            judge_cost_usd=round(judge_cost, 10),
            routed_first=first,
            judged_at=int(self._clock()),
        )
        self.records.set_shadow(record, shadow)
        self.metrics.record(
            [(Metric.SHADOW_EVALUATIONS, 1, COUNT), (Metric.SHADOW_COST_USD, other_cost + judge_cost, NONE)],
            dimensions={Dimension.ROUTE: record.route},
            metadata={"request_id": record.request_id, "model": candidate.id, "judge": judge.id},
        )

    def _call(
        self, request: ChatCompletionRequest, model: ModelSpec, route: str, now: datetime
    ) -> tuple[ProviderResponse, float]:
        """One model call and its cost, counted against the route's shadow budget at once (also when a later
        step fails)."""
        response = self.models.complete(request, model, Deadline(self.deadline_seconds))
        usage = response.usage or _estimated(request, response)
        cost = cost_usd(usage, model.price)
        amounts = UsageAmounts(
            requests=1,
            cost_usd=cost,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            estimated_requests=1 if usage.estimated else 0,
        )
        self.usage.add(budget_tenant(route), model=model.id, route=route, amounts=amounts, when=now)
        return response, cost

    def _skip(self, record: OutcomeRecord, shadow: dict[str, Any], reason: str) -> None:
        self.records.set_shadow(record, {**shadow, "status": "skipped", "reason": reason})
        self.metrics.record(
            [(Metric.SHADOW_SKIPPED, 1, COUNT)], dimensions={Dimension.ROUTE: record.route, Dimension.REASON: reason}
        )


def _estimated(request: ChatCompletionRequest, response: ProviderResponse) -> Usage:
    return Usage(
        input_tokens=estimate_tokens("\n".join(m.text() for m in request.messages)),
        output_tokens=estimate_tokens(response.content or ""),
        estimated=True,
    )
