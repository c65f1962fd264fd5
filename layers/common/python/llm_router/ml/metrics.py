"""Cost-quality metrics for a two-model router, as defined by RouteLLM (arXiv 2406.18665) and RouterBench.

A router gives each prompt a score; a threshold sends prompts scoring at or above it to the strong model. Following
RouteLLM's `evaluate.py`, thresholds are the 11 quantiles that split the scores into 10 equally sized bins, with
the top one read as "strictly above" so that the curve runs from 100% to 0% strong calls.

- APGR: area under (quality - weak) / (strong - weak) against the share of strong calls (trapezoids).
- CPT(x%): the smallest share of strong calls whose quality recovers x% of the gap, interpolated linearly.
- AIQ (RouterBench, arXiv 2403.12031): mean quality over the cost range under the non-decreasing convex hull of the
  router's (cost, quality) points.
- Savings at 95%: share of the always-strong cost saved at the cheapest point reaching 95% of its quality.
Pure Python, so the tests and the CLI need no numpy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

BINS = 10


@dataclass(frozen=True)
class Outcome:
    """One prompt: the weak and strong model's score (e.g. 1.0 correct, 0.0 wrong) and cost in USD."""

    weak: float
    strong: float
    weak_cost: float
    strong_cost: float


@dataclass(frozen=True)
class Point:
    """One operating point of a router: share of prompts sent to the strong model, mean quality, mean cost."""

    threshold: float | None
    strong_share: float
    quality: float
    cost: float


def quantiles(values: Sequence[float], bins: int = BINS) -> list[float]:
    """The bins+1 edges that split `values` into equally sized bins (linear interpolation, as numpy and pandas)."""
    ordered = sorted(values)
    n = len(ordered)
    edges = []
    for i in range(bins + 1):
        pos = (n - 1) * i / bins
        low = math.floor(pos)
        high = min(low + 1, n - 1)
        edges.append(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))
    return edges


def operating_point(outcomes: Sequence[Outcome], to_strong: Sequence[bool], threshold: float | None = None) -> Point:
    n = len(outcomes)
    quality = sum(o.strong if s else o.weak for o, s in zip(outcomes, to_strong, strict=True)) / n
    cost = sum(o.strong_cost if s else o.weak_cost for o, s in zip(outcomes, to_strong, strict=True)) / n
    return Point(threshold, sum(to_strong) / n, quality, cost)


def router_curve(outcomes: Sequence[Outcome], scores: Sequence[float], bins: int = BINS) -> list[Point]:
    """The router's operating points at the quantile thresholds of its scores, by increasing strong share."""
    if not outcomes or len(outcomes) != len(scores):
        raise ValueError("need one score per outcome and at least one outcome")
    edges = quantiles(scores, bins)
    points = []
    for i, edge in enumerate(edges):
        last = i == len(edges) - 1
        to_strong = [s > edge if last else s >= edge for s in scores]
        points.append(operating_point(outcomes, to_strong, edge))
    return sorted(points, key=lambda p: (p.strong_share, p.quality))


def model_quality(outcomes: Sequence[Outcome]) -> tuple[float, float]:
    n = len(outcomes)
    return sum(o.weak for o in outcomes) / n, sum(o.strong for o in outcomes) / n


def model_cost(outcomes: Sequence[Outcome]) -> tuple[float, float]:
    n = len(outcomes)
    return sum(o.weak_cost for o in outcomes) / n, sum(o.strong_cost for o in outcomes) / n


def _trapezoid(xs: Sequence[float], ys: Sequence[float]) -> float:
    return sum((x1 - x0) * (y0 + y1) / 2 for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:], strict=False))


def apgr(curve: Sequence[Point], weak: float, strong: float) -> float | None:
    """Average performance gap recovered; None when the strong model is not better or the curve has no width."""
    xs = [p.strong_share for p in curve]
    width = xs[-1] - xs[0]
    if strong <= weak or width <= 0:
        return None
    area = _trapezoid(xs, [p.quality for p in curve])
    return (area - weak * width) / ((strong - weak) * width)


def cpt(curve: Sequence[Point], weak: float, strong: float, recovered: float) -> float | None:
    """Smallest share of strong calls (0..1) at which the curve recovers `recovered` of the quality gap."""
    if strong <= weak:
        return None
    target = weak + recovered * (strong - weak)
    previous: Point | None = None
    for point in curve:
        if point.quality >= target:
            if previous is None or previous.quality >= target:
                return point.strong_share
            fraction = (target - previous.quality) / (point.quality - previous.quality)
            return previous.strong_share + fraction * (point.strong_share - previous.strong_share)
        previous = point
    return None


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def nondecreasing_hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Upper convex hull of (cost, quality) points, flat from its best quality on (more money never hurts)."""
    best: dict[float, float] = {}
    for cost, quality in points:
        best[cost] = max(quality, best.get(cost, -math.inf))
    hull: list[tuple[float, float]] = []
    for p in sorted(best.items()):
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    top = max(range(len(hull)), key=lambda i: (hull[i][1], -i))
    flat = hull[: top + 1]
    if flat[-1][0] < hull[-1][0]:
        flat.append((hull[-1][0], flat[-1][1]))
    return flat


def aiq(curve: Sequence[Point]) -> float | None:
    """RouterBench's AIQ: mean of the non-decreasing convex hull of quality over the router's cost range."""
    hull = nondecreasing_hull([(p.cost, p.quality) for p in curve])
    width = hull[-1][0] - hull[0][0]
    if width <= 0:
        return None
    return _trapezoid([c for c, _ in hull], [q for _, q in hull]) / width


def savings_at(curve: Sequence[Point], strong_quality: float, strong_cost: float, share: float = 0.95) -> float | None:
    """Share of the always-strong cost saved at the cheapest curve point reaching `share` of its quality."""
    if strong_cost <= 0:
        return None
    target = share * strong_quality
    previous: Point | None = None
    for point in curve:
        if point.quality >= target:
            cost = point.cost
            if previous is not None and previous.quality < target:
                fraction = (target - previous.quality) / (point.quality - previous.quality)
                cost = previous.cost + fraction * (point.cost - previous.cost)
            return 1 - cost / strong_cost
        previous = point
    return None


def oracle_curve(outcomes: Sequence[Outcome], bins: int = BINS) -> list[Point]:
    """The best possible router at each strong share: the prompts that gain most from the strong model go first,
    and none goes there without a gain (RouteLLM's `get_optimal_accuracy`; fractional calls interpolate)."""
    n = len(outcomes)
    order = sorted(range(n), key=lambda i: outcomes[i].strong - outcomes[i].weak, reverse=True)
    gains = [outcomes[i].strong - outcomes[i].weak for i in order]
    cost_gains = [outcomes[i].strong_cost - outcomes[i].weak_cost for i in order]
    base_quality, base_cost = model_quality(outcomes)[0], model_cost(outcomes)[0]
    points = []
    for step in range(bins + 1):
        calls = n * step / bins
        quality, cost, used = base_quality, base_cost, 0.0
        for gain, extra in zip(gains, cost_gains, strict=True):
            if gain <= 0 or used >= calls:
                break
            take = min(1.0, calls - used)
            quality += take * gain / n
            cost += take * extra / n
            used += take
        # The x axis is the share of calls allowed, as in RouteLLM: unused calls would not change the quality.
        points.append(Point(None, step / bins, quality, cost))
    return points


def random_scores(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]
