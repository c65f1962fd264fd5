"""How adaptation does on traffic the shipped classifier was not tuned for: the curves behind docs/routing-quality.md.

Every source is taken from an evaluation portion only (RouteLLM: the SHA-256-even halves; dcrouter: its test file),
so neither the shipped classifier nor anything here ever trained on it. Each draw (seed) splits a source at random
into two halves: `fit` adapts on the first N outcomes of one half, and the other half measures the result. The
targets compare, at N <= 400 and `target_quality` 0.95, the delivered quality ratio, the share sent to the strong
model against the share random routing needs for the same quality, and the ranking (APGR) against the shipped
model's.

    python -m llm_router.ml.adapt_report --data-dir ../shared/data/routing --docs docs
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_router.ml import metrics
from llm_router.ml.adapt import Sample, fit
from llm_router.ml.datasets import (
    MMLU_DOMAINS,
    ROUTELLM_STRONG,
    ROUTELLM_WEAK,
    Example,
    read_dcrouter,
    read_routellm_gsm8k,
    read_routellm_mmlu,
)
from llm_router.ml.evaluate import calibrate
from llm_router.ml.metrics import Outcome
from llm_router.routing.adaptation import outcome_features
from llm_router.routing.classifier import DEFAULT_WEIGHTS, Classifier, load_classifier

SIZES: tuple[int | None, ...] = (50, 100, 200, 400, 800, None)  # None: all of the adaptation half
TARGET_SIZE = 400
SEEDS = 10
TARGET_QUALITY = 0.95
# The report fits from 50 outcomes so the curve starts there; a route's own `min_samples` guards production.
MIN_SAMPLES = 50
SHIPPED_THRESHOLD = 0.58

MMLU_GROUPS: dict[str, tuple[str, ...]] = {
    "MMLU STEM": ("math", "science", "code"),
    "MMLU medical": ("medical",),
    "MMLU law": ("legal",),
    "MMLU humanities & social": ("general",),
}
DCROUTER_PAIRS: tuple[tuple[str, str], ...] = (
    ("mistral-7b-instruct-v0.3", "llama-3.1-nemotron-51b-instruct"),
    ("qwen2.5-7b-instruct", "llama-3.1-nemotron-51b-instruct"),
    ("llama3-chatqa-1.5-8b", "llama-3.3-nemotron-super-49b-v1"),
)


@dataclass(frozen=True)
class Source:
    title: str
    weak: str
    strong: str
    samples: list[Sample]


def _samples(examples: Sequence[Example], clf: Classifier) -> list[Sample]:
    return [Sample(outcome_features(e.prompt, clf), dict(e.outcomes), {}) for e in examples]


def load_sources(data_dir: Path, clf: Classifier) -> list[Source]:
    """The new-traffic sources, each from an evaluation portion only."""
    routellm, dcrouter = data_dir / "routellm", data_dir / "dcrouter"
    sources = [
        Source(
            "GSM8K",
            ROUTELLM_WEAK,
            ROUTELLM_STRONG,
            _samples(list(read_routellm_gsm8k(routellm, "test")), clf),
        )
    ]
    mmlu = list(read_routellm_mmlu(routellm, "test"))
    for title, domains in MMLU_GROUPS.items():
        group = [e for e in mmlu if MMLU_DOMAINS.get(e.group, "general") in domains]
        sources.append(Source(title, ROUTELLM_WEAK, ROUTELLM_STRONG, _samples(group, clf)))
    dc = _samples(list(read_dcrouter(dcrouter, "test")), clf)
    for weak, strong in DCROUTER_PAIRS:
        sources.append(Source(f"dcrouter {weak} -> {strong}", weak, strong, dc))
    return sources


def _outcomes(samples: Sequence[Sample], weak: str, strong: str) -> list[Outcome]:
    return [Outcome(s.scores[weak], s.scores[strong], 0.0, 1.0) for s in samples]


def _point(outcomes: Sequence[Outcome], to_strong: Sequence[bool]) -> dict[str, float]:
    """Quality ratio and strong share of a routing, and the share random routing needs for the same quality."""
    weak_q, strong_q = metrics.model_quality(outcomes)
    point = metrics.operating_point(outcomes, to_strong)
    ratio = point.quality / strong_q if strong_q else 0.0
    gap = strong_q - weak_q
    random_share = min(1.0, max(0.0, (point.quality - weak_q) / gap)) if gap > 0 else 0.0
    return {"quality_ratio": ratio, "strong_share": point.strong_share, "random_share": random_share}


def run_draw(source: Source, size: int | None, seed: int, target: float = TARGET_QUALITY) -> dict[str, Any] | None:
    """One draw: adapt on `size` outcomes of a random half, measure on the other half."""
    rng = random.Random(f"{source.title}/{seed}")
    order = list(range(len(source.samples)))
    rng.shuffle(order)
    half = len(order) // 2
    adapt_half = [source.samples[i] for i in order[:half]]
    test = [source.samples[i] for i in order[half:]]
    if size is not None and size > len(adapt_half):
        return None
    train = adapt_half[: size or len(adapt_half)]
    result = fit(
        train, weak=source.weak, strong=source.strong, target_quality=target, min_samples=MIN_SAMPLES, seed=seed
    )
    if result.adaptation is None:
        return None
    adaptation = result.adaptation
    outcomes = _outcomes(test, source.weak, source.strong)
    weak_q, strong_q = metrics.model_quality(outcomes)
    adapted_scores = [adaptation.score(s.features) for s in test]
    shipped_scores = [s.features["difficulty"] for s in test]
    train_outcomes = _outcomes(train, source.weak, source.strong)
    naive = calibrate(train_outcomes, [s.features["difficulty"] for s in train], target_quality=target).threshold
    return {
        "n": len(train),
        "promoted": result.promoted,
        "penalty": result.report.get("penalty"),
        "apgr_adapted": metrics.apgr(metrics.router_curve(outcomes, adapted_scores), weak_q, strong_q),
        "apgr_shipped": metrics.apgr(metrics.router_curve(outcomes, shipped_scores), weak_q, strong_q),
        "adapted": _point(outcomes, [s >= adaptation.threshold for s in adapted_scores]),
        "shipped": _point(outcomes, [s >= SHIPPED_THRESHOLD for s in shipped_scores]),
        "naive": _point(outcomes, [s >= naive for s in shipped_scores]),
    }


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.fmean(known), 4) if known else None


def _summarise(draws: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "n": draws[0]["n"],
        "draws": len(draws),
        "promoted": sum(d["promoted"] for d in draws),
        "apgr_adapted": _mean([d["apgr_adapted"] for d in draws]),
        "apgr_shipped": _mean([d["apgr_shipped"] for d in draws]),
    }
    for arm in ("adapted", "shipped", "naive"):
        ratios = [d[arm]["quality_ratio"] for d in draws]
        out[arm] = {
            "quality_ratio": _mean(ratios),
            "quality_ratio_min": round(min(ratios), 4),
            "strong_share": _mean([d[arm]["strong_share"] for d in draws]),
            "random_share": _mean([d[arm]["random_share"] for d in draws]),
            "excess_share": _mean([d[arm]["strong_share"] - d[arm]["random_share"] for d in draws]),
        }
    return out


def targets(curves: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The three targets at TARGET_SIZE outcomes (or all of a smaller adaptation half)."""
    rows = {}
    for title, points in curves.items():
        fitting = [p for p in points if p["n"] <= TARGET_SIZE]
        if fitting:
            rows[title] = max(fitting, key=lambda p: p["n"])
    excess = [r["adapted"]["excess_share"] for r in rows.values()]
    return {
        "per_source": rows,
        "quality_ratio_ge_0.93_every_source": all(r["adapted"]["quality_ratio"] >= 0.93 for r in rows.values()),
        "quality_ratio_ge_0.93_every_draw": all(r["adapted"]["quality_ratio_min"] >= 0.93 for r in rows.values()),
        "mean_excess_share": _mean(excess),
        "mean_excess_share_le_-0.05": statistics.fmean(excess) <= -0.05,
        "max_excess_share": round(max(excess), 4),
        "max_excess_share_le_0.02": max(excess) <= 0.02,
        "apgr_not_worse_every_source": all(
            r["apgr_adapted"] >= r["apgr_shipped"] - 0.01
            for r in rows.values()
            if r["apgr_adapted"] is not None and r["apgr_shipped"] is not None
        ),
    }


def run(data_dir: Path, docs: Path, weights: Path = DEFAULT_WEIGHTS, seeds: int = SEEDS) -> dict[str, Any]:
    started = time.perf_counter()
    clf = load_classifier(weights)
    sources = load_sources(data_dir, clf)
    curves: dict[str, list[dict[str, Any]]] = {}
    for source in sources:
        points = []
        for size in SIZES:
            draws = [d for seed in range(seeds) if (d := run_draw(source, size, seed)) is not None]
            if draws:
                points.append(_summarise(draws))
        curves[source.title] = points
        print(source.title, json.dumps(points[-1]), flush=True)
    result = {
        "command": f"python -m llm_router.ml.adapt_report --data-dir {data_dir} --docs {docs}",
        "weights": weights.name,
        "protocol": (
            f"evaluation portions only (RouteLLM SHA-256-even halves, contaminated prompts dropped; dcrouter test "
            f"file); per seed (0..{seeds - 1}) a random half-split of each source: fit on the first N outcomes of one "
            f"half (min_samples {MIN_SAMPLES}), measure on the other half; target_quality {TARGET_QUALITY}; the "
            f"shipped model is read at threshold {SHIPPED_THRESHOLD}; `naive` = in-sample threshold search on the "
            "shipped score (`llm-router calibrate`) over the same N outcomes"
        ),
        "sources": {s.title: {"prompts": len(s.samples), "weak": s.weak, "strong": s.strong} for s in sources},
        "curves": curves,
        "targets": targets(curves),
        "seconds": round(time.perf_counter() - started, 1),
    }
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "adaptation.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot(curves, docs / "adaptation.png")
    return result


def plot(curves: dict[str, list[dict[str, Any]]], out: Path) -> None:
    """APGR, delivered quality ratio and strong share beyond random routing, against the outcomes adapted on."""
    # matplotlib comes with the `train` extra; only plotting needs it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 5))
    for index, (title, points) in enumerate(curves.items()):
        color = f"C{index % 10}"
        ns = [p["n"] for p in points]
        axes[0].plot(ns, [p["apgr_adapted"] for p in points], marker="o", color=color, label=title)
        axes[0].plot(ns, [p["apgr_shipped"] for p in points], linestyle=":", color=color)
        axes[1].plot(ns, [p["adapted"]["quality_ratio"] for p in points], marker="o", color=color, label=title)
        axes[1].plot(ns, [p["adapted"]["quality_ratio_min"] for p in points], linestyle=":", color=color)
        axes[2].plot(ns, [100 * p["adapted"]["excess_share"] for p in points], marker="o", color=color, label=title)
    axes[0].set_title("APGR on the held-out half (solid: adapted, dotted: shipped)")
    axes[1].set_title(f"Quality ratio at target {TARGET_QUALITY} (solid: mean, dotted: worst draw)")
    axes[1].axhline(TARGET_QUALITY, color="grey", linestyle="--", linewidth=0.8)
    axes[1].axhline(0.93, color="red", linestyle="--", linewidth=0.8)
    axes[2].set_title("Strong share minus random routing's at the same quality (points)")
    axes[2].axhline(0, color="grey", linestyle="--", linewidth=0.8)
    axes[2].axhline(-5, color="red", linestyle="--", linewidth=0.8)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("outcomes adapted on")
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=7, loc="best")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/routing"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--seeds", type=int, default=SEEDS)
    args = parser.parse_args(argv)
    result = run(args.data_dir, args.docs, args.weights, args.seeds)
    print("targets", json.dumps({k: v for k, v in result["targets"].items() if k != "per_source"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
