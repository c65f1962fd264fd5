"""Rules, routes and the model catalog from the Config table, cached in memory for `RULES_TTL_SECONDS`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from llm_router.observability import logger
from llm_router.routing.snapshot import ConfigSnapshot, InvalidItem
from llm_router.schemas.records import ADAPTATION_PARTITION, CONFIG_KINDS
from llm_router.stores.aws import client
from llm_router.stores.cache import TtlCache
from llm_router.stores.dynamo import query_partition


class ConfigStore:
    """Reads the Config table by partition (`model`, `route`, `rule`, `adaptation`) and caches the validated
    snapshot."""

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
        self._last_valid: dict[tuple[str, str], dict[str, Any]] = {}  # (kind, id) -> its last valid item
        # The last snapshot loaded: an invalid edit of a policy keeps that policy's last valid version in force.
        self._last: ConfigSnapshot | None = None
        self.cache = TtlCache(self._load, ttl=ttl_seconds, what="routing configuration", clock=clock)

    def snapshot(self) -> ConfigSnapshot:
        """The cached snapshot, re-read from DynamoDB once it is older than the TTL."""
        return self.cache.get()

    def invalidate(self) -> None:
        self.cache.invalidate()

    def _load(self) -> ConfigSnapshot:
        raw: dict[str, list[dict[str, Any]]] = {
            kind: self._query(kind) for kind in (*CONFIG_KINDS, ADAPTATION_PARTITION)
        }
        snapshot = ConfigSnapshot.from_items(raw, self._last)
        if snapshot.invalid:
            snapshot = self._keep_last_valid(raw, snapshot)
        invalid = {(bad.kind, bad.id) for bad in snapshot.invalid}
        last_valid: dict[tuple[str, str], dict[str, Any]] = {}
        for kind, items in raw.items():
            for item in items:
                key = (kind, str(item.get("sk")))
                # `raw` now holds the last valid version of an item kept that way; a new invalid item has none.
                if key not in invalid or key in self._last_valid:
                    last_valid[key] = item
        self._last_valid = last_valid
        self._last = snapshot
        for bad in snapshot.invalid:
            logger.warning("invalid_config_item", kind=bad.kind, id=bad.id, reason=bad.reason)
        for rule_id, route in snapshot.unenforceable:
            logger.error("policy_unenforceable", rule=rule_id, route=route)
        if snapshot.invalid and self._on_invalid is not None:
            self._on_invalid(snapshot.invalid)
        return snapshot

    def _keep_last_valid(self, raw: dict[str, list[dict[str, Any]]], snapshot: ConfigSnapshot) -> ConfigSnapshot:
        """An item edited into an invalid state keeps serving its last valid version (still reported as invalid):
        a typo in a rule must not silently drop it from routing."""
        kept = False
        for bad in snapshot.invalid:
            previous = self._last_valid.get((bad.kind, bad.id))
            if previous is not None:
                raw[bad.kind] = [previous if str(i.get("sk")) == bad.id else i for i in raw[bad.kind]]
                kept = True
        if not kept:
            return snapshot
        return dataclasses.replace(ConfigSnapshot.from_items(raw, self._last), invalid=snapshot.invalid)

    def _query(self, kind: str) -> list[dict[str, Any]]:
        return query_partition(self._dynamodb or client("dynamodb"), self._table, kind)
