"""`fit` on synthetic outcomes whose truth is known: it recovers a shift, refuses thin data, guards promotion, and
its threshold keeps the quality target on fresh samples."""

from __future__ import annotations

import random

import pytest

from llm_router.ml.adapt import Sample, fit
from llm_router.routing.adaptation import Adaptation, logit, sigmoid

WEAK, STRONG = "small", "large"


def _samples(n: int, seed: int, *, shift: float = 2.0, prior_signal: float = 1.0) -> list[Sample]:
    """Prompts where the strong model's gain depends on the shipped score (with weight `prior_signal`) and on a
    feature the shipped model ignores (`log_digits`, weight `shift`); `log_lines` is noise."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        difficulty = rng.uniform(0.05, 0.95)
        digits, noise = rng.gauss(0, 1), rng.gauss(0, 1)
        need = sigmoid(prior_signal * logit(difficulty) + shift * digits - 0.3)
        weak_right = rng.random() > need
        strong_right = weak_right or rng.random() < 0.8
        features = {"difficulty": round(difficulty, 4), "log_digits": round(digits, 4), "log_lines": round(noise, 4)}
        out.append(
            Sample(
                features,
                {WEAK: float(weak_right), STRONG: float(strong_right)},
                {WEAK: 0.0001, STRONG: 0.002},
            )
        )
    return out


def _quality_ratio(adaptation: Adaptation, samples: list[Sample]) -> tuple[float, float]:
    chosen = [adaptation.routes_strong(s.features) for s in samples]
    quality = sum(s.scores[STRONG] if c else s.scores[WEAK] for s, c in zip(samples, chosen, strict=True))
    return quality / sum(s.scores[STRONG] for s in samples), sum(chosen) / len(samples)


def test_recovers_a_feature_the_shipped_model_ignores() -> None:
    result = fit(_samples(800, 1), weak=WEAK, strong=STRONG, target_quality=0.95)
    assert result.promoted, result.reason
    a = result.adaptation
    assert a is not None and a.version == "offline" and a.route is None
    assert a.coef["log_digits"] > 0.3
    assert abs(a.coef.get("log_lines", 0.0)) < 0.25 * a.coef["log_digits"]
    assert result.report["new"]["apgr"] > result.report["current"]["apgr"] + 0.05


def test_refuses_below_the_minimum_sample_count() -> None:
    samples = _samples(150, 2)
    # Samples lacking a score for either model do not count.
    samples += [Sample({"difficulty": 0.5}, {WEAK: 1.0}, {}) for _ in range(100)]
    result = fit(samples, weak=WEAK, strong=STRONG, target_quality=0.95, min_samples=200)
    assert result.adaptation is None and not result.promoted
    assert result.report == {"samples": 150, "ignored": 100}
    assert "150" in result.reason


def test_does_not_promote_a_version_worse_than_the_current_one() -> None:
    # The truth lives in a feature the adjustment cannot see; the current version knows it.
    rng = random.Random(3)
    samples = []
    for _ in range(400):
        secret = rng.gauss(0, 1)
        need = sigmoid(2.5 * secret)
        weak_right = rng.random() > need
        strong_right = weak_right or rng.random() < 0.9
        samples.append(
            Sample(
                {"difficulty": round(rng.uniform(0.1, 0.9), 4), "secret": secret},
                {WEAK: float(weak_right), STRONG: float(strong_right)},
                {},
            )
        )
    current = Adaptation(None, WEAK, STRONG, "v1", 0.5, 0.0, {"secret": 2.0}, 0.0, {})
    result = fit(samples, weak=WEAK, strong=STRONG, target_quality=0.95, current=current)
    assert result.adaptation is not None
    assert not result.promoted
    assert "v1" in result.reason


DRAWS = 12


def _bound_and_naive_ratios(target: float) -> list[tuple[float, float]]:
    """Per draw: the quality ratio delivered on 4000 fresh samples by `fit` and by the in-sample threshold search on
    the shipped score that the bound replaces (`llm-router calibrate`), both from the same 300 outcomes."""
    from llm_router.ml.evaluate import calibrate
    from llm_router.ml.metrics import Outcome

    ratios = []
    for seed in range(DRAWS):
        train, fresh = _samples(300, 100 + seed, shift=1.0), _samples(4000, 9000 + seed, shift=1.0)
        result = fit(train, weak=WEAK, strong=STRONG, target_quality=target, seed=seed)
        assert result.adaptation is not None
        bound, share = _quality_ratio(result.adaptation, fresh)
        assert share < 0.99  # the target is not bought by sending everything to the strong model
        outcomes = [Outcome(s.scores[WEAK], s.scores[STRONG], 0.0, 1.0) for s in train]
        threshold = calibrate(outcomes, [s.features["difficulty"] for s in train], target_quality=target).threshold
        naive, _ = _quality_ratio(Adaptation(None, WEAK, STRONG, "naive", threshold, 0.0, {}, 1.0, {}), fresh)
        ratios.append((bound, naive))
    return ratios


def test_the_bound_keeps_the_target_on_fresh_samples_in_most_draws() -> None:
    target = 0.95
    ratios = _bound_and_naive_ratios(target)
    kept = sum(bound >= target for bound, _ in ratios)
    near = sum(bound >= target - 0.015 for bound, _ in ratios)
    naive_kept = sum(naive >= target for _, naive in ratios)
    assert kept >= 2 * DRAWS // 3
    assert near >= DRAWS - 1
    # The control: the naive search on the same outcomes misses the target far more often.
    assert naive_kept <= kept - 3


def test_target_quality_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="target_quality"):
        fit(_samples(200, 4), weak=WEAK, strong=STRONG, target_quality=1.5)


def test_the_threshold_sends_the_chosen_share_of_the_outcomes() -> None:
    """The artifact (weights on raw features, standardisation folded in) reproduces the fitted operating point."""
    samples = _samples(500, 11)
    result = fit(samples, weak=WEAK, strong=STRONG, target_quality=0.9)
    assert result.adaptation is not None
    sent = sum(result.adaptation.routes_strong(s.features) for s in samples) / len(samples)
    assert sent == pytest.approx(result.report["strong_share"], abs=2 / len(samples))
    assert 0.0 < sent < 1.0


def test_samples_without_both_scores_are_ignored_and_counted() -> None:
    samples = _samples(200, 12) + [Sample({"difficulty": 0.9}, {STRONG: 1.0}, {}) for _ in range(30)]
    result = fit(samples, weak=WEAK, strong=STRONG, target_quality=0.95)
    assert result.report["samples"] == 200 and result.report["ignored"] == 30
    assert result.adaptation is not None and result.adaptation.metadata["samples"] == 200


def test_the_same_model_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="different"):
        fit(_samples(200, 13), weak=STRONG, strong=STRONG, target_quality=0.95)
