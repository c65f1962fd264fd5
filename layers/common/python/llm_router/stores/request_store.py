"""Records of queued requests in the State table: status, decisions, error trail and the stored answer.

Item: `pk = request#<id>`, `sk = record`. Items carry `expires_at`; DynamoDB deletes them some time after it
passes, so reads also treat an expired item as absent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from llm_router.stores.aws import client
from llm_router.stores.dynamo import plain_item

Status = Literal["queued", "running", "done", "failed"]


def _key(request_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"request#{request_id}"}, "sk": {"S": "record"}}


@dataclass
class RequestRecord:
    request_id: str
    tenant: str
    status: Status
    mode: str
    created_at: int
    updated_at: int
    expires_at: int
    receive_count: int = 0
    decisions: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        """What `GET /v1/requests/{id}` returns."""
        out: dict[str, Any] = {
            "id": self.request_id,
            "object": "chat.completion.request",
            "status": self.status,
            "created": self.created_at,
            "updated": self.updated_at,
        }
        if self.result is not None:
            out["result"] = self.result
        if self.status == "failed":
            out["errors"] = self.errors
        return out


class RequestStore:
    def __init__(self, table_name: str, *, ttl_seconds: int = 86_400, dynamodb: Any = None, clock: Any = time.time):
        self._table = table_name
        self._ttl = ttl_seconds
        self._dynamodb = dynamodb
        self._clock = clock

    @property
    def _ddb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def put_queued(
        self, request_id: str, tenant: str, mode: str, decision: dict[str, Any], errors: list[dict[str, Any]]
    ) -> None:
        now = int(self._clock())
        self._put(RequestRecord(request_id, tenant, "queued", mode, now, now, now + self._ttl, 0, [decision], errors))

    def mark_running(self, request_id: str, receive_count: int) -> None:
        self._update(request_id, "running", receive_count=receive_count)

    def mark_done(self, request_id: str, result: dict[str, Any], decision: dict[str, Any]) -> None:
        self._update(request_id, "done", result=result, decision=decision)

    def mark_queued_again(self, request_id: str, errors: list[dict[str, Any]], decision: dict[str, Any] | None) -> None:
        self._update(request_id, "queued", errors=errors, decision=decision)

    def mark_failed(self, request_id: str, errors: list[dict[str, Any]], decision: dict[str, Any] | None) -> None:
        self._update(request_id, "failed", errors=errors, decision=decision)

    def get(self, request_id: str) -> RequestRecord | None:
        item = self._ddb.get_item(TableName=self._table, Key=_key(request_id), ConsistentRead=True).get("Item")
        if item is None:
            return None
        data = plain_item(item)
        if int(data.get("expires_at", 0)) <= self._clock():
            return None
        return RequestRecord(
            request_id=request_id,
            tenant=data["tenant"],
            status=data["status"],
            mode=data.get("mode", "fallback"),
            created_at=int(data["created_at"]),
            updated_at=int(data["updated_at"]),
            expires_at=int(data["expires_at"]),
            receive_count=int(data.get("receive_count", 0)),
            decisions=json.loads(data.get("decisions") or "[]"),
            errors=json.loads(data.get("errors") or "[]"),
            result=json.loads(data["result"]) if data.get("result") else None,
        )

    def _update(
        self,
        request_id: str,
        status: Status,
        *,
        receive_count: int | None = None,
        result: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
        decision: dict[str, Any] | None = None,
    ) -> None:
        # Read-modify-write of the whole item: only the gateway (once, at enqueue) and the replay of this very
        # message write a record, and SQS hands a message to one consumer at a time.
        record = self.get(request_id)
        if record is None:
            return  # expired or never written: nothing to track
        now = int(self._clock())
        record.status, record.updated_at, record.expires_at = status, now, now + self._ttl
        if receive_count is not None:
            record.receive_count = receive_count
        if result is not None:
            record.result = result
        if errors:
            record.errors = record.errors + errors
        if decision is not None:
            record.decisions = [*record.decisions, decision]
        self._put(record)

    def _put(self, record: RequestRecord) -> None:
        item: dict[str, Any] = {
            **_key(record.request_id),
            "tenant": {"S": record.tenant},
            "status": {"S": record.status},
            "mode": {"S": record.mode},
            "created_at": {"N": str(record.created_at)},
            "updated_at": {"N": str(record.updated_at)},
            "expires_at": {"N": str(record.expires_at)},
            "receive_count": {"N": str(record.receive_count)},
            "decisions": {"S": json.dumps(record.decisions, separators=(",", ":"))},
            "errors": {"S": json.dumps(record.errors, separators=(",", ":"))},
        }
        if record.result is not None:
            item["result"] = {"S": json.dumps(record.result, separators=(",", ":"))}
        self._ddb.put_item(TableName=self._table, Item=item)
