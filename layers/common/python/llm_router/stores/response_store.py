"""Responses API objects kept for `previous_response_id` and `GET /v1/responses/{id}`, when created with `store: true`.

Item: `pk = response#<id>`, `sk = response`, with `tenant`, `created_at`, `expires_at` and, as JSON (zlib above
`COMPRESS_ABOVE_BYTES`, as cached answers are), the response object and the conversation it ended: every input item
of the chain so far plus its own output items, so a follow-up only puts its new input after them. `instructions`
are not part of the conversation (as with OpenAI, a follow-up gives its own). A read checks the tenant, and treats
an expired item as absent (DynamoDB's TTL deletes items some time after `expires_at`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_router.stores.aws import client
from llm_router.stores.dynamo import document_attributes, document_bytes

PREFIX = "response#"
SORT_KEY = "response"


class ConversationTooLarge(ValueError):
    """The conversation does not fit in one item even compressed."""


@dataclass(frozen=True)
class StoredResponse:
    response: dict[str, Any]
    items: list[dict[str, Any]]


class ResponseStore:
    def __init__(
        self, table_name: str, *, ttl_seconds: int, dynamodb: Any = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._table = table_name
        self._ttl = ttl_seconds
        self._dynamodb = dynamodb
        self._clock = clock

    @property
    def _ddb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def put(self, tenant: str, response: dict[str, Any], items: list[dict[str, Any]]) -> None:
        data = json.dumps({"response": response, "items": items}, separators=(",", ":"), ensure_ascii=False).encode()
        # A conversation too large for one item is not kept (its follow-ups send their history in `input`).
        stored = document_attributes(data, "body", ConversationTooLarge)
        now = int(self._clock())
        self._ddb.put_item(
            TableName=self._table,
            Item={
                **_key(str(response["id"])),
                "tenant": {"S": tenant},
                "created_at": {"N": str(now)},
                "expires_at": {"N": str(now + self._ttl)},
                **stored,
            },
        )

    def get(self, tenant: str, response_id: str) -> StoredResponse | None:
        """The unexpired response `response_id` if `tenant` created it, else None (another tenant's is absent)."""
        item = self._ddb.get_item(TableName=self._table, Key=_key(response_id), ConsistentRead=True).get("Item")
        if item is None or item.get("tenant", {}).get("S") != tenant:
            return None
        if int(item["expires_at"]["N"]) <= self._clock():
            return None
        document = json.loads(document_bytes(item, "body"))
        return StoredResponse(document["response"], document["items"])

    def delete(self, tenant: str, response_id: str) -> bool:
        """Delete `response_id` if `tenant` created it; False when there was none to delete."""
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key=_key(response_id),
                ConditionExpression="tenant = :tenant",
                ExpressionAttributeValues={":tenant": {"S": tenant}},
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _key(response_id: str) -> dict[str, Any]:
    return {"pk": {"S": PREFIX + response_id}, "sk": {"S": SORT_KEY}}
