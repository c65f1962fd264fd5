"""Request bodies too large for an SQS message, kept in the State table as compressed chunks.

Why the State table and not S3: the stack already has it (encrypted, TTL-cleaned, one IAM grant), so a large
body needs no bucket, no lifecycle rules and no extra permissions. A DynamoDB item holds at most 400 KB, so the
compressed body is split into chunks of `CHUNK_BYTES`; `MAX_BODY_BYTES` (1 MiB by default) needs at most a few.
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

    def delete(self, payload_id: str, chunks: int) -> None:
        for index in range(chunks):
            self._ddb.delete_item(
                TableName=self._table, Key={"pk": {"S": f"payload#{payload_id}"}, "sk": {"S": f"chunk#{index:04d}"}}
            )
