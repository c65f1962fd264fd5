"""Conditions on classifier scores of the last user message: `domain`, `classifier` (one label), `difficulty`.

Scoring is the most expensive check, so these run last; a score can be anything, so they offer no index guard.
Without an installed classifier they never hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from llm_router.routing.conditions.registry import ConditionType, Cost, Result, no_guard, register

if TYPE_CHECKING:
    from llm_router.routing.features import Features  # annotations only: conditions load no request model


class DomainCondition(BaseModel):
    """The domain classifier gives one of `in` a probability of at least `min`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    in_: tuple[str, ...] = Field(alias="in", min_length=1)
    min: float = Field(0.5, ge=0, le=1)


class ClassifierCondition(BaseModel):
    """Single-label form of the domain condition: `{"label": "code", "min": 0.7}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    min: float = Field(0.5, ge=0, le=1)


class RangeCondition(BaseModel):
    """A score between `min` and `max`, both included; either may be left out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: float | None = Field(None, ge=0, le=1)
    max: float | None = Field(None, ge=0, le=1)


def _domain_check(labels: tuple[str, ...], minimum: float, f: Features) -> Result:
    scores = f.domain_scores
    if not scores:
        return False, "no domain classifier installed"
    best = max(labels, key=lambda label: scores.get(label, 0.0))
    score = scores.get(best, 0.0)
    return score >= minimum, f"domain {best}={score:.2f} (min {minimum})"


def _domain(domain: DomainCondition, f: Features) -> Result:
    return _domain_check(domain.in_, domain.min, f)


def _classifier(classifier: ClassifierCondition, f: Features) -> Result:
    return _domain_check((classifier.label,), classifier.min, f)


def _difficulty(difficulty: RangeCondition, f: Features) -> Result:
    score = f.difficulty
    if score is None:
        return False, "no difficulty classifier installed"
    low, high = difficulty.min, difficulty.max
    ok = (low is None or score >= low) and (high is None or score <= high)
    return ok, f"difficulty={score:.2f} (min {low}, max {high})"


register(
    ConditionType("domain", DomainCondition, Cost.CLASSIFY, _domain, no_guard, example={"in": ["code"], "min": 0.6})
)
register(
    ConditionType(
        "classifier", ClassifierCondition, Cost.CLASSIFY, _classifier, no_guard, example={"label": "math", "min": 0.7}
    )
)
register(ConditionType("difficulty", RangeCondition, Cost.CLASSIFY, _difficulty, no_guard, example={"min": 0.8}))
