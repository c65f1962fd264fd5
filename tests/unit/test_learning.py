"""The pure parts of learning from traffic: the `learn` schema, shadow sampling, the judge's reply, the statistics."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from llm_router.ml.stats import compare, mean_interval, t_quantile, t_two_sided_p, two_proportions, welch
from llm_router.outcomes import shadow_candidate, shadow_sampled
from llm_router.schemas.catalog import RouteSpec
from llm_router.shadow import JudgeUnreadable, parse_scores, routed_first
from llm_router.stores.config_admin import validate_document

STRATEGY = {"strategy": "threshold", "weak": "small", "strong": "large", "threshold": 0.5}
SHADOW = {"rate": 0.05, "judge": "large", "daily_budget_usd": 5.0}


def route(**fields: Any) -> RouteSpec:
    return RouteSpec.model_validate({"id": "auto", "default": ["small", "large"], "strategy": STRATEGY, **fields})


# -- the learn schema ------------------------------------------------------------------------------------------
def test_the_contracts_example_validates_with_its_defaults() -> None:
    spec = route(learn={"collect": True, "target_quality": 0.95, "min_samples": 200, "shadow": SHADOW})
    assert spec.learn is not None and spec.learn.shadow is not None
    assert (spec.learn.collect, spec.learn.keep_prompts, spec.learn.shadow.candidate) == (True, False, None)
    assert route(learn={"collect": True}).learn.target_quality == 0.95  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("learn", "says"),
    [
        ({"shadow": SHADOW}, "shadow needs collect: true"),
        ({"keep_prompts": True}, "keep_prompts needs collect: true"),
        ({"collect": True, "shadow": {**SHADOW, "rate": 0}}, "rate"),
        ({"collect": True, "shadow": {**SHADOW, "rate": 1.5}}, "rate"),
        ({"collect": True, "shadow": {**SHADOW, "daily_budget_usd": 0}}, "daily_budget_usd"),
        ({"collect": True, "shadow": {"rate": 0.1, "daily_budget_usd": 1}}, "judge"),
        ({"collect": True, "target_quality": 1.2}, "target_quality"),
        ({"collect": True, "min_samples": 0}, "min_samples"),
        ({"collect": "yes please"}, "collect"),
        ({"collect": True, "colect": True}, "colect"),
    ],
)
def test_a_bad_learn_section_is_refused_naming_the_field(learn: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        route(learn=learn)


def test_shadow_without_a_candidate_needs_the_threshold_strategy() -> None:
    with pytest.raises(ValidationError, match="needs a candidate"):
        RouteSpec.model_validate({"id": "r", "default": ["small"], "learn": {"collect": True, "shadow": SHADOW}})
    spec = RouteSpec.model_validate(
        {"id": "r", "default": ["small"], "learn": {"collect": True, "shadow": {**SHADOW, "candidate": "large"}}}
    )
    assert spec.learn is not None and spec.learn.models() == {"large"}


def test_the_config_file_checks_the_judge_and_the_candidate_exist() -> None:
    doc = {
        "models": [{"id": m, "provider": "simulated", "model_id": m} for m in ("small", "large")],
        "routes": [
            {
                "id": "auto",
                "default": ["small", "large"],
                "strategy": STRATEGY,
                "learn": {"collect": True, "shadow": {**SHADOW, "judge": "oracle", "candidate": "medium"}},
            }
        ],
    }
    errors = validate_document(doc).errors
    assert "route auto: unknown model 'medium'" in errors and "route auto: unknown model 'oracle'" in errors


# -- sampling --------------------------------------------------------------------------------------------------
def test_the_shadow_sample_is_stable_per_request_and_near_the_rate() -> None:
    ids = [f"{n:032x}" for n in range(4000)]
    sampled = [i for i in ids if shadow_sampled(i, 0.1)]
    assert 0.085 < len(sampled) / len(ids) < 0.115
    assert sampled == [i for i in ids if shadow_sampled(i, 0.1)]
    # A larger rate keeps every request a smaller one sampled
    assert set(sampled) <= {i for i in ids if shadow_sampled(i, 0.3)}
    assert all(shadow_sampled(i, 1.0) for i in ids[:50])


def test_the_judge_order_is_balanced() -> None:
    first = sum(routed_first(f"{n:032x}") for n in range(2000))
    assert 900 < first < 1100


def test_the_shadow_candidate_is_the_strategys_other_model_or_the_named_one() -> None:
    spec = route(learn={"collect": True, "shadow": SHADOW})
    assert shadow_candidate(spec, "large") == "small"
    assert shadow_candidate(spec, "small") == "large"
    assert shadow_candidate(spec, "medium") == "large"
    named = route(learn={"collect": True, "shadow": {**SHADOW, "candidate": "medium"}})
    assert shadow_candidate(named, "small") == "medium"
    assert shadow_candidate(named, "medium") is None
    assert shadow_candidate(route(), "small") is None


# -- the judge's reply -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "scores"),
    [
        ('{"answer_1": 10, "answer_2": 1}', (1.0, 0.0)),
        ('Here you go:\n```json\n{"answer_1": 7, "answer_2": 4}\n```', (6 / 9, 3 / 9)),
        ('{"Answer 1": "8", "Answer 2": "5.5"}', (7 / 9, 4.5 / 9)),
        ('{"a": 0.9, "b": 0.25}', (0.9, 0.25)),
        ("Answer 1: 9/10. Answer 2: 6/10.", (8 / 9, 5 / 9)),
        ("Answer A scores 3, answer B scores 10", (2 / 9, 1.0)),
        ("First: 0.8\nSecond: 0.35", (0.8, 0.35)),
        ("answer_1 = 1, answer_2 = 1", (0.0, 0.0)),
    ],
)
def test_a_judges_scores_are_read_on_either_scale(reply: str, scores: tuple[float, float]) -> None:
    assert parse_scores(reply) == pytest.approx(scores)


@pytest.mark.parametrize(
    "reply",
    ["", "Both are good.", '{"answer_1": 11, "answer_2": 3}', '{"answer_1": 0, "answer_2": 5}', "Answer 1: 7", "{}"],
)
def test_a_reply_without_a_readable_pair_of_scores_is_refused(reply: str) -> None:
    with pytest.raises(JudgeUnreadable):
        parse_scores(reply)


# -- statistics (reference values: Welch's example on Wikipedia, textbook z and Wilson intervals) --------------
def test_student_t_quantiles_and_tails() -> None:
    assert t_quantile(0.975, 10) == pytest.approx(2.228139, abs=1e-5)
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-3)
    assert t_quantile(0.975, 1000) == pytest.approx(1.962339, abs=1e-5)
    assert t_two_sided_p(2.0, 5) == pytest.approx(0.101939, abs=1e-5)


def test_welch_t_on_a_published_example() -> None:
    a = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    b = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    result = welch(a, b)
    assert result.statistic == pytest.approx(-2.46, abs=0.005)
    assert result.p_value == pytest.approx(0.021, abs=0.001)
    assert result.significant and result.test == "welch_t"


def test_two_proportions_and_wilson_intervals() -> None:
    result = two_proportions([1.0] * 45 + [0.0] * 55, [1.0] * 30 + [0.0] * 70)
    assert result.statistic == pytest.approx(2.1909, abs=1e-4)
    assert result.p_value == pytest.approx(0.02846, abs=1e-4)
    estimate = mean_interval([1.0] * 45 + [0.0] * 55)
    assert (estimate.low, estimate.high) == (pytest.approx(0.3561, abs=1e-4), pytest.approx(0.5476, abs=1e-4))
    assert compare([1.0, 0.0], [0.0, 0.0]).test == "two_proportion_z"
    assert compare([0.5, 1.0], [0.0, 0.0]).test == "welch_t"


def test_a_t_interval_and_too_few_values() -> None:
    estimate = mean_interval([0.2, 0.4, 0.6])
    assert estimate.mean == pytest.approx(0.4)
    half = 4.302653 * 0.2 / math.sqrt(3)
    assert (estimate.low, estimate.high) == (pytest.approx(0.4 - half, abs=1e-5), pytest.approx(0.4 + half, abs=1e-5))
    assert mean_interval([]).mean is None
    assert mean_interval([0.3]).low is None
    assert welch([0.5], [0.1, 0.2]).p_value is None
