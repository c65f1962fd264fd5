"""A deployment's own correction of the shipped difficulty score: an artifact fitted on its outcomes.

The shipped classifier is fixed in advance and knows neither a deployment's models nor its traffic. An adaptation
keeps the shipped score as a prior (its logit enters with `prior_weight`), adds a small linear adjustment on the
features an outcome record keeps, and carries the threshold chosen for the route's quality target. It is pure data
plus a logistic function, so scoring costs microseconds and the artifact fits in a config item.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_router.routing.classifier import Classifier

ADAPTATION_FORMAT = "llm-router-adaptation/1"
DIFFICULTY = "difficulty"
# The shipped score is clipped before its logit, so that a score of exactly 0 or 1 stays finite.
_EPS = 1e-4
_DECIMALS = 4


def logit(p: float) -> float:
    """The log-odds of a probability, clipped away from 0 and 1."""
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def outcome_features(text: str, classifier: Classifier) -> dict[str, float]:
    """What an outcome record keeps in place of the prompt: `difficulty` (the shipped score) plus the classifier's
    linear outputs and dense features, rounded, so a record can be re-scored by any later adaptation without the
    text. The names are those of the installed weights file; an adaptation counts a missing one as 0."""
    features = {name: round(float(value), _DECIMALS) for name, value in classifier.linear_outputs(text).items()}
    features[DIFFICULTY] = round(classifier.difficulty(text), _DECIMALS)
    return features


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"adaptation field {key!r} must be a finite number, got {value!r}")
    return float(value)


def _model(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"adaptation field {key!r} must be a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True)
class Adaptation:
    """Send a request to `strong` when `score(features) >= threshold`, else to `weak`."""

    route: str | None
    weak: str
    strong: str
    version: str
    threshold: float
    intercept: float
    coef: dict[str, float]
    prior_weight: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def score(self, features: Mapping[str, float]) -> float:
        """The adapted difficulty in [0, 1]; features the record lacks count as 0, a missing prior as 0.5."""
        z = self.intercept + self.prior_weight * logit(float(features.get(DIFFICULTY, 0.5)))
        for name, weight in self.coef.items():
            z += weight * float(features.get(name, 0.0))
        return sigmoid(z)

    def routes_strong(self, features: Mapping[str, float]) -> bool:
        return self.score(features) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ADAPTATION_FORMAT,
            "route": self.route,
            "weak": self.weak,
            "strong": self.strong,
            "version": self.version,
            "threshold": self.threshold,
            "intercept": self.intercept,
            "coef": dict(self.coef),
            "prior_weight": self.prior_weight,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Adaptation:
        """The artifact back from `to_dict()` (numbers may arrive as Decimal from DynamoDB: they are converted)."""
        if not isinstance(data, Mapping):
            raise ValueError("an adaptation must be an object")
        if data.get("format") != ADAPTATION_FORMAT:
            raise ValueError(f"unsupported adaptation format {data.get('format')!r} (expected {ADAPTATION_FORMAT})")
        plain = {k: _plain(v) for k, v in data.items()}
        route = plain.get("route")
        if route is not None and not isinstance(route, str):
            raise ValueError(f"adaptation field 'route' must be a string or null, got {route!r}")
        coef_in = plain.get("coef", {})
        if not isinstance(coef_in, Mapping):
            raise ValueError("adaptation field 'coef' must be an object of numbers")
        coef = {str(name): _number(coef_in, name) for name in coef_in}
        metadata = plain.get("metadata", {})
        if not isinstance(metadata, Mapping):
            raise ValueError("adaptation field 'metadata' must be an object")
        threshold = _number(plain, "threshold")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"adaptation threshold must be within [0, 1], got {threshold}")
        return cls(
            route=route,
            weak=_model(plain, "weak"),
            strong=_model(plain, "strong"),
            version=_model(plain, "version"),
            threshold=threshold,
            intercept=_number(plain, "intercept"),
            coef=coef,
            prior_weight=_number(plain, "prior_weight"),
            metadata=dict(metadata),
        )


def _plain(value: Any) -> Any:
    """DynamoDB hands numbers back as Decimal: integers and floats again, recursively."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if type(value).__name__ == "Decimal":
        return int(value) if value == value.to_integral_value() else float(value)
    return value
