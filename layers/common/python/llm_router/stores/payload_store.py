"""Bodies of queued requests, kept in the State table as compressed chunks (the queue message holds none).

Why the State table and not S3: the stack already has it (encrypted with the stack's key, TTL-cleaned, one IAM
grant), so a body needs no bucket, no lifecycle rules and no extra permissions. A DynamoDB item holds at most
400 KB, so the compressed body is split into chunks of `CHUNK_BYTES`; `MAX_BODY_BYTES` (1 MiB by default)
needs at most a few.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

from llm_router.stores.aws import client

CHUNK_BYTES = 300_000


class PayloadStore:
    def __init__(self, table_name: str, *, ttl_seconds: int = 1_209_600, dynamodb: Any = None) -> None:
        self._table = table_name
        self._ttl = ttl_seconds  # as long as a message can live in the dead-letter queue
        self._dynamodb = dynamodb

    @property
    def _ddb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def put(self, payload_id: str, data: bytes) -> int:
        """Store `data`; returns the number of chunks written."""
        packed = zlib.compress(data, 6)
        chunks = [packed[i : i + CHUNK_BYTES] for i in range(0, len(packed), CHUNK_BYTES)] or [b""]
        expires = str(int(time.time()) + self._ttl)
        for index, chunk in enumerate(chunks):
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"payload#{payload_id}"},
                    "sk": {"S": f"chunk#{index:04d}"},
                    "data": {"B": chunk},
                    "expires_at": {"N": expires},
                },
            )
        return len(chunks)

    def get(self, payload_id: str, chunks: int) -> bytes:
        parts = []
        for index in range(chunks):
            item = self._ddb.get_item(
                TableName=self._table,
                Key={"pk": {"S": f"payload#{payload_id}"}, "sk": {"S": f"chunk#{index:04d}"}},
                ConsistentRead=True,
            ).get("Item")
            if item is None:
                raise LookupError(f"payload {payload_id} chunk {index} is missing")
            parts.append(item["data"]["B"])
        return zlib.decompress(b"".join(parts))

    def get_all(self, payload_id: str) -> bytes:
        """Every chunk of `payload_id`, in order; LookupError when there is none."""
        items = self._chunk_items(payload_id, with_data=True)
        if not items:
            raise LookupError(f"payload {payload_id} is missing")
        return zlib.decompress(b"".join(item["data"]["B"] for item in items))

    def delete_all(self, payload_id: str) -> None:
        for item in self._chunk_items(payload_id, with_data=False):
            self._ddb.delete_item(TableName=self._table, Key={"pk": item["pk"], "sk": item["sk"]})

    def _chunk_items(self, payload_id: str, *, with_data: bool) -> list[dict[str, Any]]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"payload#{payload_id}"}},
            "ConsistentRead": True,
        }
        if not with_data:
            query["ProjectionExpression"] = "pk, sk"
        items: list[dict[str, Any]] = []
        while True:
            page = self._ddb.query(**query)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda i: i["sk"]["S"])
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, payload_id: str, chunks: int) -> None:
        for index in range(chunks):
            self._ddb.delete_item(
                TableName=self._table, Key={"pk": {"S": f"payload#{payload_id}"}, "sk": {"S": f"chunk#{index:04d}"}}
            )
