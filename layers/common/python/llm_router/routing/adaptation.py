"""The features an outcome record keeps in place of the prompt (the shared contract; the full module adds the
adaptation artifact)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_router.routing.classifier import Classifier

ADAPTATION_FORMAT = "llm-router-adaptation/1"
_DECIMALS = 4


def outcome_features(text: str, classifier: Classifier) -> dict[str, float]:
    """`difficulty` (the shipped score) plus the classifier's linear outputs and dense features, rounded; never
    raw text."""
    features = {name: round(float(value), _DECIMALS) for name, value in classifier.linear_outputs(text).items()}
    features["difficulty"] = round(classifier.difficulty(text), _DECIMALS)
    return features
