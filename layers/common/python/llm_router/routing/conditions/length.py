"""Conditions on the size of the request: `min_chars`, `max_chars`, `min_tokens`, `max_tokens`.

Any text may be long or short enough, so they offer no index guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from llm_router.routing.conditions.registry import ConditionType, Cost, Result, no_guard, register

if TYPE_CHECKING:
    from llm_router.routing.features import Features  # annotations only: conditions load no request model

Count = Annotated[int, Field(ge=0)]


def _min_chars(minimum: int, f: Features) -> Result:
    return f.chars >= minimum, f"{f.chars} chars (min {minimum})"


def _max_chars(maximum: int, f: Features) -> Result:
    return f.chars <= maximum, f"{f.chars} chars (max {maximum})"


def _min_tokens(minimum: int, f: Features) -> Result:
    return f.tokens >= minimum, f"~{f.tokens} tokens (min {minimum})"


def _max_tokens(maximum: int, f: Features) -> Result:
    return f.tokens <= maximum, f"~{f.tokens} tokens (max {maximum})"


register(ConditionType("min_chars", Count, Cost.COUNT, _min_chars, no_guard, example=200))
register(ConditionType("max_chars", Count, Cost.COUNT, _max_chars, no_guard, example=4000))
register(ConditionType("min_tokens", Count, Cost.COUNT, _min_tokens, no_guard, example=1000))
register(ConditionType("max_tokens", Count, Cost.COUNT, _max_tokens, no_guard, example=8000))
