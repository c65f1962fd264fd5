"""Routing outcomes in the State table: one record per answered request on a route that collects (`learn.collect`),
to which feedback (`POST /v1/feedback`) and shadow judgements are added later.

Items:

| pk                              | sk           | what                                                       |
|---------------------------------|--------------|------------------------------------------------------------|
| `outcomes#{route}#{YYYY-MM-DD}` | `{request}`  | the record: tenant, rule, split arm, model, cost, features, |
|                                 |              | adaptation version, time; later `feedback` and `shadow`    |
| `outcome#{request}`             | `ref`        | where the record is, and whose it is (feedback finds it)   |

One partition per route and UTC day keeps a route's outcomes together for `adapt` and `experiments report`, which
read them day by day; its sort keys (request ids) are random, so DynamoDB can split a busy day's partition by them.
Both items are written with one `BatchWriteItem`, after the caller has its answer (a throttled write is counted,
and never slows an answer). A record holds the prompt's features (`outcome_features`),
never its text, unless the route says `keep_prompts: true`.

Retention: every item expires `retention_days` after the request (default `OUTCOME_RETENTION_DAYS`, 90 days; the
setting `OUTCOME_RETENTION_DAYS`), through the TTL attribute `expires_at`; reads also skip expired items, since
DynamoDB deletes them some time after they expire.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from llm_router.stores.aws import client
from llm_router.stores.dynamo import attribute, item, plain_item, query_partition
from llm_router.stores.tables import TTL_ATTRIBUTE

if TYPE_CHECKING:
    from llm_router.ml.adapt import Sample

OUTCOME_RETENTION_DAYS = 90
RECORD_PREFIX = "outcomes#"
REF_PREFIX = "outcome#"
REF_SORT_KEY = "ref"
_BATCH_RETRIES = 3


def day_of(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


@dataclass(frozen=True)
class Feedback:
    """A caller's rating of an answer: `score` in [0, 1] (thumbs up is 1, down is 0)."""

    score: float
    recorded_at: int
    thumbs: str | None = None
    comment: str | None = None

    def same_rating(self, score: float, thumbs: str | None, comment: str | None) -> bool:
        return self.score == score and self.thumbs == thumbs and self.comment == comment

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"score": self.score, "recorded_at": self.recorded_at}
        if self.thumbs is not None:
            out["thumbs"] = self.thumbs
        if self.comment is not None:
            out["comment"] = self.comment
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Feedback:
        return cls(float(data["score"]), int(data["recorded_at"]), data.get("thumbs"), data.get("comment"))


@dataclass
class OutcomeRecord:
    """What one answered request left for learning (the storage model; `shadow` is a plain map, see shadow.py)."""

    request_id: str
    tenant: str
    route: str
    rule: str
    model: str
    cost_usd: float
    created_at: float
    features: dict[str, float] = field(default_factory=dict)
    arm: int | None = None
    adaptation: str | None = None
    prompt: str | None = None
    streamed: bool = False
    feedback: Feedback | None = None
    shadow: dict[str, Any] | None = None

    @property
    def day(self) -> date:
        return day_of(self.created_at)

    def scores(self) -> dict[str, float]:
        """Quality per model: the judge's grades of both answers when the request was judged (one scale for
        both), else the caller's feedback on the model that answered."""
        graded = (self.shadow or {}).get("scores") or {}
        if len(graded) >= 2:
            return {str(m): float(s) for m, s in graded.items()}
        if self.feedback is not None:
            return {self.model: self.feedback.score}
        return {}

    def costs(self) -> dict[str, float]:
        """USD per model that answered this prompt: the answer's, and the shadow candidate's when there is one."""
        costs = {self.model: self.cost_usd}
        for model, usd in ((self.shadow or {}).get("costs") or {}).items():
            costs.setdefault(str(model), float(usd))
        return costs

    def sample(self) -> Sample:
        from llm_router.ml.adapt import Sample

        return Sample(features=dict(self.features), scores=self.scores(), costs=self.costs())

    def to_item(self, expires_at: int) -> dict[str, Any]:
        values: dict[str, Any] = {
            "pk": f"{RECORD_PREFIX}{self.route}#{self.day.isoformat()}",
            "sk": self.request_id,
            "request_id": self.request_id,
            "tenant": self.tenant,
            "route": self.route,
            "rule": self.rule,
            "model": self.model,
            "cost_usd": round(self.cost_usd, 12),
            "created_at": round(self.created_at, 3),
            "features": self.features,
            TTL_ATTRIBUTE: expires_at,
        }
        optional = {"arm": self.arm, "adaptation": self.adaptation, "prompt": self.prompt}
        values.update({k: v for k, v in optional.items() if v is not None})
        if self.streamed:
            values["streamed"] = True
        if self.feedback is not None:
            values["feedback"] = self.feedback.as_dict()
        if self.shadow is not None:
            values["shadow"] = self.shadow
        return item(values)

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> OutcomeRecord:
        feedback = data.get("feedback")
        return cls(
            request_id=str(data["request_id"]),
            tenant=str(data["tenant"]),
            route=str(data["route"]),
            rule=str(data["rule"]),
            model=str(data["model"]),
            cost_usd=float(data.get("cost_usd", 0)),
            created_at=float(data["created_at"]),
            features={str(k): float(v) for k, v in (data.get("features") or {}).items()},
            arm=int(data["arm"]) if data.get("arm") is not None else None,
            adaptation=data.get("adaptation"),
            prompt=data.get("prompt"),
            streamed=bool(data.get("streamed", False)),
            feedback=Feedback.from_dict(feedback) if isinstance(feedback, dict) else None,
            shadow=data.get("shadow"),
        )


class OutcomeStore:
    """Writes outcome records (the gateway, after the answer), adds feedback and shadow judgements, and reads a
    route's records for `adapt` and `experiments report`."""

    def __init__(
        self,
        table_name: str,
        *,
        retention_days: int = OUTCOME_RETENTION_DAYS,
        dynamodb: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self.retention = timedelta(days=retention_days)
        self._dynamodb = dynamodb
        self._clock = clock

    @property
    def _ddb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    # -- writing ----------------------------------------------------------------------------------------
    def put(self, record: OutcomeRecord) -> None:
        """The record and its reference, in one round trip (retrying what DynamoDB left unprocessed)."""
        expires_at = int(record.created_at + self.retention.total_seconds())
        ref = item(
            {
                "pk": f"{REF_PREFIX}{record.request_id}",
                "sk": REF_SORT_KEY,
                "tenant": record.tenant,
                "route": record.route,
                "day": record.day.isoformat(),
                TTL_ATTRIBUTE: expires_at,
            }
        )
        requests: dict[str, Any] = {
            self._table: [{"PutRequest": {"Item": record.to_item(expires_at)}}, {"PutRequest": {"Item": ref}}]
        }
        for _ in range(_BATCH_RETRIES):
            left = self._ddb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            if not left:
                return
            requests = left
        raise RuntimeError(f"outcome {record.request_id}: DynamoDB left {len(requests[self._table])} items unwritten")

    def set_feedback(
        self, request_id: str, tenant: str, score: float, thumbs: str | None, comment: str | None
    ) -> Feedback | None:
        """Record the tenant's rating of its request; None when there is no such record of this tenant (another
        tenant's request looks exactly like a missing one). The same rating again changes nothing and returns
        the stored one (idempotent); a different rating replaces it."""
        key = self._record_key(request_id, tenant)
        if key is None:
            return None
        raw = self._ddb.get_item(
            TableName=self._table, Key=key, ConsistentRead=True, ProjectionExpression="tenant, feedback, expires_at"
        ).get("Item")
        if raw is None or not self._live(raw):
            return None
        current = plain_item(raw)
        if current.get("tenant") != tenant:
            return None
        previous = current.get("feedback")
        if isinstance(previous, dict):
            stored = Feedback.from_dict(previous)
            if stored.same_rating(score, thumbs, comment):
                return stored
        feedback = Feedback(score, int(self._clock()), thumbs, comment)
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET feedback = :f",
                ConditionExpression="tenant = :t",
                ExpressionAttributeValues={":f": attribute(feedback.as_dict()), ":t": {"S": tenant}},
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return None  # deleted (expired) since it was read
        return feedback

    def set_shadow(self, record: OutcomeRecord, shadow: dict[str, Any]) -> None:
        """Write the shadow evaluation's state (queued, skipped, judged) into the record."""
        self._ddb.update_item(
            TableName=self._table,
            Key=self._key(record.route, record.day, record.request_id),
            UpdateExpression="SET shadow = :s",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":s": attribute(shadow)},
        )

    # -- reading ----------------------------------------------------------------------------------------
    def get(self, request_id: str) -> OutcomeRecord | None:
        """The record of a request, whoever's it is (the replay worker's view; callers use `set_feedback`)."""
        ref = self._ref(request_id)
        if ref is None:
            return None
        raw = self._ddb.get_item(
            TableName=self._table,
            Key=self._key(str(ref["route"]), date.fromisoformat(str(ref["day"])), request_id),
            ConsistentRead=True,
        ).get("Item")
        if raw is None or not self._live(raw):
            return None
        return OutcomeRecord.from_plain(plain_item(raw))

    def records(self, route: str, since: datetime | None = None, until: datetime | None = None) -> list[OutcomeRecord]:
        """The route's live records from `since` (default: as far back as retention keeps them) to `until`
        (default: now), oldest first."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        end = until or now
        start = since or now - self.retention
        out: list[OutcomeRecord] = []
        day = start.astimezone(UTC).date()
        while day <= end.astimezone(UTC).date():
            for data in query_partition(self._ddb, self._table, f"{RECORD_PREFIX}{route}#{day.isoformat()}"):
                record = OutcomeRecord.from_plain(data)
                if start.timestamp() <= record.created_at <= end.timestamp() and self._live_plain(data):
                    out.append(record)
            day += timedelta(days=1)
        return sorted(out, key=lambda r: (r.created_at, r.request_id))

    def samples(self, route: str, since: datetime | None = None) -> list[Sample]:
        """The route's outcomes as adaptation reads them: features, quality per graded model, cost per model."""
        return [record.sample() for record in self.records(route, since)]

    # -- keys -------------------------------------------------------------------------------------------
    @staticmethod
    def _key(route: str, day: date, request_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"{RECORD_PREFIX}{route}#{day.isoformat()}"}, "sk": {"S": request_id}}

    def _ref(self, request_id: str) -> dict[str, Any] | None:
        raw = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"{REF_PREFIX}{request_id}"}, "sk": {"S": REF_SORT_KEY}},
            ConsistentRead=True,
        ).get("Item")
        if raw is None or not self._live(raw):
            return None
        return plain_item(raw)

    def _record_key(self, request_id: str, tenant: str) -> dict[str, Any] | None:
        ref = self._ref(request_id)
        if ref is None or ref.get("tenant") != tenant:
            return None
        return self._key(str(ref["route"]), date.fromisoformat(str(ref["day"])), request_id)

    def _live(self, raw: dict[str, Any]) -> bool:
        expires = raw.get(TTL_ATTRIBUTE, {}).get("N")
        return expires is None or int(expires) > self._clock()

    def _live_plain(self, data: dict[str, Any]) -> bool:
        expires = data.get(TTL_ATTRIBUTE)
        return expires is None or int(expires) > self._clock()
