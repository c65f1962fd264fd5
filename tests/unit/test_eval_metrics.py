"""Router benchmark metrics (APGR, CPT, AIQ, savings, oracle, random, calibration) on hand-made data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_router.ml import metrics
from llm_router.ml.evaluate import calibrate, evaluate, evaluate_scores, read_records
from llm_router.ml.metrics import Outcome, Point

# Four prompts: two only the strong model gets right, one both get right, one neither.
TINY = [Outcome(0, 1, 1.0, 11.0), Outcome(0, 1, 1.0, 11.0), Outcome(1, 1, 1.0, 11.0), Outcome(0, 0, 1.0, 11.0)]
# A curve through (0%, 0.25), (50%, 0.75), (100%, 0.75) with costs 1, 6, 11 per prompt.
CURVE = [Point(None, 0.0, 0.25, 1.0), Point(None, 0.5, 0.75, 6.0), Point(None, 1.0, 0.75, 11.0)]


def test_apgr_is_the_area_between_weak_and_strong_normalised() -> None:
    # Area under the curve: 0.5 * (0.25 + 0.75) / 2 + 0.5 * 0.75 = 0.625; (0.625 - 0.25) / (0.75 - 0.25) = 0.75.
    assert metrics.apgr(CURVE, 0.25, 0.75) == pytest.approx(0.75)


def test_apgr_is_undefined_when_the_strong_model_is_not_better() -> None:
    assert metrics.apgr(CURVE, 0.75, 0.75) is None


def test_cpt_interpolates_the_share_of_strong_calls() -> None:
    # 50% of the gap is quality 0.5, reached a quarter of the way; 80% is 0.65, reached at 40%.
    assert metrics.cpt(CURVE, 0.25, 0.75, 0.5) == pytest.approx(0.25)
    assert metrics.cpt(CURVE, 0.25, 0.75, 0.8) == pytest.approx(0.40)


def test_aiq_averages_the_convex_hull_over_the_cost_range() -> None:
    assert metrics.aiq(CURVE) == pytest.approx(0.625)
    # A point below the chord from the cheapest to the dearest point does not count.
    dented = [Point(None, 0, 0.2, 0.0), Point(None, 0.5, 0.3, 0.5), Point(None, 1, 0.8, 1.0)]
    assert metrics.aiq(dented) == pytest.approx(0.5)
    # Quality never falls with more money: past the best point the hull stays flat.
    peaked = [Point(None, 0, 0.2, 0.0), Point(None, 0.5, 0.9, 0.5), Point(None, 1, 0.5, 1.0)]
    assert metrics.aiq(peaked) == pytest.approx(0.5 * (0.2 + 0.9) / 2 + 0.5 * 0.9)


def test_savings_at_95_percent_of_strong_quality() -> None:
    # Target 0.95 * 0.75 = 0.7125 is 92.5% of the way from the first point to the second: cost 1 + 0.925 * 5.
    assert metrics.savings_at(CURVE, 0.75, 11.0) == pytest.approx(1 - 5.625 / 11)


def test_oracle_sends_only_prompts_that_gain_and_its_apgr_is_computed_by_hand() -> None:
    oracle = metrics.oracle_curve(TINY)
    # Quality rises by 0.25 per strong call (0.4 calls per 10% step) until both gaining prompts are served.
    assert [round(p.quality, 4) for p in oracle] == [0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75]
    assert metrics.apgr(oracle, 0.25, 0.75) == pytest.approx(0.75)


def test_router_curve_uses_quantile_thresholds_from_all_to_none() -> None:
    curve = metrics.router_curve(TINY, [0.9, 0.8, 0.2, 0.1])
    assert len(curve) == 11
    assert curve[0].strong_share == 0 and curve[0].quality == 0.25
    assert curve[-1].strong_share == 1 and curve[-1].quality == 0.75
    assert [p.strong_share for p in curve] == sorted(p.strong_share for p in curve)


def test_a_perfect_ranking_matches_the_oracle_where_it_has_points() -> None:
    report = evaluate_scores(TINY, [0.9, 0.8, 0.2, 0.1])
    at_half = next(p for p in report.router if p.strong_share == 0.5)
    assert at_half.quality == 0.75 and at_half.cost == pytest.approx(6.0)
    assert report.cpt50 is not None and report.cpt50 <= 0.25 + 1e-9


def test_random_router_recovers_about_half_the_gap() -> None:
    outcomes = [Outcome(i % 3 == 0, i % 3 != 2, 0.0, 1.0) for i in range(600)]
    report = evaluate_scores(outcomes, [float(i) for i in range(600)])
    assert report.random_apgr == pytest.approx(0.5, abs=0.05)


def test_evaluate_reads_the_eval_format_and_summarises_with_the_documented_keys(tmp_path: Path) -> None:
    path = tmp_path / "eval.jsonl"
    lines = []
    for i, (o, score) in enumerate(zip(TINY, [0.9, 0.8, 0.2, 0.1], strict=True)):
        outcomes = {"weak-m": {"score": o.weak, "cost_usd": 1.0}, "strong-m": {"score": o.strong, "cost_usd": 11.0}}
        lines.append(json.dumps({"id": str(i), "prompt": f"p{score}", "outcomes": outcomes}))
    path.write_text("\n".join(lines) + "\n")
    report = evaluate(read_records(path), "weak-m", "strong-m", lambda prompt: float(prompt[1:]))
    summary = report.summary()
    assert list(summary) == ["apgr", "cpt50", "cpt80", "aiq", "savings_at_95", "random_apgr", "oracle_apgr", "n"]
    assert summary["n"] == 4 and summary["oracle_apgr"] == 0.75


def test_evaluate_rejects_a_model_missing_from_the_outcomes(tmp_path: Path) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text(json.dumps({"id": "1", "prompt": "x", "outcomes": {"a": {"score": 1}}}) + "\n")
    with pytest.raises(ValueError, match="no outcome"):
        evaluate(read_records(path), "a", "b", lambda _: 0.5)


def test_calibrate_for_a_strong_share_and_for_a_quality_target() -> None:
    scores = [0.9, 0.8, 0.2, 0.1]
    half = calibrate(TINY, scores, target_strong_share=0.5)
    assert half.threshold == 0.8 and half.strong_share == 0.5
    # 95% of the strong model's 0.75 needs both prompts that only it answers: the two highest scores.
    quality = calibrate(TINY, scores, target_quality=0.95)
    assert quality.threshold == 0.8 and quality.quality == 0.75
    assert quality.cost_vs_strong == pytest.approx(6 / 11)


def test_calibrate_keeps_everything_weak_when_the_weak_model_already_meets_the_target() -> None:
    result = calibrate(TINY, [0.9, 0.8, 0.2, 0.1], target_quality=0.3)
    assert result.strong_share == 0 and result.threshold > 0.9
