"""The loaded configuration routing reads: the model catalog, routes and rules, with a rule index per route, and
the adaptation each route serves.

Built from plain Config-table items (as `stores.config_store` reads them, or as tests and tools write them);
validating them does no I/O, so routing never needs the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from llm_router.routing.adaptation import Adaptation
from llm_router.routing.index import RuleIndex
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.records import ADAPTATION_PARTITION, CONFIG_KINDS, SCHEMAS, entry_from_item, error_summary
from llm_router.schemas.rules import Rule


def version_key(route: str, version: str) -> str:
    """The sort key of one stored version of a route's adaptation."""
    return f"{route}#{version}"


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
    # Policy rules with no valid version, and their route (None: every route): requests they cover are refused.
    unenforceable: tuple[tuple[str, str | None], ...] = ()
    # The active adaptation of each route that has one (route id -> artifact).
    adaptations: dict[str, Adaptation] = field(default_factory=dict)
    _by_route: dict[str, tuple[Rule, ...]] = field(default_factory=dict, compare=False, repr=False)
    _indexes: dict[str, RuleIndex] = field(default_factory=dict, compare=False, repr=False)
    _policies: dict[str | None, tuple[Rule, ...]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        models: list[ModelSpec],
        routes: list[RouteSpec],
        rules: list[Rule],
        invalid: tuple[InvalidItem, ...] = (),
        unenforceable: tuple[tuple[str, str | None], ...] = (),
        adaptations: dict[str, Adaptation] | None = None,
    ) -> ConfigSnapshot:
        ordered = tuple(sorted(rules, key=lambda r: (r.priority, r.id)))
        route_map = {r.id: r for r in routes}
        by_route = {rid: tuple(r for r in ordered if r.route in (None, rid)) for rid in route_map}
        return cls({m.id: m for m in models}, route_map, ordered, invalid, unenforceable, adaptations or {}, by_route)

    @classmethod
    def from_items(
        cls, raw_items: dict[str, list[dict[str, Any]]], previous: ConfigSnapshot | None = None
    ) -> ConfigSnapshot:
        """Validate plain table items by kind; an item that fails is skipped and reported, never fatal.

        A policy must never fail open: an invalid version of a rule that `previous` held as a valid policy keeps
        that version in force, and an invalid rule that says `enforce` with no valid version to fall back to
        makes its route refuse requests (`unenforceable`) until it is fixed.
        """
        parsed: dict[str, list[BaseModel]] = {kind: [] for kind in CONFIG_KINDS}
        invalid: list[InvalidItem] = []
        unenforceable: list[tuple[str, str | None]] = []
        last_good = {r.id: r for r in previous.rules if r.is_policy} if previous is not None else {}
        for kind in CONFIG_KINDS:
            for item in raw_items.get(kind, []):
                try:
                    parsed[kind].append(SCHEMAS[kind].model_validate(entry_from_item(item)))
                except ValidationError as exc:
                    rule_id = str(item.get("sk", "?"))
                    invalid.append(InvalidItem(kind, rule_id, error_summary(exc)))
                    if kind != "rule":
                        continue
                    if rule_id in last_good:
                        parsed[kind].append(last_good[rule_id])
                    elif "enforce" in item:
                        route = item.get("route")
                        unenforceable.append((rule_id, route if isinstance(route, str) else None))
        models = [m for m in parsed["model"] if isinstance(m, ModelSpec)]
        routes = [r for r in parsed["route"] if isinstance(r, RouteSpec)]
        rules = [r for r in parsed["rule"] if isinstance(r, Rule)]
        adaptations = _active_adaptations(raw_items.get(ADAPTATION_PARTITION, []), previous, invalid)
        return cls.build(models, routes, rules, tuple(invalid), tuple(unenforceable), adaptations)

    def policies_for(self, route_id: str | None) -> tuple[Rule, ...]:
        """The enabled policy rules a request obeys: those of its route, or every one when it names a model."""
        policies = self._policies.get(route_id)
        if policies is None:
            policies = self._policies[route_id] = tuple(
                r for r in self.rules if r.is_policy and r.enabled and (route_id is None or r.route in (None, route_id))
            )
        return policies

    def unenforceable_for(self, route_id: str | None) -> tuple[str, ...]:
        """Ids of policies without a valid version that a request on `route_id` (None: a named model) obeys."""
        return tuple(rid for rid, route in self.unenforceable if route_id is None or route in (None, route_id))

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


def _active_adaptations(
    items: list[dict[str, Any]], previous: ConfigSnapshot | None, invalid: list[InvalidItem]
) -> dict[str, Adaptation]:
    """The adaptation each route's pointer names. A version item that does not load, or a pointer naming a version
    that does not exist or does not load, is reported in `invalid`; the route keeps the adaptation `previous`
    served (its last valid version), or serves the shipped model when there was none."""
    versions: dict[str, Adaptation] = {}
    broken: set[str] = set()  # version items reported already: a pointer to one is not reported again
    pointers: dict[str, Any] = {}
    for item in items:
        key = str(item.get("sk", "?"))
        route, sep, version = key.partition("#")
        if not sep:
            pointers[route] = item.get("active")
            continue
        try:
            adaptation = Adaptation.from_dict({k: v for k, v in item.items() if k not in ("pk", "sk")})
            if adaptation.route != route or adaptation.version != version:
                raise ValueError(
                    f"the artifact says route {adaptation.route!r} version {adaptation.version!r}, its key {key!r}"
                )
        except (ValueError, TypeError, KeyError) as exc:
            invalid.append(InvalidItem(ADAPTATION_PARTITION, key, str(exc)))
            broken.add(key)
            continue
        versions[key] = adaptation
    active: dict[str, Adaptation] = {}
    for route, version in pointers.items():
        if version is None:
            continue  # a pointer without `active`: the shipped model, by an operator's rollback
        key = version_key(route, version) if isinstance(version, str) else ""
        served = versions.get(key)
        if served is None:
            if key not in broken:
                invalid.append(InvalidItem(ADAPTATION_PARTITION, route, f"active version {version!r} does not exist"))
            served = previous.adaptations.get(route) if previous is not None else None
        if served is not None:
            active[route] = served
    return active
