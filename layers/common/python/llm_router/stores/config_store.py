"""Rules, routes and the model catalog from the Config table, cached in memory for `RULES_TTL_SECONDS`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from llm_router.observability import logger
from llm_router.routing.snapshot import ConfigSnapshot, InvalidItem
from llm_router.schemas.records import CONFIG_KINDS
from llm_router.stores.aws import client
from llm_router.stores.cache import TtlCache
from llm_router.stores.dynamo import query_partition


class ConfigStore:
    """Reads the Config table by partition (`model`, `route`, `rule`) and caches the validated snapshot."""

    def __init__(
        self,
        table_name: str,
        *,
        ttl_seconds: float = 30.0,
        dynamodb: Any = None,
        clock: Callable[[], float] = time.monotonic,
        on_invalid: Callable[[tuple[InvalidItem, ...]], None] | None = None,
    ) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._on_invalid = on_invalid
        # The last snapshot loaded: an invalid edit of a policy keeps that policy's last valid version in force.
        self._last: ConfigSnapshot | None = None
        self.cache = TtlCache(self._load, ttl=ttl_seconds, what="routing configuration", clock=clock)

    def snapshot(self) -> ConfigSnapshot:
        """The cached snapshot, re-read from DynamoDB once it is older than the TTL."""
        return self.cache.get()

    def invalidate(self) -> None:
        self.cache.invalidate()

    def _load(self) -> ConfigSnapshot:
        snapshot = ConfigSnapshot.from_items({kind: self._query(kind) for kind in CONFIG_KINDS}, self._last)
        self._last = snapshot
        for bad in snapshot.invalid:
            logger.warning("invalid_config_item", kind=bad.kind, id=bad.id, reason=bad.reason)
        for rule_id, route in snapshot.unenforceable:
            logger.error("policy_unenforceable", rule=rule_id, route=route)
        if snapshot.invalid and self._on_invalid is not None:
            self._on_invalid(snapshot.invalid)
        return snapshot

    def _query(self, kind: str) -> list[dict[str, Any]]:
        return query_partition(self._dynamodb or client("dynamodb"), self._table, kind)
