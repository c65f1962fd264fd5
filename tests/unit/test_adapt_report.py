"""The adaptation report's measurement of one draw and its verdict on the targets, on synthetic traffic."""

from __future__ import annotations

import random

from llm_router.ml.adapt import Sample
from llm_router.ml.adapt_report import Source, run_draw, targets
from llm_router.routing.adaptation import sigmoid


def _source(n: int) -> Source:
    """Traffic where the shipped score is uninformative and `log_digits` says which prompts need the strong model."""
    rng = random.Random(5)
    samples = []
    for _ in range(n):
        digits = rng.gauss(0, 1)
        need = sigmoid(2.0 * digits)
        weak = float(rng.random() > need)
        strong = float(weak == 1.0 or rng.random() < 0.85)
        difficulty = round(rng.uniform(0.2, 0.8), 4)
        samples.append(Sample({"difficulty": difficulty, "log_digits": digits}, {"w": weak, "s": strong}, {}))
    return Source("synthetic", "w", "s", samples)


def test_a_draw_adapts_on_one_half_and_measures_on_the_other() -> None:
    source = _source(800)
    draw = run_draw(source, 200, seed=1)
    assert draw is not None and draw["n"] == 200
    assert draw["apgr_adapted"] > draw["apgr_shipped"] + 0.1  # the adjustment found what the prior misses
    assert draw["adapted"]["quality_ratio"] >= 0.93
    assert draw["adapted"]["strong_share"] < draw["adapted"]["random_share"]
    assert run_draw(source, 500, seed=1) is None  # more outcomes than half the source holds


def test_targets_read_the_largest_size_up_to_400() -> None:
    def point(n: int, ratio: float, excess: float, apgr: float) -> dict[str, object]:
        arm = {"quality_ratio": ratio, "quality_ratio_min": ratio - 0.02, "excess_share": excess}
        return {"n": n, "apgr_adapted": apgr, "apgr_shipped": 0.6, "adapted": arm}

    curves = {
        "a": [point(100, 0.90, 0.10, 0.5), point(400, 0.96, -0.08, 0.61), point(800, 0.90, 0.3, 0.5)],
        "b": [point(250, 0.94, 0.01, 0.595)],
    }
    verdict = targets(curves)
    assert [p["n"] for p in verdict["per_source"].values()] == [400, 250]
    assert verdict["quality_ratio_ge_0.93_every_source"] is True
    assert verdict["quality_ratio_ge_0.93_every_draw"] is False
    assert verdict["mean_excess_share"] == round((-0.08 + 0.01) / 2, 4)
    assert verdict["mean_excess_share_le_-0.05"] is False
    assert verdict["max_excess_share_le_0.02"] is True
    assert verdict["apgr_not_worse_every_source"] is True
