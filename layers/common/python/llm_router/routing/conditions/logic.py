"""Combinators: `all` (every part holds), `any` (one part holds), `not` (the part does not hold).

`all` is guarded by the cheapest guard of its parts, `any` by the union of its parts' guards when every part has
one; nothing rules a `not` out, since a request lacking a fact is exactly what it may look for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from llm_router.routing.conditions.registry import (
    Condition,
    ConditionType,
    Cost,
    Guard,
    Rank,
    Result,
    cheapest,
    condition_words,
    evaluate,
    guard_of,
    no_guard,
    register,
)

if TYPE_CHECKING:
    from llm_router.routing.features import Features  # annotations only: conditions load no request model

Parts = tuple[Condition, ...]


def _all(parts: Parts, f: Features) -> Result:
    reasons = []
    for part in parts:
        ok, why = evaluate(part, f)
        if not ok:
            return False, why
        reasons.append(why)
    return True, " and ".join(reasons) or "all: empty"


def _all_guard(parts: Parts, rank: Rank) -> Guard | None:
    return cheapest(guard_of(part, rank) for part in parts)


def _any(parts: Parts, f: Features) -> Result:
    reasons = []
    for part in parts:
        ok, why = evaluate(part, f)
        if ok:
            return True, why
        reasons.append(why)
    return False, "; ".join(reasons) or "any: empty"


def _any_guard(parts: Parts, rank: Rank) -> Guard | None:
    guards = [guard_of(part, rank) for part in parts]
    if not guards or any(guard is None for guard in guards):
        return None
    return frozenset().union(*(guard for guard in guards if guard is not None))


def _words(parts: Parts) -> Iterable[str]:
    for part in parts:
        yield from condition_words(part)


def _not(part: Condition, f: Features) -> Result:
    ok, why = evaluate(part, f)
    return not ok, f"not ({why})"


register(
    ConditionType(
        "all", Parts, Cost.NESTED, _all, _all_guard, example=[{"keywords": ["sql"]}, {"tenant": "acme"}], words=_words
    )
)
register(
    ConditionType(
        "any", Parts, Cost.NESTED, _any, _any_guard, example=[{"has_images": True}, {"min_chars": 10000}], words=_words
    )
)
register(ConditionType("not", Condition, Cost.NESTED, _not, no_guard, example={"pii": True}))
