"""Cached answers in the State table (the `ResponseCache` port of llm_router.cache).

Item: `pk = cache#<key>`, `sk = entry`, with `tenant`, `route`, `model`, `created_at`, `expires_at` and the answer:
`answer` (JSON text) or, above `COMPRESS_ABOVE_BYTES`, `answer_z` (zlib, as request payloads are kept). One
partition per key spreads a busy tenant's entries over the table. DynamoDB deletes expired items some time after
`expires_at` passes (and moto never does), so a read also treats an expired item as absent; the stored tenant is
checked against the caller's even though the key already includes it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llm_router.cache import CachedAnswer
from llm_router.stores.aws import client
from llm_router.stores.dynamo import document_attributes, document_bytes, plain_item

PREFIX = "cache#"
SORT_KEY = "entry"


class AnswerTooLarge(ValueError):
    """The answer does not fit in one item even compressed."""


@dataclass
class CacheStats:
    """What `llm-router cache stats` reports."""

    entries: int = 0
    expired: int = 0
    bytes: int = 0
    by_tenant: Counter[str] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)


class DynamoResponseCache:
    def __init__(self, table_name: str, *, dynamodb: Any = None, clock: Callable[[], float] = time.time) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._clock = clock

    @property
    def _ddb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def get(self, key: str, tenant: str) -> CachedAnswer | None:
        item = self._ddb.get_item(TableName=self._table, Key=_key(key)).get("Item")
        if item is None or item.get("tenant", {}).get("S") != tenant:
            return None
        if int(item["expires_at"]["N"]) <= self._clock():
            return None
        return CachedAnswer.from_json(document_bytes(item, "answer"))

    def put(self, key: str, entry: CachedAnswer, ttl_seconds: int) -> None:
        data = entry.to_json()
        stored = document_attributes(data, "answer", AnswerTooLarge)
        now = int(self._clock())
        self._ddb.put_item(
            TableName=self._table,
            Item={
                **_key(key),
                "tenant": {"S": entry.tenant},
                "route": {"S": entry.route},
                "model": {"S": entry.model},
                "created_at": {"N": str(now)},
                "expires_at": {"N": str(now + ttl_seconds)},
                "size": {"N": str(len(data))},
                **stored,
            },
        )

    # -- operations (the CLI) ---------------------------------------------------------------------------------
    def entries(self, *, tenant: str | None = None, route: str | None = None) -> Iterator[dict[str, Any]]:
        """Every entry's key and attributes (not the answer), expired ones included, by a filtered scan."""
        condition = "begins_with(pk, :prefix)"
        values: dict[str, Any] = {":prefix": {"S": PREFIX}}
        if tenant is not None:
            condition += " AND tenant = :tenant"
            values[":tenant"] = {"S": tenant}
        if route is not None:
            condition += " AND #route = :route"
            values[":route"] = {"S": route}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": condition,
            "ExpressionAttributeValues": values,
            "ExpressionAttributeNames": {"#route": "route", "#size": "size"},
            "ProjectionExpression": "pk, sk, tenant, #route, model, created_at, expires_at, #size",
        }
        while True:
            page = self._ddb.scan(**kwargs)
            yield from (plain_item(raw) for raw in page["Items"])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def stats(self, *, tenant: str | None = None, route: str | None = None) -> CacheStats:
        stats = CacheStats()
        now = self._clock()
        for entry in self.entries(tenant=tenant, route=route):
            if int(entry.get("expires_at", 0)) <= now:
                stats.expired += 1
                continue
            stats.entries += 1
            stats.bytes += int(entry.get("size", 0))
            stats.by_tenant[str(entry.get("tenant"))] += 1
            stats.by_route[str(entry.get("route"))] += 1
        return stats

    def purge(self, *, tenant: str | None = None, route: str | None = None) -> int:
        """Delete the matching entries (expired ones too); returns how many."""
        keys = [{"pk": {"S": e["pk"]}, "sk": {"S": e["sk"]}} for e in self.entries(tenant=tenant, route=route)]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]
            pending: dict[str, Any] = {self._table: requests}
            for _ in range(10):
                pending = self._ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise RuntimeError("DynamoDB kept some deletes unprocessed; run the purge again")
        return len(keys)


def _key(key: str) -> dict[str, Any]:
    return {"pk": {"S": PREFIX + key}, "sk": {"S": SORT_KEY}}
