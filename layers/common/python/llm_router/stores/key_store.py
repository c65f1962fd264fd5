"""API keys in the Config table (partition `apikey`), stored only as SHA-256 hashes with their tenant."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from llm_router.schemas.records import KEY_PARTITION, ApiKeyItem, hash_key
from llm_router.stores.aws import client
from llm_router.stores.dynamo import item as dynamo_item
from llm_router.stores.dynamo import plain_item, query_partition

KEY_PREFIX = "sk-"
PREFIX_SHOWN = 10


def new_key() -> str:
    """`sk-` and 40 URL-safe random characters (240 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(30)


MIN_HASH_PREFIX = 8


class AmbiguousKeyError(ValueError):
    """A hash prefix that names more than one key: nothing is revoked."""


class KeyStore:
    def __init__(self, table_name: str, *, dynamodb: Any = None) -> None:
        self._table = table_name
        self._dynamodb = dynamodb

    @property
    def _ddb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def lookup(self, key: str) -> ApiKeyItem | None:
        """The enabled key record for `key`, or None."""
        item = self._ddb.get_item(
            TableName=self._table, Key={"pk": {"S": KEY_PARTITION}, "sk": {"S": hash_key(key)}}
        ).get("Item")
        if item is None:
            return None
        record = ApiKeyItem.model_validate(plain_item(item))
        return record if record.enabled else None

    def create(self, tenant: str, key: str | None = None, *, admin: bool = False) -> tuple[str, ApiKeyItem]:
        """Store a new key for `tenant` (admin scope when asked); returns the key (shown once) and its record."""
        key = key or new_key()
        record = ApiKeyItem(
            sk=hash_key(key),
            tenant=tenant,
            prefix=key[:PREFIX_SHOWN],
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            scope="admin" if admin else "user",
        )
        self._ddb.put_item(TableName=self._table, Item=dynamo_item(record.model_dump()))
        return key, record

    def all(self) -> list[ApiKeyItem]:
        items = [ApiKeyItem.model_validate(i) for i in query_partition(self._ddb, self._table, KEY_PARTITION)]
        return sorted(items, key=lambda r: (r.tenant, r.created_at))

    def revoke(self, hash_or_prefix: str) -> list[ApiKeyItem]:
        """Delete the keys whose hash or shown prefix equals `hash_or_prefix`, or the one key whose hash starts
        with it (at least 8 characters: `keys list` shows the first 16); returns what was revoked."""
        records = self.all()
        revoked = [r for r in records if hash_or_prefix in (r.sk, r.prefix)]
        if not revoked and len(hash_or_prefix) >= MIN_HASH_PREFIX:
            revoked = [r for r in records if r.sk.startswith(hash_or_prefix.lower())]
            if len(revoked) > 1:
                raise AmbiguousKeyError(f"{len(revoked)} keys have a hash starting with {hash_or_prefix!r}")
        for record in revoked:
            self._ddb.delete_item(TableName=self._table, Key={"pk": {"S": KEY_PARTITION}, "sk": {"S": record.sk}})
        return revoked
