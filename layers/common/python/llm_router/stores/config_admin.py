"""The write side of the Config table: validate a whole config document, import it, export it, edit items.

Used by the CLI and local mode; the router itself only reads (stores/config_store.py).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.records import (
    CONFIG_KINDS,
    ConfigKind,
    dump_entry,
    entry_from_item,
    error_summary,
    item_from_entry,
    to_dynamo,
    validate_entry,
)
from llm_router.schemas.rules import Rule
from llm_router.schemas.tenants import TENANT_PARTITION, TenantSpec
from llm_router.stores.aws import client
from llm_router.stores.dynamo import item as dynamo_item
from llm_router.stores.dynamo import plain_item, query_partition

SECTION = {"model": "models", "route": "routes", "rule": "rules", "tenant": "tenants"}
# Tenants (budgets, allow-lists) travel in the same file; API keys never do.
DOCUMENT_KINDS: tuple[str, ...] = (*CONFIG_KINDS, TENANT_PARTITION)


def _validate(kind: str, entry: dict[str, Any]) -> BaseModel:
    if kind == TENANT_PARTITION:
        return TenantSpec.model_validate(entry)
    return validate_entry(kind, entry)  # type: ignore[arg-type]


@dataclass
class ValidatedConfig:
    """A config document split by kind; `errors` lists every problem as `kind id: reason`."""

    entries: dict[str, dict[str, BaseModel]] = field(default_factory=lambda: {k: {} for k in DOCUMENT_KINDS})
    errors: list[str] = field(default_factory=list)
    # The kinds whose section the document has: only those are pruned.
    sections: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_document(doc: Any, *, known_models: set[str] | None = None) -> ValidatedConfig:
    """Validate every entry and the references between them (targets, defaults, baselines, fallbacks)."""
    result = ValidatedConfig()
    if not isinstance(doc, dict):
        result.errors.append("the config must be a mapping with models, routes, rules and tenants")
        return result
    unknown = set(doc) - set(SECTION.values())
    if unknown:
        result.errors.append(f"unknown top-level keys: {sorted(unknown)} (expected models, routes, rules, tenants)")
    for kind in DOCUMENT_KINDS:
        if SECTION[kind] in doc:
            result.sections.add(kind)
        section = doc.get(SECTION[kind]) or []
        if not isinstance(section, list):
            result.errors.append(f"{SECTION[kind]} must be a list")
            continue
        for position, entry in enumerate(section):
            label = entry.get("id", f"#{position}") if isinstance(entry, dict) else f"#{position}"
            try:
                obj = _validate(kind, entry if isinstance(entry, dict) else {})
            except ValidationError as exc:
                result.errors.append(f"{kind} {label}: {error_summary(exc)}")
                continue
            if obj.id in result.entries[kind]:  # type: ignore[attr-defined]
                result.errors.append(f"{kind} {label}: duplicate id")
            result.entries[kind][obj.id] = obj  # type: ignore[attr-defined]
    models = set(result.entries["model"]) | (known_models or set())
    result.errors += reference_errors(result.entries, models)
    result.errors += integrity_errors(result.entries)
    return result


def integrity_errors(entries: dict[str, dict[str, BaseModel]]) -> list[str]:
    """What would make routing silently ignore or misread a rule: a route that does not exist, two enabled rules
    of one route at the same priority (evaluated in id order, which nobody chose), and residency patterns that
    leave a rule no model to call."""
    routes = entries.get("route", {})
    rules = [r for r in entries.get("rule", {}).values() if isinstance(r, Rule)]
    models = {m.id: m for m in entries.get("model", {}).values() if isinstance(m, ModelSpec)}
    errors = [
        f"rule {rule.id}: unknown route {rule.route!r} (the rule would never be used)"
        for rule in rules
        if rule.route is not None and rule.route not in routes
    ]
    enabled = sorted((r for r in rules if r.enabled), key=lambda r: (r.priority, r.id))
    for i, first in enumerate(enabled):
        for second in enabled[i + 1 :]:
            if second.priority != first.priority:
                break
            if first.route is None or second.route is None or first.route == second.route:
                where = f"route {first.route or second.route!r}" if (first.route or second.route) else "every route"
                errors.append(
                    f"rule {second.id}: priority {second.priority} ties with rule {first.id} on {where}; "
                    "give one of them another priority"
                )
    for rule in rules:
        if rule.regions is None:
            continue
        chains = [rule.then.targets] if rule.then.targets else [arm.targets for arm in rule.then.split or ()]
        for chain in chains:
            known = [models[m] for m in chain if m in models]
            candidates = known + [models[f] for m in known for f in m.fallbacks if f in models]
            if len(known) == len(chain) and not any(_in_regions(m, rule.regions) for m in candidates):
                errors.append(
                    f"rule {rule.id}: regions {list(rule.regions)} exclude every target ({', '.join(chain)}); "
                    "the rule could only answer 400"
                )
    return errors


def _in_regions(model: ModelSpec, patterns: tuple[str, ...]) -> bool:
    """As routing reads `regions`: a model without a region is outside every pattern."""
    return model.region is not None and any(fnmatch.fnmatchcase(model.region, p) for p in patterns)


def dependents(entries: dict[str, dict[str, BaseModel]], kind: str, item_id: str) -> list[str]:
    """The items that name `kind item_id` (what breaks if it is deleted)."""
    found = []
    if kind == "model":
        for route in entries.get("route", {}).values():
            assert isinstance(route, RouteSpec)
            named = set(route.default) | ({route.baseline} if route.baseline else set())
            if route.strategy is not None:
                named |= {route.strategy.weak, route.strategy.strong}
            if route.learn is not None:
                named |= route.learn.models()
            if item_id in named:
                found.append(f"route {route.id}")
        found += [
            f"rule {rule.id}"
            for rule in entries.get("rule", {}).values()
            if isinstance(rule, Rule) and item_id in rule.then.model_ids()
        ]
        found += [
            f"model {model.id} (fallback)"
            for model in entries.get("model", {}).values()
            if isinstance(model, ModelSpec) and item_id in model.fallbacks
        ]
    elif kind == "route":
        found += [
            f"rule {rule.id}"
            for rule in entries.get("rule", {}).values()
            if isinstance(rule, Rule) and rule.route == item_id
        ]
    return found


def reference_errors(entries: dict[str, dict[str, BaseModel]], models: set[str]) -> list[str]:
    """Model ids named by routes, rules and fallbacks that the catalog does not have."""
    errors = []
    for route in entries.get("route", {}).values():
        assert isinstance(route, RouteSpec)
        named = set(route.default) | ({route.baseline} if route.baseline else set())
        if route.strategy is not None:
            named |= {route.strategy.weak, route.strategy.strong}
        if route.learn is not None:
            named |= route.learn.models()
        errors += [f"route {route.id}: unknown model {m!r}" for m in sorted(named - models)]
    for rule in entries.get("rule", {}).values():
        assert isinstance(rule, Rule)
        errors += [f"rule {rule.id}: unknown model {m!r}" for m in sorted(rule.then.model_ids() - models)]
    for model in entries.get("model", {}).values():
        assert isinstance(model, ModelSpec)
        errors += [f"model {model.id}: unknown fallback {m!r}" for m in sorted(set(model.fallbacks) - models)]
    for tenant in entries.get(TENANT_PARTITION, {}).values():
        assert isinstance(tenant, TenantSpec)
        errors += [f"tenant {tenant.id}: unknown model {m!r}" for m in sorted(set(tenant.models or ()) - models)]
    return errors


class ConfigAdmin:
    """Reads and writes Config table items as plain attributes (maps, lists), never JSON strings."""

    def __init__(self, table_name: str, *, dynamodb: Any = None) -> None:
        self._table = table_name
        self._dynamodb = dynamodb

    @property
    def _ddb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def items(self, kind: str) -> list[dict[str, Any]]:
        """Every raw item of a partition, as plain Python (valid or not)."""
        return query_partition(self._ddb, self._table, kind)

    def entries(self, kind: str) -> list[dict[str, Any]]:
        return [entry_from_item(item) for item in self.items(kind)]

    def get(self, kind: str, item_id: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(TableName=self._table, Key={"pk": {"S": kind}, "sk": {"S": item_id}}).get("Item")
        return entry_from_item(plain_item(item)) if item else None

    def put(self, kind: ConfigKind | str, obj: BaseModel) -> None:
        item = to_dynamo(item_from_entry(kind, dump_entry(obj)))  # type: ignore[arg-type]
        self._ddb.put_item(TableName=self._table, Item=dynamo_item(item))

    def put_raw(self, kind: str, entry: dict[str, Any]) -> None:
        """Write an entry without validation (tests and repairs only)."""
        item = to_dynamo(item_from_entry(kind, entry))  # type: ignore[arg-type]
        self._ddb.put_item(TableName=self._table, Item=dynamo_item(item))

    def delete(self, kind: str, item_id: str) -> bool:
        old = self._ddb.delete_item(
            TableName=self._table, Key={"pk": {"S": kind}, "sk": {"S": item_id}}, ReturnValues="ALL_OLD"
        )
        return "Attributes" in old

    def validated(self) -> ValidatedConfig:
        """The whole table checked as `config validate` checks a file."""
        return validate_document(self.export())

    def known_models(self) -> set[str]:
        return {str(item["sk"]) for item in self.items("model")}

    def export(self) -> dict[str, list[dict[str, Any]]]:
        return {SECTION[kind]: sorted(self.entries(kind), key=lambda e: str(e["id"])) for kind in DOCUMENT_KINDS}

    def diff(self, config: ValidatedConfig, *, prune: bool = False) -> list[str]:
        """What `apply` would change: `+ kind id` (new), `~ kind id` with a `field: old -> new` line per changed
        field, `= kind id` (unchanged), and with `prune`, `- kind id` (deleted)."""
        lines = []
        for kind in DOCUMENT_KINDS:
            current = {str(e["id"]): e for e in self.entries(kind)}
            for item_id, obj in sorted(config.entries[kind].items()):
                old = current.get(item_id)
                if old is None:
                    lines.append(f"+ {kind} {item_id}")
                    continue
                changes = _field_changes(_normalized(kind, old), dump_entry(obj))
                lines.append(f"{'~' if changes else '='} {kind} {item_id}")
                lines += [f"    {change}" for change in changes]
            if prune and kind in config.sections:
                lines += [f"- {kind} {item_id}" for item_id in sorted(set(current) - set(config.entries[kind]))]
        return lines

    def apply(self, config: ValidatedConfig, *, prune: bool = False) -> int:
        """Write every entry (the document was validated as a whole first) and, with `prune`, delete the items of
        the document's sections that it does not have; returns the number written or deleted."""
        written = 0
        for kind in DOCUMENT_KINDS:
            for obj in config.entries[kind].values():
                self.put(kind, obj)
                written += 1
            if prune and kind in config.sections:
                for item_id in {str(e["id"]) for e in self.entries(kind)} - set(config.entries[kind]):
                    written += self.delete(kind, item_id)
        return written


def _normalized(kind: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A stored entry in the shape `dump_entry` gives, so that equal settings compare equal (raw when invalid)."""
    try:
        return dump_entry(_validate(kind, entry))
    except ValidationError:
        return entry


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {json.dumps(old.get(name))} -> {json.dumps(new.get(name))}"
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]
