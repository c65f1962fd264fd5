"""Routing at its edges: what each trace step says, thresholds met exactly, regions, candidate filtering, `not`,
classifier conditions with and without a classifier, and token limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from llm_router.routing import classifier
from llm_router.routing.conditions import Condition, evaluate
from llm_router.routing.engine import decide, plan
from llm_router.routing.features import Features
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import RouteSpec, ThresholdStrategy
from llm_router.schemas.rules import Rule
from tests.helpers import chat, features, model, rule, snapshot


class Classifier:
    def __init__(self, difficulty: float, domains: dict[str, float] | None = None) -> None:
        self._difficulty = difficulty
        self._domains = domains or {}

    def difficulty(self, _: str) -> float:
        return self._difficulty

    def domain_scores(self, _: str) -> dict[str, float]:
        return self._domains


@pytest.fixture
def no_classifier(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No classifier weights installed (a layer built without them)."""
    monkeypatch.setattr(classifier, "DEFAULT_WEIGHTS", tmp_path / "missing.json")
    classifier.default_classifier.cache_clear()  # read once per process: forget the shipped one
    yield
    classifier.default_classifier.cache_clear()


def scored(difficulty: float, domains: dict[str, float] | None = None, content: str = "Hello!") -> Features:
    return Features(chat(content), "t1", classifier=Classifier(difficulty, domains))


THRESHOLD = RouteSpec(
    id="auto",
    default=("small", "mid", "large"),
    baseline="large",
    strategy=ThresholdStrategy(weak="small", strong="large", threshold=0.5),
)
THREE = [model("small"), model("mid"), model("large")]


def test_a_score_exactly_at_the_threshold_goes_to_the_strong_model() -> None:
    config = snapshot(models=THREE, routes=[THRESHOLD])
    at = decide("auto", scored(0.5), config)
    below = decide("auto", scored(0.4999), config)

    assert at.rule == "threshold" and at.candidates == ("large", "small", "mid")
    assert below.candidates == ("small", "mid", "large")
    assert at.trace[-1].matched is True and ">=" in at.trace[-1].why and "<" in below.trace[-1].why


@pytest.mark.usefixtures("no_classifier")
def test_every_trace_step_says_whether_it_matched() -> None:
    config = snapshot(
        models=THREE,
        routes=[RouteSpec(id="auto", default=("small",), strategy=THRESHOLD.strategy)],
        rules=[
            rule("off", {}, {"targets": ["large"]}, enabled=False, priority=1),
            rule("no", {"keywords": ["x"]}, {"targets": ["mid"]}, priority=2),
        ],
    )
    decision = decide("auto", Features(chat(), "t1"), config, explain=True)

    assert [(s.rule, s.matched) for s in decision.trace] == [
        ("off", False),
        ("no", False),
        ("threshold", False),
        ("default", True),
    ]
    pinned = decide("mid", features(), config)
    assert [(s.rule, s.matched) for s in pinned.trace] == [("pinned", True)]
    assert pinned.as_dict()["trace"] == [{"rule": "pinned", "matched": True, "why": pinned.trace[0].why}]


def test_decision_as_dict_carries_reject_regions_and_arm() -> None:
    config = snapshot(
        rules=[
            rule("eu", {"keywords": ["eu"]}, {"targets": ["small"]}, regions=["eu-*"], priority=1),
            rule("no", {"keywords": ["no"]}, {"reject": {"status": 403, "message": "not here"}}, priority=2),
            rule("ab", {"keywords": ["ab"]}, {"split": [{"targets": ["small"], "weight": 1}]}, priority=3),
        ]
    )
    eu = decide("auto", features("eu please"), config).as_dict()
    no = decide("auto", features("no please"), config)
    ab = decide("auto", features("ab please"), config)

    assert eu["regions"] == ["eu-*"] and "reject" not in eu and "split_arm" not in eu
    assert no.reject is not None and no.as_dict()["reject"] == {"status": 403, "message": "not here"}
    assert no.candidates == () and "regions" not in no.as_dict()
    assert ab.arm == 0 and ab.candidates == ("small",) and ab.as_dict()["split_arm"] == 0
    assert eu["route"] == "auto" and eu["rule"] == "eu" and eu["candidates"] == ["small"]


def test_any_region_pattern_admits_a_model() -> None:
    models = [model("us", region="us-east-1"), model("eu", region="eu-west-1")]
    config = snapshot(models=models, rules=[rule("r", {}, {"targets": ["us", "eu"]}, regions=["eu-*", "us-*"])])
    chain = plan(decide("auto", features(), config), features(), config)

    assert [m.id for m in chain.models] == ["us", "eu"]


def test_a_model_without_a_region_is_outside_every_pattern() -> None:
    models = [model("nowhere"), model("eu", region="eu-west-1")]
    config = snapshot(models=models, rules=[rule("r", {}, {"targets": ["nowhere", "eu"]}, regions=["*"])])
    chain = plan(decide("auto", features(), config), features(), config)
    assert [m.id for m in chain.models] == ["eu"]


def test_plan_keeps_going_after_a_duplicate_or_an_unknown_candidate() -> None:
    config = snapshot(rules=[rule("r", {}, {"targets": ["small", "ghost", "small", "large"]})])
    chain = plan(decide("auto", features(), config), features(), config)

    assert [m.id for m in chain.models] == ["small", "large"]
    assert chain.skipped == [("ghost", "not in the model catalog")]


def test_a_prompt_exactly_the_size_of_the_context_window_fits() -> None:
    f = features("word " * 40)
    models = [model("exact", context_window=f.tokens), model("short", context_window=f.tokens - 1)]
    config = snapshot(models=models, routes=[RouteSpec(id="auto", default=("short", "exact"))])
    chain = plan(decide("auto", f, config), f, config)
    assert [m.id for m in chain.models] == ["exact"]


def test_rules_for_a_route_the_snapshot_does_not_index() -> None:
    everywhere = rule("all", {}, {"targets": ["small"]})
    elsewhere = rule("other", {}, {"targets": ["small"]}, route="other")
    config = ConfigSnapshot.build([model("small")], [], [everywhere, elsewhere])
    assert config.rules_for("unindexed") == (everywhere,)
    assert config.rules_for("other") == (everywhere, elsewhere)


def test_from_items_builds_a_snapshot_and_reports_bad_items() -> None:
    items: dict[str, list[dict[str, Any]]] = {
        "model": [{"sk": "m", "id": "m", "provider": "simulated", "model_id": "m"}, {"sk": "bad", "provider": "x"}],
        "route": [{"sk": "auto", "id": "auto", "default": ["m"]}],
        "rule": [],
    }
    config = ConfigSnapshot.from_items(items)
    assert list(config.models) == ["m"] and list(config.routes) == ["auto"]
    assert [(i.kind, i.id) for i in config.invalid] == [("model", "bad")]


# -- conditions ----------------------------------------------------------------------------------------------
def holds(when: dict[str, Any], f: Features) -> bool:
    return evaluate(Condition.model_validate(when), f)[0]


def test_not_is_false_when_its_condition_holds() -> None:
    assert holds({"not": {"keywords": ["python"]}}, features("plain text"))
    assert not holds({"not": {"keywords": ["python"]}}, features("python please"))


def test_classifier_conditions_with_a_classifier() -> None:
    medical = scored(0.9, {"medical": 0.7, "code": 0.1})
    assert holds({"domain": {"in": ["medical"], "min": 0.7}}, medical)
    assert not holds({"domain": {"in": ["medical"], "min": 0.71}}, medical)
    assert not holds({"domain": {"in": ["code"], "min": 0.5}}, medical)
    assert holds({"difficulty": {"min": 0.9}}, medical)
    assert not holds({"difficulty": {"min": 0.91}}, medical)


@pytest.mark.usefixtures("no_classifier")
def test_classifier_conditions_never_match_without_a_classifier() -> None:
    f = Features(chat("anything"), "t1")
    assert not holds({"domain": {"in": ["medical"], "min": 0.0}}, f)
    assert not holds({"difficulty": {"min": 0.0}}, f)


def test_token_limits_hold_at_their_bounds() -> None:
    f = features("word " * 40)
    assert holds({"max_tokens": f.tokens}, f) and not holds({"max_tokens": f.tokens - 1}, f)
    assert holds({"min_tokens": f.tokens}, f) and not holds({"min_tokens": f.tokens + 1}, f)
    assert holds({"max_chars": f.chars}, f) and not holds({"max_chars": f.chars - 1}, f)
    assert holds({"min_chars": f.chars}, f) and not holds({"min_chars": f.chars + 1}, f)


def test_a_condition_given_as_a_condition_is_kept() -> None:
    condition = Condition.model_validate({"keywords": ["refund"]})
    assert Condition.model_validate(condition) == condition
    assert Rule.model_validate({"id": "r", "when": condition, "then": {"targets": ["m"]}}).when == condition


def test_every_unknown_condition_key_is_named() -> None:
    with pytest.raises(ValidationError) as info:
        Condition.model_validate({"keywrds": ["a"], "tenat": "b"})
    assert "keywrds" in str(info.value) and "tenat" in str(info.value)
