"""Fit a deployment's adaptation of the difficulty score from its own outcomes, in pure Python.

The scheduled adapt function runs this in Lambda, so nothing here imports numpy. Three steps:

1. **A learned adjustment.** A logistic regression of the strong model's win rate `t = (1 + strong - weak) / 2` (the
   quantity the shipped difficulty estimates) on a few outcome features, with the logit of the shipped difficulty
   as a feature whose weight is pulled towards 1 and the other weights towards 0 (an L2 penalty towards the shipped
   model, fitted by Newton's method / IRLS with step halving). With few outcomes the penalty keeps the shipped
   ranking; with many the deployment's own data takes over. K-fold cross-validation picks the penalty by held-out
   deviance, among the recalibration of the shipped score alone (intercept and prior weight: the shipped ranking)
   and the adjustments whose held-out ranking (APGR per fold) beats the recalibration's by two standard errors.
2. **A threshold with a confidence bound.** Each sample is scored by the model fitted without its fold
   (cross-fitting), so the ranking the threshold is chosen on is as good as it will be on new traffic, not better.
   The samples are sorted by that score; sending the top k to the strong model gives a quality ratio
   `(sum weak + sum of the top k gains) / sum strong`. Bootstrap resamples of the outcomes give, for every k, the
   5th percentile of that ratio: a one-sided 95 % lower bound. The chosen share is the smallest k from which every
   larger k's lower bound clears `target_quality` (if the true curve rises with k, the target is missed only when
   the bound at the last share below the true crossing is wrong, which has probability 5 %); the threshold is the
   final model's score at that rank. The bootstrap holds the ranking fixed, so learning it from the same outcomes
   is not priced in: on synthetic data (tests/unit/test_adapt_fit.py, 30 draws of 150 or 300 outcomes) the
   delivered quality meets the target in 90 % of draws and stays within 1.5 points of it in all.
3. **Guardrails.** Fewer than `min_samples` usable outcomes: nothing is fitted. The new version is promoted only if
   its held-out ranking (mean APGR over the folds, each fold ranked by the model fitted without it) is not worse,
   within `APGR_TOLERANCE`, than that of `current` (or of the shipped score when there is none) on the same folds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llm_router.ml import metrics
from llm_router.ml.metrics import Outcome
from llm_router.routing.adaptation import DIFFICULTY, Adaptation, logit, sigmoid

# Candidate features for the adjustment, in the order they are preferred; those the samples lack are skipped, so
# this works with any installed classifier (the dense shape features are always there).
ADJUSTED_FEATURES: tuple[str, ...] = (
    "log_chars",
    "log_digits",
    "log_lines",
    "log_sentences",
    "choices",
    "percent",
    "decimal",
    "money",
    "prior:gain",
    "outcome:w0s1",
    "outcome:w1s0",
    "dc:gap",
    "domain:math",
    "domain:code",
)
FOLDS = 5
BOOTSTRAP = 300
CONFIDENCE = 0.95
# L2 strengths (on standardised features: a prior worth about that many outcomes) tried for the adjustment; 0
# marks the recalibration of the shipped score alone, whose prior weight is held towards 1 by PRIOR_STRENGTH.
PENALTIES: tuple[float, ...] = (0.0, 50.0, 8.0)
PRIOR_STRENGTH = 10.0
# A new ranking may be this much below the current one in held-out APGR and still count as not worse (noise).
APGR_TOLERANCE = 0.01
_NEWTON_STEPS = 30


@dataclass(frozen=True)
class Sample:
    """One graded prompt: its outcome features, and the score and cost of each model that answered it."""

    features: dict[str, float]
    scores: dict[str, float]
    costs: dict[str, float]


@dataclass(frozen=True)
class AdaptResult:
    adaptation: Adaptation | None
    promoted: bool
    reason: str
    report: dict[str, Any]


@dataclass(frozen=True)
class _Design:
    """The regression inputs: the prior's logit, standardised features, the target win rate."""

    prior: list[float]
    rows: list[list[float]]
    target: list[float]
    names: list[str]
    mean: list[float]
    std: list[float]


@dataclass(frozen=True)
class _Fit:
    intercept: float
    prior_weight: float
    coef: list[float]  # on the standardised features

    def z(self, prior: float, row: Sequence[float]) -> float:
        return self.intercept + self.prior_weight * prior + sum(c * x for c, x in zip(self.coef, row, strict=True))


def fit(
    samples: Sequence[Sample],
    *,
    weak: str,
    strong: str,
    target_quality: float,
    current: Adaptation | None = None,
    min_samples: int = 100,
    seed: int = 0,
    route: str | None = None,
) -> AdaptResult:
    """Fit an adaptation for the pair and pick its threshold for `target_quality`; see the module docstring."""
    if not 0.0 < target_quality <= 1.0:
        raise ValueError("target_quality must be in (0, 1]")
    if weak == strong:
        raise ValueError("weak and strong must be two different models")
    usable = [s for s in samples if weak in s.scores and strong in s.scores]
    report: dict[str, Any] = {"samples": len(usable), "ignored": len(samples) - len(usable)}
    if len(usable) < max(min_samples, 2 * FOLDS):
        return AdaptResult(None, False, f"{len(usable)} usable outcomes, fewer than the {min_samples} required", report)
    outcomes = [_outcome(s, weak, strong) for s in usable]
    strong_total = sum(o.strong for o in outcomes)
    if strong_total <= 0:
        return AdaptResult(None, False, f"{strong} scored 0 on every outcome: no quality ratio to keep", report)

    design = _design(usable, outcomes)
    rng = random.Random(seed)
    folds = _folds(len(usable), rng)
    reference = [current.score(s.features) for s in usable] if current else [_prior(s) for s in usable]
    ref_apgr = _mean(_fold_apgrs(outcomes, reference, folds))
    penalty, cv = _select_penalty(design, folds, outcomes)
    crossfit = cv[penalty]["scores"]
    new_apgr = cv[penalty]["apgr"]
    final = _newton(design, range(len(usable)), penalty)
    share, bound = _bounded_share(outcomes, crossfit, target_quality, rng)
    adaptation = _adaptation(final, design, route, weak, strong)
    scores = [adaptation.score(s.features) for s in usable]
    threshold = _threshold_at(scores, share)
    weak_q, strong_q = metrics.model_quality(outcomes)
    promoted = new_apgr is None or ref_apgr is None or new_apgr >= ref_apgr - APGR_TOLERANCE
    # The chosen share of the cross-fitted ranking: the fold models' scores are not on the final model's scale.
    top = set(sorted(range(len(usable)), key=lambda i: crossfit[i], reverse=True)[: round(share * len(usable))])
    held_out = _point(outcomes, [i in top for i in range(len(usable))])
    report.update(
        {
            "penalty": penalty,
            "features": design.names if penalty else [],
            "cv": {str(k): {"deviance": round(v["deviance"], 5), "apgr": _round(v["apgr"])} for k, v in cv.items()},
            "weak_quality": round(weak_q, 4),
            "strong_quality": round(strong_q, 4),
            "target_quality": target_quality,
            "strong_share": round(share, 4),
            "quality_ratio_lower_bound": round(bound, 4),
            "new": {"version": "candidate", "apgr": _round(new_apgr), **held_out},
            "current": {
                "version": current.version if current else "shipped",
                "apgr": _round(ref_apgr),
                **(_point(outcomes, [s >= current.threshold for s in reference]) if current else {}),
            },
        }
    )
    metadata = {
        "samples": len(usable),
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target_quality": target_quality,
        "bound": f"bootstrap {BOOTSTRAP} x, {int(100 * CONFIDENCE)} % one-sided lower bound, {FOLDS}-fold cross-fit",
        "strong_share": round(share, 4),
        "quality_ratio_lower_bound": round(bound, 4),
        "penalty": penalty,
        "held_out": {"new": report["new"], "current": report["current"]},
        "seed": seed,
    }
    adaptation = Adaptation(
        route=route,
        weak=weak,
        strong=strong,
        version=adaptation.version,
        threshold=threshold,
        intercept=adaptation.intercept,
        coef=adaptation.coef,
        prior_weight=adaptation.prior_weight,
        metadata=metadata,
    )
    if promoted:
        reason = (
            f"fitted on {len(usable)} outcomes: {100 * share:.1f} % to {strong} keeps >= {target_quality:.2f} of its "
            f"quality ({100 * CONFIDENCE:.0f} % lower bound {bound:.3f}); "
            f"held-out APGR {_fmt(new_apgr)} vs {_fmt(ref_apgr)}"
        )
    else:
        reason = (
            f"not promoted: held-out APGR {_fmt(new_apgr)} is below {report['current']['version']}'s "
            f"{_fmt(ref_apgr)} on the same {len(usable)} outcomes"
        )
    return AdaptResult(adaptation, promoted, reason, report)


def _outcome(sample: Sample, weak: str, strong: str) -> Outcome:
    return Outcome(
        weak=float(sample.scores[weak]),
        strong=float(sample.scores[strong]),
        weak_cost=float(sample.costs.get(weak, 0.0)),
        strong_cost=float(sample.costs.get(strong, 0.0)),
    )


def _prior(sample: Sample) -> float:
    return float(sample.features.get(DIFFICULTY, 0.5))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _point(outcomes: Sequence[Outcome], to_strong: Sequence[bool]) -> dict[str, float]:
    strong_total = sum(o.strong for o in outcomes)
    chosen = sum(o.strong if s else o.weak for o, s in zip(outcomes, to_strong, strict=True))
    return {
        "strong_share": round(sum(to_strong) / len(outcomes), 4),
        "quality_ratio": round(chosen / strong_total, 4) if strong_total else 0.0,
    }


def _design(samples: Sequence[Sample], outcomes: Sequence[Outcome]) -> _Design:
    names = [
        name
        for name in ADJUSTED_FEATURES
        if len({s.features.get(name, 0.0) for s in samples}) > 1  # a constant column adds nothing
    ]
    columns = [[float(s.features.get(name, 0.0)) for s in samples] for name in names]
    mean = [sum(c) / len(c) for c in columns]
    std = [math.sqrt(sum((x - m) ** 2 for x in c) / len(c)) or 1.0 for c, m in zip(columns, mean, strict=True)]
    # Standardised, so that one penalty strength suits every feature.
    rows = [[(columns[j][i] - mean[j]) / std[j] for j in range(len(names))] for i in range(len(samples))]
    return _Design(
        prior=[logit(_prior(s)) for s in samples],
        rows=rows,
        target=[min(1.0, max(0.0, (1.0 + o.strong - o.weak) / 2)) for o in outcomes],
        names=names,
        mean=mean,
        std=std,
    )


def _folds(n: int, rng: random.Random) -> list[list[int]]:
    order = list(range(n))
    rng.shuffle(order)
    return [sorted(order[k::FOLDS]) for k in range(FOLDS)]


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the systems here have a dozen unknowns)."""
    size = len(vector)
    a = [[*row, vector[i]] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:
            raise ValueError("singular system")
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, size):
            factor = a[r][col] / a[col][col]
            if factor:
                row, top = a[r], a[col]
                for c in range(col, size + 1):
                    row[c] -= factor * top[c]
    x = [0.0] * size
    for r in range(size - 1, -1, -1):
        x[r] = (a[r][size] - sum(a[r][c] * x[c] for c in range(r + 1, size))) / a[r][r]
    return x


def _newton(design: _Design, index: Sequence[int] | range, penalty: float) -> _Fit:
    """Penalised logistic regression by Newton's method, starting from (and shrunk towards) the shipped score.

    `penalty` 0 fits only an intercept and the prior's weight (a recalibration that keeps the shipped ranking
    unless the data insist), the weight held towards 1 by `PRIOR_STRENGTH / 2 x (weight - 1)^2`; otherwise every
    feature's weight is penalised by `penalty / 2 x w^2` and the prior's by `penalty / 2 x (weight - 1)^2`. The
    penalties do not grow with the data, so the more outcomes, the less the shipped model counts."""
    width = len(design.names) if penalty else 0
    lam = penalty or PRIOR_STRENGTH
    params = [0.0, 1.0] + [0.0] * width
    vectors = [[1.0, design.prior[i], *design.rows[i][:width]] for i in index]
    targets = [design.target[i] for i in index]
    for _ in range(_NEWTON_STEPS):
        grad, hess = _gradient_hessian(params, vectors, targets, lam)
        step = _solve(hess, grad)
        # Step halving: a full Newton step can overshoot where the win rates sit near 0 or 1.
        before = _objective(params, vectors, targets, lam)
        scale = 1.0
        trial = [a - b for a, b in zip(params, step, strict=True)]
        while _objective(trial, vectors, targets, lam) > before + 1e-12 and scale > 1e-6:
            scale /= 2
            trial = [a - scale * b for a, b in zip(params, step, strict=True)]
        params = trial
        if scale * max(abs(s) for s in step) < 1e-7:
            break
    return _Fit(params[0], params[1], params[2:])


def _gradient_hessian(
    params: Sequence[float], vectors: Sequence[Sequence[float]], targets: Sequence[float], lam: float
) -> tuple[list[float], list[list[float]]]:
    size = len(params)
    grad = [0.0] * size
    hess = [[0.0] * size for _ in range(size)]
    for v, t in zip(vectors, targets, strict=True):
        p = sigmoid(sum(a * b for a, b in zip(params, v, strict=True)))
        r = p - t
        w = p * (1.0 - p)
        for j in range(size):
            vj = v[j]
            grad[j] += r * vj
            wj = w * vj
            row = hess[j]
            for k in range(j, size):
                row[k] += wj * v[k]
    for j in range(size):
        for k in range(j):
            hess[j][k] = hess[k][j]
    # The penalty: the prior's weight towards 1, the features' towards 0, the intercept free.
    grad[1] += lam * (params[1] - 1.0)
    hess[1][1] += lam
    for j in range(2, size):
        grad[j] += lam * params[j]
        hess[j][j] += lam
    hess[0][0] += 1e-9
    return grad, hess


def _objective(
    params: Sequence[float], vectors: Sequence[Sequence[float]], targets: Sequence[float], lam: float
) -> float:
    """The penalised negative log-likelihood `_newton` minimises."""
    total = 0.0
    for v, t in zip(vectors, targets, strict=True):
        z = sum(a * b for a, b in zip(params, v, strict=True))
        # log(1 + e^z) - t z, computed without overflow
        total += (z if z > 0 else 0.0) + math.log1p(math.exp(-abs(z))) - t * z
    return total + lam / 2 * ((params[1] - 1.0) ** 2 + sum(c * c for c in params[2:]))


def _deviance(fitted: _Fit, design: _Design, index: Sequence[int], width: int) -> tuple[float, list[float]]:
    """Mean binomial deviance of the win rate on held-out rows, and their scores."""
    total, scores = 0.0, []
    for i in index:
        p = sigmoid(fitted.z(design.prior[i], design.rows[i][:width]))
        p = min(max(p, 1e-9), 1 - 1e-9)
        t = design.target[i]
        total -= t * math.log(p) + (1 - t) * math.log(1 - p)
        scores.append(p)
    return total, scores


def _select_penalty(
    design: _Design, folds: Sequence[Sequence[int]], outcomes: Sequence[Outcome]
) -> tuple[float, dict[float, dict[str, Any]]]:
    """Cross-validate each penalty; every sample gets the score of the model fitted without its fold.

    The penalty with the lowest held-out deviance wins, but an adjustment beyond the recalibration must also rank
    the held-out folds better than the recalibration does, by more than two standard errors of the paired per-fold
    APGR differences: deviance rewards calibration, routing needs ranking, and a few hundred outcomes cannot tell a
    small gain from noise."""
    n = len(design.prior)
    results: dict[float, dict[str, Any]] = {}
    for penalty in PENALTIES if design.names else (0.0,):
        scores = [0.0] * n
        total = 0.0
        width = len(design.names) if penalty else 0
        for held in folds:
            held_set = set(held)
            train = [i for i in range(n) if i not in held_set]
            fitted = _newton(design, train, penalty)
            loss, fold_scores = _deviance(fitted, design, held, width)
            total += loss
            for i, s in zip(held, fold_scores, strict=True):
                scores[i] = s
        per_fold = _fold_apgrs(outcomes, scores, folds)
        results[penalty] = {"deviance": total / n, "scores": scores, "apgr": _mean(per_fold), "folds": per_fold}
    recal = results[0.0]["folds"]
    eligible = [k for k in results if k == 0.0 or _beats(results[k]["folds"], recal)]
    best = min(eligible, key=lambda k: results[k]["deviance"])
    return best, results


def _beats(candidate: Sequence[float | None], baseline: Sequence[float | None]) -> bool:
    """Whether the mean paired difference exceeds two standard errors (about a one-sided 95 % test on 5 folds)."""
    diffs = [c - b for c, b in zip(candidate, baseline, strict=True) if c is not None and b is not None]
    if len(diffs) < 2:
        return False
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    return mean - 2 * sd / math.sqrt(len(diffs)) > 0


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _fold_apgrs(
    outcomes: Sequence[Outcome], scores: Sequence[float], folds: Sequence[Sequence[int]]
) -> list[float | None]:
    """APGR of each fold, ranked on its own (the folds' models may be calibrated differently)."""
    values = []
    for held in folds:
        fold = [outcomes[i] for i in held]
        weak_q, strong_q = metrics.model_quality(fold)
        values.append(metrics.apgr(metrics.router_curve(fold, [scores[i] for i in held]), weak_q, strong_q))
    return values


def _bounded_share(
    outcomes: Sequence[Outcome], scores: Sequence[float], target: float, rng: random.Random
) -> tuple[float, float]:
    """The smallest share of strong calls (ranked by `scores`) whose bootstrap lower bound of the quality ratio,
    and that of every larger share, reaches `target`; and that bound."""
    n = len(outcomes)
    order = sorted(range(n), key=lambda i: scores[i], reverse=True)
    weak = [outcomes[i].weak for i in order]
    strong = [outcomes[i].strong for i in order]
    ratios: list[list[float]] = [[] for _ in range(n + 1)]
    for _ in range(BOOTSTRAP):
        counts = [0] * n
        for i in rng.choices(range(n), k=n):
            counts[i] += 1
        strong_total = sum(c * s for c, s in zip(counts, strong, strict=True))
        if strong_total <= 0:
            continue
        quality = sum(c * w for c, w in zip(counts, weak, strict=True))
        ratios[0].append(quality / strong_total)
        for k in range(n):
            quality += counts[k] * (strong[k] - weak[k])
            ratios[k + 1].append(quality / strong_total)
    alpha = 1.0 - CONFIDENCE
    bounds = [_quantile(r, alpha) for r in ratios]
    chosen = n
    for k in range(n, -1, -1):
        if bounds[k] < target:
            break
        chosen = k
    return chosen / n, bounds[chosen]


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _threshold_at(scores: Sequence[float], share: float) -> float:
    """The threshold that sends `share` of these scores (the highest) to the strong model."""
    n = len(scores)
    k = round(share * n)
    if k <= 0:
        return 1.0
    if k >= n:
        return 0.0
    ordered = sorted(scores, reverse=True)
    # Halfway between the k-th and (k+1)-th highest score, so rounding in storage cannot move a sample across.
    return (ordered[k - 1] + ordered[k]) / 2


def _adaptation(fitted: _Fit, design: _Design, route: str | None, weak: str, strong: str) -> Adaptation:
    """The fit in the artifact's terms: weights on the raw features, the standardisation folded into them."""
    coef: dict[str, float] = {}
    intercept = fitted.intercept
    for name, c, m, s in zip(design.names, fitted.coef, design.mean, design.std, strict=False):
        coef[name] = c / s
        intercept -= c * m / s
    return Adaptation(
        route=route,
        weak=weak,
        strong=strong,
        version="offline" if route is None else "candidate",
        threshold=0.5,
        intercept=intercept,
        coef=coef,
        prior_weight=fitted.prior_weight,
    )
