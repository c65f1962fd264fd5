"""The loaded configuration routing reads: the model catalog, routes and rules, with a rule index per route.

Built from plain Config-table items (as `stores.config_store` reads them, or as tests and tools write them);
validating them does no I/O, so routing never needs the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from llm_router.routing.index import RuleIndex
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.records import CONFIG_KINDS, SCHEMAS, entry_from_item, error_summary
from llm_router.schemas.rules import Rule


@dataclass(frozen=True)
class InvalidItem:
    """A Config-table item that failed validation: skipped, and reported with the reason."""

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

    @classmethod
    def from_items(cls, raw_items: dict[str, list[dict[str, Any]]]) -> ConfigSnapshot:
        """Validate plain table items by kind; an item that fails is skipped and reported, never fatal."""
        parsed: dict[str, list[BaseModel]] = {kind: [] for kind in CONFIG_KINDS}
        invalid: list[InvalidItem] = []
        for kind in CONFIG_KINDS:
            for item in raw_items.get(kind, []):
                try:
                    parsed[kind].append(SCHEMAS[kind].model_validate(entry_from_item(item)))
                except ValidationError as exc:
                    invalid.append(InvalidItem(kind, str(item.get("sk", "?")), error_summary(exc)))
        models = [m for m in parsed["model"] if isinstance(m, ModelSpec)]
        routes = [r for r in parsed["route"] if isinstance(r, RouteSpec)]
        rules = [r for r in parsed["rule"] if isinstance(r, Rule)]
        return cls.build(models, routes, rules, tuple(invalid))

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
