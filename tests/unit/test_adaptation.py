"""The adaptation artifact: scoring with the shipped score as prior, routing, and a faithful JSON round trip."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest

from llm_router.routing.adaptation import ADAPTATION_FORMAT, Adaptation, logit, outcome_features, sigmoid
from llm_router.routing.classifier import default_classifier


def _adaptation(**changes: object) -> Adaptation:
    fields: dict[str, object] = {
        "route": "auto",
        "weak": "small",
        "strong": "large",
        "version": "v2",
        "threshold": 0.6,
        "intercept": -0.5,
        "coef": {"log_chars": 0.25, "choices": -1.0},
        "prior_weight": 0.8,
        "metadata": {"samples": 321, "target_quality": 0.95},
    }
    fields.update(changes)
    return Adaptation(**fields)  # type: ignore[arg-type]


def test_identity_adaptation_returns_the_shipped_score() -> None:
    identity = _adaptation(intercept=0.0, coef={}, prior_weight=1.0)
    for difficulty in (0.03, 0.31, 0.5, 0.77, 0.98):
        assert identity.score({"difficulty": difficulty}) == pytest.approx(difficulty, abs=1e-9)


def test_score_is_the_logistic_of_the_linear_adjustment() -> None:
    a = _adaptation()
    features = {"difficulty": 0.7, "log_chars": 4.0, "choices": 1.0, "unused": 9.0}
    expected = 1 / (1 + math.exp(-(-0.5 + 0.8 * math.log(0.7 / 0.3) + 0.25 * 4.0 - 1.0)))
    assert a.score(features) == pytest.approx(expected, rel=1e-12)
    # A feature the record lacks counts as 0.
    assert a.score({"difficulty": 0.7}) == pytest.approx(sigmoid(-0.5 + 0.8 * logit(0.7)), rel=1e-12)


def test_scores_stay_finite_at_the_extremes() -> None:
    a = _adaptation(coef={"log_chars": 50.0})
    assert a.score({"difficulty": 0.0, "log_chars": -100.0}) == pytest.approx(0.0, abs=1e-12)
    assert a.score({"difficulty": 1.0, "log_chars": 100.0}) == pytest.approx(1.0, abs=1e-12)


def test_routes_strong_at_and_above_the_threshold() -> None:
    a = _adaptation(intercept=0.0, coef={}, prior_weight=1.0, threshold=0.6)
    assert a.routes_strong({"difficulty": 0.61})
    assert not a.routes_strong({"difficulty": 0.59})


def test_round_trip_through_json() -> None:
    a = _adaptation()
    data = json.loads(json.dumps(a.to_dict()))
    assert data["format"] == ADAPTATION_FORMAT
    assert Adaptation.from_dict(data) == a


def test_from_dict_accepts_dynamodb_decimals() -> None:
    data = _adaptation().to_dict()
    data["threshold"] = Decimal("0.6")
    data["coef"] = {"log_chars": Decimal("0.25"), "choices": Decimal("-1")}
    data["metadata"] = {"samples": Decimal("321")}
    back = Adaptation.from_dict(data)
    assert back.threshold == 0.6 and back.coef == {"log_chars": 0.25, "choices": -1.0}
    assert back.metadata == {"samples": 321}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "llm-router-adaptation/9"}, "format"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": "high"}, "threshold"),
        ({"weak": ""}, "weak"),
        ({"coef": {"x": "y"}}, "x"),
        ({"coef": [1, 2]}, "coef"),
        ({"prior_weight": float("nan")}, "prior_weight"),
        ({"route": 3}, "route"),
    ],
)
def test_from_dict_refuses_bad_artifacts(change: dict[str, object], message: str) -> None:
    data = {**_adaptation().to_dict(), **change}
    with pytest.raises(ValueError, match=message):
        Adaptation.from_dict(data)


def test_outcome_features_hold_the_shipped_score_and_no_text() -> None:
    clf = default_classifier()
    if clf is None:
        pytest.skip("no classifier weights installed")
    prompt = "Prove that the square root of 2 is irrational."
    features = outcome_features(prompt, clf)
    assert features["difficulty"] == round(clf.difficulty(prompt), 4)
    assert "log_chars" in features and all(isinstance(v, float) for v in features.values())
    assert all(v == round(v, 4) for v in features.values())
    assert not any("irrational" in name for name in features)
