"""Small-sample statistics for A/B reports, in pure Python: means with 95 % intervals and two-sample tests.

Scores in [0, 1] are compared with Welch's t-test (unequal variances; Student's t distribution through the
regularized incomplete beta function), and 0/1 outcomes (thumbs) with the two-proportion z-test (pooled standard
error; Wilson intervals). Numerical Recipes' continued fraction gives the incomplete beta to about 1e-12.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
Z_975 = 1.959963984540054


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The `p` quantile (p > 0.5) of Student's t, by bisection on the distribution function."""
    target = 2 * (1 - p)  # the two-sided tail at the quantile
    low, high = 0.0, 1e3
    for _ in range(200):
        mid = (low + high) / 2
        if t_two_sided_p(mid, df) > target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def normal_two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95 % interval (None bounds when there are too few values)."""

    n: int
    mean: float | None
    low: float | None
    high: float | None
    method: str

    def as_dict(self) -> dict[str, object]:
        return {"n": self.n, "mean": self.mean, "ci95": [self.low, self.high], "interval": self.method}


def is_binary(values: Sequence[float]) -> bool:
    return bool(values) and all(v in (0.0, 1.0) for v in values)


def mean_interval(values: Sequence[float]) -> Estimate:
    """The mean and its 95 % interval: Wilson's for 0/1 values, Student's t otherwise."""
    n = len(values)
    if n == 0:
        return Estimate(0, None, None, None, "none")
    mean = sum(values) / n
    if is_binary(values):
        z2 = Z_975 * Z_975
        centre = (mean + z2 / (2 * n)) / (1 + z2 / n)
        half = Z_975 * math.sqrt(mean * (1 - mean) / n + z2 / (4 * n * n)) / (1 + z2 / n)
        return Estimate(n, mean, max(0.0, centre - half), min(1.0, centre + half), "wilson")
    if n < 2:
        return Estimate(n, mean, None, None, "t")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(1 - ALPHA / 2, n - 1) * sd / math.sqrt(n)
    return Estimate(n, mean, mean - half, mean + half, "t")


@dataclass(frozen=True)
class Comparison:
    """Whether two samples' means differ at the 5 % level, and by which test."""

    test: str  # "welch_t" or "two_proportion_z"
    statistic: float | None
    p_value: float | None
    difference: float | None
    significant: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "test": self.test,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "difference": self.difference,
            "significant": self.significant,
        }


def welch(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Welch's t-test of mean(a) - mean(b) (Welch-Satterthwaite degrees of freedom)."""
    if len(a) < 2 or len(b) < 2:
        return Comparison("welch_t", None, None, None, False)
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((v - ma) ** 2 for v in a) / (len(a) - 1)
    vb = sum((v - mb) ** 2 for v in b) / (len(b) - 1)
    se2 = va / len(a) + vb / len(b)
    if se2 == 0:
        same = ma == mb
        return Comparison("welch_t", 0.0 if same else math.inf, 1.0 if same else 0.0, ma - mb, not same)
    t = (ma - mb) / math.sqrt(se2)
    df = se2 * se2 / ((va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1))
    p = t_two_sided_p(t, df)
    return Comparison("welch_t", t, p, ma - mb, p < ALPHA)


def two_proportions(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """The two-proportion z-test of share(a) - share(b), with the pooled standard error."""
    if not a or not b:
        return Comparison("two_proportion_z", None, None, None, False)
    pa, pb = sum(a) / len(a), sum(b) / len(b)
    pooled = (sum(a) + sum(b)) / (len(a) + len(b))
    se = math.sqrt(pooled * (1 - pooled) * (1 / len(a) + 1 / len(b)))
    if se == 0:
        return Comparison("two_proportion_z", 0.0, 1.0, pa - pb, False)
    z = (pa - pb) / se
    p = normal_two_sided_p(z)
    return Comparison("two_proportion_z", z, p, pa - pb, p < ALPHA)


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Two-proportion z when both samples are 0/1 outcomes, Welch's t otherwise."""
    return two_proportions(a, b) if is_binary(a) and is_binary(b) else welch(a, b)
