"""Serving adaptations: the snapshot loads the active version of each route (a broken item keeps the last valid one),
and the threshold strategy decides with it and names its version."""

from __future__ import annotations

from typing import Any

import pytest

from llm_router.routing.adaptation import Adaptation
from llm_router.routing.engine import decide
from llm_router.routing.features import Features
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.records import ADAPTATION_PARTITION
from tests.helpers import chat

MODELS = [
    {"pk": "model", "sk": "small", "provider": "simulated", "model_id": "small"},
    {"pk": "model", "sk": "large", "provider": "simulated", "model_id": "large"},
]
ROUTE: dict[str, Any] = {
    "pk": "route",
    "sk": "auto",
    "default": ["small", "large"],
    "strategy": {"strategy": "threshold", "weak": "small", "strong": "large", "threshold": 0.5},
}


class Scores:
    """A stand-in classifier: a fixed shipped difficulty and fixed linear outputs (what outcome features hold)."""

    def __init__(self, difficulty: float, **outputs: float) -> None:
        self._difficulty = difficulty
        self._outputs = outputs

    def difficulty(self, text: str) -> float:
        return self._difficulty

    def domain_scores(self, text: str) -> dict[str, float]:
        return {}

    def linear_outputs(self, text: str) -> dict[str, float]:
        return dict(self._outputs)


def artifact(name: str = "v1", *, route: str | None = "auto", **fields: Any) -> dict[str, Any]:
    """An adaptation that sends prompts with digits to the strong model, whatever the shipped difficulty says."""
    adaptation = Adaptation(
        route=route,
        weak="small",
        strong="large",
        version=name,
        threshold=0.6,
        intercept=-2.0,
        coef={"log_digits": 2.0},
        prior_weight=0.0,
        metadata={"samples": 400},
    )
    return {**adaptation.to_dict(), **fields}


def version_item(name: str = "v1", **fields: Any) -> dict[str, Any]:
    return {"pk": ADAPTATION_PARTITION, "sk": f"auto#{name}", **artifact(name, **fields)}


def pointer(version: str) -> dict[str, Any]:
    return {"pk": ADAPTATION_PARTITION, "sk": "auto", "active": version}


def load(adaptations: list[dict[str, Any]], previous: ConfigSnapshot | None = None) -> ConfigSnapshot:
    return ConfigSnapshot.from_items(
        {"model": MODELS, "route": [ROUTE], "rule": [], ADAPTATION_PARTITION: adaptations}, previous
    )


def test_the_snapshot_serves_the_version_the_pointer_names() -> None:
    config = load([version_item("v1"), version_item("v2"), pointer("v1")])
    assert config.adaptations["auto"].version == "v1"
    assert config.invalid == ()


def test_versions_without_a_pointer_are_stored_but_not_served() -> None:
    assert load([version_item("v1")]).adaptations == {}


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ({"format": "llm-router-adaptation/9"}, "format"),
        ({"threshold": 3}, "threshold"),
        ({"version": "v7"}, "its key"),
    ],
)
def test_an_invalid_version_item_keeps_the_last_valid_version(broken: dict[str, Any], why: str) -> None:
    good = load([version_item("v1"), pointer("v1")])

    edited = load([version_item("v1", **broken), pointer("v1")], previous=good)

    assert edited.adaptations["auto"] == good.adaptations["auto"]
    assert [(bad.kind, bad.id) for bad in edited.invalid] == [(ADAPTATION_PARTITION, "auto#v1")]
    assert why in edited.invalid[0].reason


def test_a_pointer_to_a_missing_version_keeps_the_last_valid_one() -> None:
    good = load([version_item("v1"), pointer("v1")])

    edited = load([version_item("v1"), pointer("v9")], previous=good)

    assert edited.adaptations["auto"].version == "v1"
    assert [(bad.id, bad.reason) for bad in edited.invalid] == [("auto", "active version 'v9' does not exist")]


def test_an_invalid_item_without_a_valid_past_serves_the_shipped_model() -> None:
    config = load([version_item("v1", coef={"log_digits": "lots"}), pointer("v1")])
    assert config.adaptations == {}
    assert len(config.invalid) == 1

    decision = decide("auto", Features(chat("what is 12345 * 678?"), "t1", classifier=Scores(0.2)), config)
    assert decision.adaptation is None and decision.candidates[0] == "small"


def test_the_threshold_strategy_decides_with_the_active_adaptation_and_names_it() -> None:
    # The shipped difficulty calls the prompt easy; the adaptation has learned that prompts with digits are not.
    classifier = Scores(0.2, log_digits=2.0)
    shipped = decide("auto", Features(chat("what is 12345 * 678?"), "t1", classifier=classifier), load([]))
    adapted = decide(
        "auto",
        Features(chat("what is 12345 * 678?"), "t1", classifier=classifier),
        load([version_item("v1"), version_item("v2"), pointer("v2")]),
    )

    assert shipped.candidates == ("small", "large") and shipped.adaptation is None
    assert "adaptation" not in shipped.as_dict()
    assert adapted.rule == "threshold" and adapted.candidates == ("large", "small")
    assert adapted.adaptation == "v2" and adapted.as_dict()["adaptation"] == "v2"
    assert adapted.public()["adaptation"] == "v2"
    step = adapted.trace[-1]
    # sigmoid(-2 + 2 x 2) = 0.881
    assert step.why == "adapted difficulty=0.881 >= threshold 0.6 (adaptation v2)"


def test_an_adaptation_for_other_models_is_not_used() -> None:
    other = {**ROUTE, "strategy": {**ROUTE["strategy"], "weak": "large", "strong": "small"}}
    config = ConfigSnapshot.from_items(
        {"model": MODELS, "route": [other], ADAPTATION_PARTITION: [version_item("v1"), pointer("v1")]}
    )
    decision = decide("auto", Features(chat("12345"), "t1", classifier=Scores(0.2, log_digits=2.0)), config)

    assert decision.adaptation is None and decision.candidates[0] == "large"  # the shipped score: 0.2 < 0.5
    assert "adaptation v1 is for small/large: not used" in decision.trace[-1].why


def test_outcome_features_are_computed_once_per_request() -> None:
    calls: list[str] = []

    class Counting(Scores):
        def linear_outputs(self, text: str) -> dict[str, float]:
            calls.append(text)
            return super().linear_outputs(text)

    f = Features(chat("12345"), "t1", classifier=Counting(0.2, log_digits=2.0))
    config = load([version_item("v1"), pointer("v1")])
    decide("auto", f, config)
    decide("auto", f, config)
    assert calls == ["12345"]
