"""Conditions on fields of the request: `tenant`, `metadata`, `has_tools`, `has_images`.

The cheapest checks, and the best guards: the index finds their rules with one dictionary look-up per fact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_router.routing.conditions.registry import ConditionType, Cost, Guard, Rank, Result, register

if TYPE_CHECKING:
    from llm_router.routing.features import Features  # annotations only: conditions load no request model

OneOrMany = str | tuple[str, ...]


def as_tuple(value: OneOrMany) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def _tenant(tenant: OneOrMany, f: Features) -> Result:
    allowed = as_tuple(tenant)
    return f.tenant in allowed, f"tenant {f.tenant!r} {'in' if f.tenant in allowed else 'not in'} {list(allowed)}"


def _tenant_guard(tenant: OneOrMany, rank: Rank) -> Guard:
    return frozenset(("tenant", t) for t in as_tuple(tenant))


def _metadata(metadata: dict[str, OneOrMany], f: Features) -> Result:
    for key, expected in metadata.items():
        actual = f.metadata.get(key)
        if actual is None or actual not in as_tuple(expected):
            return False, f"metadata {key}={actual!r} not in {list(as_tuple(expected))}"
    return True, f"metadata matches {metadata}"


def _metadata_guard(metadata: dict[str, OneOrMany], rank: Rank) -> Guard | None:
    # Every pair must hold: the first is enough for a guard.
    for key, expected in metadata.items():
        return frozenset(("meta", key, v) for v in as_tuple(expected))
    return None


def _has_tools(wanted: bool, f: Features) -> Result:
    return f.has_tools is wanted, f"has_tools={f.has_tools}"


def _has_tools_guard(wanted: bool, rank: Rank) -> Guard:
    return frozenset({("flag", "has_tools", wanted)})


def _has_images(wanted: bool, f: Features) -> Result:
    return f.has_images is wanted, f"has_images={f.has_images}"


def _has_images_guard(wanted: bool, rank: Rank) -> Guard:
    return frozenset({("flag", "has_images", wanted)})


register(ConditionType("tenant", OneOrMany, Cost.LOOKUP, _tenant, _tenant_guard, example=["acme", "globex"]))
register(
    ConditionType(
        "metadata", dict[str, OneOrMany], Cost.LOOKUP, _metadata, _metadata_guard, example={"team": ["search", "ads"]}
    )
)
register(ConditionType("has_tools", bool, Cost.LOOKUP, _has_tools, _has_tools_guard, example=True))
register(ConditionType("has_images", bool, Cost.LOOKUP, _has_images, _has_images_guard, example=False))
