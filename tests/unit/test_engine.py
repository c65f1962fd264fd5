"""The routing decision: priority order, first match wins, defaults, pinned models, splits, filtering."""

from __future__ import annotations

from collections import Counter

import pytest

from llm_router.errors import InvalidRequestError, NotFoundError
from llm_router.routing.engine import decide, plan, split_arm
from llm_router.routing.features import Features
from llm_router.schemas.catalog import RouteSpec
from llm_router.schemas.rules import SplitArm
from tests.helpers import chat, features, model, rule, snapshot

TO_LARGE = {"targets": ["large"]}


def test_lowest_priority_number_wins() -> None:
    config = snapshot(
        rules=[
            rule("late", {"keywords": ["python"]}, {"targets": ["small"]}, priority=20),
            rule("early", {"keywords": ["python"]}, TO_LARGE, priority=10),
        ]
    )
    decision = decide("auto", features("python?"), config)
    assert decision.rule == "early" and decision.candidates == ("large",)
    assert [s.rule for s in decision.trace] == ["early"]


def test_disabled_rules_are_skipped_and_traced() -> None:
    config = snapshot(rules=[rule("off", {}, TO_LARGE, enabled=False)])
    decision = decide("auto", features(), config, explain=True)
    assert decision.rule == "default" and decision.candidates == ("small", "large")
    assert decision.trace[0].why == "disabled"
    # Serving never looks at a disabled rule: the index leaves it out.
    served = decide("auto", features(), config)
    assert served.rule == "default" and [step.rule for step in served.trace] == ["default"]


def test_rules_for_another_route_do_not_apply() -> None:
    routes = [RouteSpec(id="auto", default=("small",)), RouteSpec(id="batch", default=("small",))]
    config = snapshot(rules=[rule("batch-only", {}, TO_LARGE, route="batch")], routes=routes)
    assert decide("auto", features(), config).rule == "default"
    assert decide("batch", features(), config).rule == "batch-only"


def test_pinned_model_uses_its_fallbacks_and_no_rules() -> None:
    config = snapshot(models=[model("small", fallbacks=["large"]), model("large")], rules=[rule("all", {}, TO_LARGE)])
    decision = decide("small", features(), config)
    assert decision.rule == "pinned" and decision.candidates == ("small", "large")


def test_unknown_model_is_a_404() -> None:
    with pytest.raises(NotFoundError):
        decide("nope", features(), snapshot())


def test_split_is_sticky_and_follows_weights() -> None:
    arms = (SplitArm(targets=("a",), weight=3), SplitArm(targets=("b",), weight=1))
    assert split_arm(arms, "r", "t", "u1") == split_arm(arms, "r", "t", "u1")
    counts = Counter(split_arm(arms, "r", "t", f"user-{i}") for i in range(4000))
    assert 0.70 < counts[0] / 4000 < 0.80


def test_plan_skips_models_lacking_a_needed_capability() -> None:
    request_features = features("x", tools=[{"type": "function", "function": {"name": "f"}}])
    config = snapshot()
    chain = plan(decide("auto", request_features, config), request_features, config)
    assert [m.id for m in chain.models] == ["large"]
    assert chain.skipped == [("small", "lacks capability tools")]


def test_plan_skips_windows_too_small_and_regions_outside_the_rule() -> None:
    config = snapshot(
        models=[model("tiny", context_window=10), model("us", region="us-east-1"), model("eu", region="eu-west-1")],
        rules=[rule("eu-only", {}, {"targets": ["tiny", "us", "eu"]}, regions=["eu-*"])],
        routes=[RouteSpec(id="auto", default=("us",))],
    )
    f = features("word " * 100)
    chain = plan(decide("auto", f, config), f, config)
    assert [m.id for m in chain.models] == ["eu"]
    assert [m for m, _ in chain.skipped] == ["tiny", "us"]


def test_plan_with_no_capable_model_is_a_400_that_says_why() -> None:
    f = features("x", response_format={"type": "json_object"})
    config = snapshot(models=[model("small"), model("large")])
    with pytest.raises(InvalidRequestError, match="lacks capability json"):
        plan(decide("auto", f, config), f, config)


def test_threshold_strategy_without_a_classifier_falls_to_the_default() -> None:
    routes = [
        RouteSpec.model_validate(
            {"id": "auto", "default": ["small"], "strategy": {"weak": "small", "strong": "large", "threshold": 0.5}}
        )
    ]
    no_scores = type("NoScores", (), {"difficulty": lambda self, text: 0.9, "domain_scores": lambda self, text: {}})
    f = Features(chat(), "t1", classifier=no_scores())
    decision = decide("auto", f, snapshot(routes=routes))
    assert decision.rule == "threshold" and decision.candidates == ("large", "small")
