"""Versioned adaptations in the Config table, and which one each route serves.

Items (partition `adaptation`):
- `sk = "<route>#<version>"`: one artifact per version (`Adaptation.to_dict()` as plain attributes). Versions are
  `v1`, `v2`, ... per route, never rewritten: a conditional put claims each number, so two adapt runs at once
  cannot overwrite each other's artifact.
- `sk = "<route>"`: the route's pointer, `{"active": "<version>", "previous": "<version>", "updated_at": ...}`,
  and `"held": true` after a rollback (the scheduled run then leaves the route alone). Without it, or without
  `active`, the route serves the shipped model.

The router reads these items with the rest of the configuration (stores/config_store.py), so activating or rolling
back a version takes effect everywhere within the config cache TTL, without a redeploy.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from llm_router.routing.adaptation import Adaptation
from llm_router.routing.snapshot import version_key
from llm_router.schemas.records import ADAPTATION_PARTITION
from llm_router.stores.aws import client
from llm_router.stores.dynamo import item as dynamo_item
from llm_router.stores.dynamo import plain_item, query_partition

_VERSION = re.compile(r"^v([1-9][0-9]*)$")
# Claiming a version number can lose a race with another adapt run; each retry takes the next number.
_SAVE_ATTEMPTS = 5


class AdaptationError(Exception):
    """An operation on a route's adaptations that cannot be done (no such version, nothing to roll back to)."""


def version_number(version: str) -> int:
    """The N of `vN` (0 for anything else, which never sorts among stored versions)."""
    match = _VERSION.match(version)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True)
class VersionInfo:
    """One stored version of a route's adaptation, as `adapt list` shows it."""

    version: str
    active: bool
    adaptation: Adaptation | None  # None when the stored item does not load (shown with `error`)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "active": self.active}
        if self.adaptation is None:
            out["error"] = self.error
            return out
        meta = self.adaptation.metadata
        out |= {
            "weak": self.adaptation.weak,
            "strong": self.adaptation.strong,
            "threshold": round(self.adaptation.threshold, 4),
            "samples": meta.get("samples"),
            "fitted_at": meta.get("fitted_at"),
            "target_quality": meta.get("target_quality"),
        }
        return out


class AdaptationStore:
    """Saves, lists, activates and rolls back the adaptation versions of routes."""

    def __init__(self, table_name: str, *, dynamodb: Any = None, clock: Callable[[], float] = time.time) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._clock = clock

    @property
    def _ddb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    # -- reading -------------------------------------------------------------------------------------------
    def versions(self, route: str) -> list[VersionInfo]:
        """Every stored version of `route`, oldest first, marking the active one."""
        items = query_partition(
            self._ddb, self._table, ADAPTATION_PARTITION, sk_between=(f"{route}#", f"{route}#\U0010ffff")
        )
        active = self.active_version(route)
        found: list[VersionInfo] = []
        for raw in items:
            version = str(raw["sk"]).partition("#")[2]
            if version_number(version) == 0:
                continue
            try:
                adaptation: Adaptation | None = Adaptation.from_dict(_artifact(raw))
                error = None
            except (ValueError, TypeError, KeyError) as exc:
                adaptation, error = None, str(exc)
            found.append(VersionInfo(version, version == active, adaptation, error))
        return sorted(found, key=lambda v: version_number(v.version))

    def active_version(self, route: str) -> str | None:
        pointer = self._pointer(route)
        active = pointer.get("active") if pointer else None
        return active if isinstance(active, str) else None

    def active(self, route: str) -> Adaptation | None:
        """The adaptation `route` serves now (None: the shipped model)."""
        version = self.active_version(route)
        return self.get(route, version) if version is not None else None

    def get(self, route: str, version: str) -> Adaptation | None:
        raw = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": {"S": ADAPTATION_PARTITION}, "sk": {"S": version_key(route, version)}},
            ConsistentRead=True,
        ).get("Item")
        return Adaptation.from_dict(_artifact(plain_item(raw))) if raw else None

    # -- writing -------------------------------------------------------------------------------------------
    def save(self, adaptation: Adaptation, route: str) -> Adaptation:
        """Store `adaptation` as the next version of `route` (v1, v2, ...) and return it with that version.

        Does not activate it: `activate` does, once the caller has decided to promote it.
        """
        from botocore.exceptions import ClientError

        for _ in range(_SAVE_ATTEMPTS):
            latest = max((version_number(v.version) for v in self.versions(route)), default=0)
            stored = replace(adaptation, route=route, version=f"v{latest + 1}")
            values = {"pk": ADAPTATION_PARTITION, "sk": version_key(route, stored.version), **stored.to_dict()}
            try:
                self._ddb.put_item(
                    TableName=self._table,
                    Item=dynamo_item(values),
                    ConditionExpression="attribute_not_exists(sk)",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    continue  # another run claimed this number first
                raise
            return stored
        raise AdaptationError(f"could not claim a new version number for route {route!r}: too many concurrent saves")

    def activate(self, route: str, version: str, *, held: bool = False) -> str | None:
        """Make `version` the one `route` serves; returns the version it replaces (None: the shipped model).

        `held` (what a rollback sets) keeps the scheduled run from promoting over an operator's choice until a
        person runs `llm-router adapt ROUTE` again."""
        if self.get(route, version) is None:
            raise AdaptationError(f"route {route!r} has no adaptation {version!r} (`llm-router adapt list {route}`)")
        return self._point(route, version, held=held)

    def deactivate(self, route: str, *, held: bool = False) -> str | None:
        """Serve the shipped model again on `route`; the versions stay stored. Returns the version that was active."""
        return self._point(route, None, held=held)

    def held(self, route: str) -> bool:
        """Whether a rollback holds the route at its version (the scheduled run leaves it alone)."""
        pointer = self._pointer(route)
        return bool(pointer and pointer.get("held"))

    def rollback(self, route: str, to: str | None = None) -> tuple[str | None, str | None]:
        """Serve `to`, or the version before the active one (the shipped model before v1); returns (from, to).

        The previous version is the highest-numbered loadable one below the active version: a rollback undoes the
        latest promotion, and rolling back again undoes the one before.
        """
        current = self.active_version(route)
        if to is not None:
            if to in ("shipped", "none"):
                if current is None:
                    raise AdaptationError(f"route {route!r} already serves the shipped model")
                self.deactivate(route, held=True)
                return current, None
            if version_number(to) == 0:
                raise AdaptationError(f"--to wants a version such as v2 (or `shipped`), got {to!r}")
            if to == current:
                raise AdaptationError(f"{to} is already the active adaptation of route {route!r}")
            self.activate(route, to, held=True)
            return current, to
        if current is None:
            raise AdaptationError(f"route {route!r} has no active adaptation to roll back")
        older = [
            v.version
            for v in self.versions(route)
            if v.adaptation is not None and version_number(v.version) < version_number(current)
        ]
        if not older:
            self.deactivate(route, held=True)
            return current, None
        self.activate(route, older[-1], held=True)
        return current, older[-1]

    # -- helpers -------------------------------------------------------------------------------------------
    def _point(self, route: str, version: str | None, *, held: bool) -> str | None:
        """Write the route's pointer (no `active`: the shipped model); returns the version it replaces."""
        previous = self.active_version(route)
        values: dict[str, Any] = {"pk": ADAPTATION_PARTITION, "sk": route, "updated_at": self._now()}
        if version is not None:
            values["active"] = version
        if previous is not None and previous != version:
            values["previous"] = previous
        if held:
            values["held"] = True
        self._ddb.put_item(TableName=self._table, Item=dynamo_item(values))
        return previous

    def _pointer(self, route: str) -> dict[str, Any] | None:
        raw = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": {"S": ADAPTATION_PARTITION}, "sk": {"S": route}},
            ConsistentRead=True,
        ).get("Item")
        return plain_item(raw) if raw else None

    def _now(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds")


def _artifact(item: dict[str, Any]) -> dict[str, Any]:
    """The artifact's own fields from a table item (without the keys)."""
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}
