"""Benchmark a difficulty scorer on per-prompt outcomes, and pick a threshold for a quality or cost target."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_router.ml import metrics
from llm_router.ml.metrics import Outcome, Point

RANDOM_DRAWS = 20


@dataclass(frozen=True)
class Record:
    """One line of an evaluation file."""

    id: str
    prompt: str
    outcomes: dict[str, dict[str, float]]


@dataclass
class Report:
    """What `llm-router eval` prints; `summary()` is the `--json` object."""

    n: int
    weak: str
    strong: str
    weak_quality: float
    strong_quality: float
    weak_cost: float
    strong_cost: float
    costs_known: bool
    router: list[Point]
    oracle: list[Point]
    random_apgr: float | None
    apgr: float | None = None
    cpt50: float | None = None
    cpt80: float | None = None
    aiq: float | None = None
    savings_at_95: float | None = None
    oracle_apgr: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "apgr": r(self.apgr),
            "cpt50": r(self.cpt50),
            "cpt80": r(self.cpt80),
            "aiq": r(self.aiq),
            "savings_at_95": r(self.savings_at_95),
            "random_apgr": r(self.random_apgr),
            "oracle_apgr": r(self.oracle_apgr),
            "n": self.n,
        }


def read_records(path: Path) -> list[Record]:
    """An evaluation file: `{"id", "prompt", "outcomes": {MODEL: {"score", "cost_usd"?}}}` per line."""
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                records.append(Record(str(item["id"]), str(item["prompt"]), dict(item["outcomes"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not an evaluation record ({exc})") from None
    return records


def outcomes_for(records: Sequence[Record], weak: str, strong: str) -> tuple[list[Outcome], bool]:
    """Outcomes of the two models per record; when a cost is missing, cost becomes the strong-call indicator."""
    for model in (weak, strong):
        missing = [r.id for r in records if model not in r.outcomes]
        if missing:
            raise ValueError(f"model {model!r} has no outcome for {len(missing)} records (first: {missing[0]})")
    costs_known = all("cost_usd" in r.outcomes[m] for r in records for m in (weak, strong))
    result = []
    for r in records:
        w, s = r.outcomes[weak], r.outcomes[strong]
        result.append(
            Outcome(
                weak=float(w["score"]),
                strong=float(s["score"]),
                weak_cost=float(w["cost_usd"]) if costs_known else 0.0,
                strong_cost=float(s["cost_usd"]) if costs_known else 1.0,
            )
        )
    return result, costs_known


def evaluate(
    records: Sequence[Record],
    weak: str,
    strong: str,
    scorer: Callable[[str], float],
    *,
    bins: int = metrics.BINS,
    random_draws: int = RANDOM_DRAWS,
) -> Report:
    """Score every prompt and measure the router against a random router and the oracle."""
    if not records:
        raise ValueError("no records to evaluate")
    outcomes, costs_known = outcomes_for(records, weak, strong)
    scores = [scorer(r.prompt) for r in records]
    return evaluate_scores(
        outcomes, scores, weak, strong, costs_known=costs_known, bins=bins, random_draws=random_draws
    )


def evaluate_scores(
    outcomes: Sequence[Outcome],
    scores: Sequence[float],
    weak: str = "weak",
    strong: str = "strong",
    *,
    costs_known: bool = True,
    bins: int = metrics.BINS,
    random_draws: int = RANDOM_DRAWS,
) -> Report:
    """The report for precomputed router scores."""
    weak_q, strong_q = metrics.model_quality(outcomes)
    weak_c, strong_c = metrics.model_cost(outcomes)
    curve = metrics.router_curve(outcomes, scores, bins)
    oracle = metrics.oracle_curve(outcomes, bins)
    draws = [
        metrics.apgr(metrics.router_curve(outcomes, metrics.random_scores(len(outcomes), seed), bins), weak_q, strong_q)
        for seed in range(random_draws)
    ]
    known = [d for d in draws if d is not None]
    return Report(
        n=len(outcomes),
        weak=weak,
        strong=strong,
        weak_quality=weak_q,
        strong_quality=strong_q,
        weak_cost=weak_c,
        strong_cost=strong_c,
        costs_known=costs_known,
        router=curve,
        oracle=oracle,
        random_apgr=sum(known) / len(known) if known else None,
        apgr=metrics.apgr(curve, weak_q, strong_q),
        cpt50=metrics.cpt(curve, weak_q, strong_q, 0.5),
        cpt80=metrics.cpt(curve, weak_q, strong_q, 0.8),
        aiq=metrics.aiq(curve),
        savings_at_95=metrics.savings_at(curve, strong_q, strong_c, 0.95),
        oracle_apgr=metrics.apgr(oracle, weak_q, strong_q),
    )


@dataclass(frozen=True)
class Calibration:
    threshold: float
    strong_share: float
    quality: float
    quality_vs_strong: float
    cost_vs_strong: float | None


def calibrate(
    outcomes: Sequence[Outcome],
    scores: Sequence[float],
    *,
    target_quality: float | None = None,
    target_strong_share: float | None = None,
) -> Calibration:
    """The highest threshold whose quality reaches `target_quality` x the strong model's, or the threshold that
    sends `target_strong_share` of the prompts to the strong model."""
    if (target_quality is None) == (target_strong_share is None):
        raise ValueError("give exactly one of target_quality and target_strong_share")
    n = len(outcomes)
    weak_q, strong_q = metrics.model_quality(outcomes)
    weak_c, strong_c = metrics.model_cost(outcomes)
    # Sweep thresholds from above the highest score down through every distinct score, adding the prompts at
    # each score to the strong model's share.
    order = sorted(range(n), key=lambda i: scores[i], reverse=True)
    quality, cost, sent = weak_q * n, weak_c * n, 0
    chosen = (min(1.0, scores[order[0]] + 1e-6), Point(None, 0.0, weak_q, weak_c))
    if target_quality is not None and weak_q >= target_quality * strong_q:
        return _calibration(*chosen, strong_q, strong_c)
    i = 0
    while i < n:
        threshold = scores[order[i]]
        while i < n and scores[order[i]] == threshold:
            o = outcomes[order[i]]
            quality += o.strong - o.weak
            cost += o.strong_cost - o.weak_cost
            sent += 1
            i += 1
        point = Point(threshold, sent / n, quality / n, cost / n)
        if target_strong_share is not None and point.strong_share > target_strong_share + 1e-12:
            break
        chosen = (threshold, point)
        if target_quality is not None and point.quality >= target_quality * strong_q - 1e-12:
            break
    else:
        if target_quality is not None:
            raise ValueError("no threshold meets the target quality on this data")
    return _calibration(*chosen, strong_q, strong_c)


def _calibration(threshold: float, point: Point, strong_q: float, strong_c: float) -> Calibration:
    return Calibration(
        # Rounded down, so that every prompt the sweep counted still clears the printed threshold.
        threshold=math.floor(threshold * 1e6) / 1e6,
        strong_share=point.strong_share,
        quality=point.quality,
        quality_vs_strong=point.quality / strong_q if strong_q else 0.0,
        cost_vs_strong=point.cost / strong_c if strong_c else None,
    )


def plot(reports: dict[str, Report], out: Path) -> None:
    """Quality against strong-call share for the router, a random router and the oracle (one panel per data set)."""
    # matplotlib comes with the `train` extra; only plotting needs it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(6 * len(reports), 4.5), squeeze=False)
    for ax, (title, rep) in zip(axes[0], reports.items(), strict=True):
        xs = [100 * p.strong_share for p in rep.router]
        ax.plot(xs, [100 * p.quality for p in rep.router], marker="o", label=f"llm-router (APGR {rep.apgr:.3f})")
        ax.plot(
            [0, 100],
            [100 * rep.weak_quality, 100 * rep.strong_quality],
            linestyle=":",
            label=f"random (APGR {rep.random_apgr:.3f})",
        )
        ax.plot(
            [100 * p.strong_share for p in rep.oracle],
            [100 * p.quality for p in rep.oracle],
            marker="x",
            linestyle="--",
            label=f"oracle (APGR {rep.oracle_apgr:.3f})",
        )
        ax.axhline(100 * rep.weak_quality, color="grey", linestyle="--", linewidth=0.8, label=f"{rep.weak} (weak)")
        ax.axhline(100 * rep.strong_quality, color="red", linestyle="--", linewidth=0.8, label=f"{rep.strong} (strong)")
        ax.set_xlabel("Strong model calls (%)")
        ax.set_ylabel("Quality (%)")
        ax.set_title(f"{title} (n={rep.n})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
