"""Rules, routes and the model catalog from the Config table, cached in memory for `RULES_TTL_SECONDS`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from llm_router.observability import logger
from llm_router.routing.index import RuleIndex
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.records import CONFIG_KINDS, entry_from_item, error_summary
from llm_router.schemas.rules import Rule
from llm_router.stores.aws import client
from llm_router.stores.cache import TtlCache
from llm_router.stores.dynamo import query_partition


@dataclass(frozen=True)
class InvalidItem:
    kind: str
    id: str
    reason: str


@dataclass(frozen=True)
class ConfigSnapshot:
    """One consistent view of the configuration; routing reads only this."""

    models: dict[str, ModelSpec]
    routes: dict[str, RouteSpec]
    rules: tuple[Rule, ...]  # sorted by (priority, id)
    invalid: tuple[InvalidItem, ...] = ()
    _by_route: dict[str, tuple[Rule, ...]] = field(default_factory=dict, compare=False, repr=False)
    _indexes: dict[str, RuleIndex] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        models: list[ModelSpec],
        routes: list[RouteSpec],
        rules: list[Rule],
        invalid: tuple[InvalidItem, ...] = (),
    ) -> ConfigSnapshot:
        ordered = tuple(sorted(rules, key=lambda r: (r.priority, r.id)))
        route_map = {r.id: r for r in routes}
        by_route = {rid: tuple(r for r in ordered if r.route in (None, rid)) for rid in route_map}
        return cls({m.id: m for m in models}, route_map, ordered, invalid, by_route)

    def rules_for(self, route_id: str) -> tuple[Rule, ...]:
        """Enabled and disabled rules that apply to `route_id`, in evaluation order."""
        cached = self._by_route.get(route_id)
        if cached is not None:
            return cached
        return tuple(r for r in self.rules if r.route in (None, route_id))

    def index_for(self, route_id: str) -> RuleIndex:
        """The rules of `route_id` indexed by their guards (built on first use, once per snapshot)."""
        index = self._indexes.get(route_id)
        if index is None:
            index = self._indexes[route_id] = RuleIndex.build(self.rules_for(route_id))
        return index


def parse_items(raw_items: dict[str, list[dict[str, Any]]]) -> ConfigSnapshot:
    """Validate plain table items by kind; an item that fails is skipped and reported, never fatal."""
    parsed: dict[str, list[Any]] = {kind: [] for kind in CONFIG_KINDS}
    invalid: list[InvalidItem] = []
    schemas: dict[str, Any] = {"model": ModelSpec, "route": RouteSpec, "rule": Rule}
    for kind in CONFIG_KINDS:
        for item in raw_items.get(kind, []):
            item_id = str(item.get("sk", "?"))
            try:
                parsed[kind].append(schemas[kind].model_validate(entry_from_item(item)))
            except ValidationError as exc:
                invalid.append(InvalidItem(kind, item_id, error_summary(exc)))
    return ConfigSnapshot.build(parsed["model"], parsed["route"], parsed["rule"], tuple(invalid))


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
        self.cache = TtlCache(self._load, ttl=ttl_seconds, what="routing configuration", clock=clock)

    def snapshot(self) -> ConfigSnapshot:
        """The cached snapshot, re-read from DynamoDB once it is older than the TTL."""
        return self.cache.get()

    def invalidate(self) -> None:
        self.cache.invalidate()

    def _load(self) -> ConfigSnapshot:
        snapshot = parse_items({kind: self._query(kind) for kind in CONFIG_KINDS})
        for bad in snapshot.invalid:
            logger.warning("invalid_config_item", kind=bad.kind, id=bad.id, reason=bad.reason)
        if snapshot.invalid and self._on_invalid is not None:
            self._on_invalid(snapshot.invalid)
        return snapshot

    def _query(self, kind: str) -> list[dict[str, Any]]:
        return query_partition(self._dynamodb or client("dynamodb"), self._table, kind)
