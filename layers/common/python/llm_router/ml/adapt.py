"""Fitting a route's adaptation from its outcomes (the shared contract's sample type)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One outcome as adaptation reads it."""

    features: dict[str, float]  # outcome_features(...) of the prompt
    scores: dict[str, float]  # model id -> quality 0..1 (only the models that were graded)
    costs: dict[str, float]  # model id -> USD
