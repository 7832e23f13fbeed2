"""Incremental revenue per member with a 95 % interval: Welch's t on CUPED-adjusted revenue.

Each group (treated, held out) is summarised by sufficient statistics that SQL computes in one
pass: n and the sums of y, y², x, x², xy, where y is a member's revenue in the attribution
window and x the same member's spend in the pre-campaign period. CUPED (Deng et al., 2013)
replaces y by y − θ(x − x̄) with θ = cov(x, y) / var(x) over both groups; x is measured before
the campaign, so the adjustment cannot absorb the treatment effect, only the noise that spend
habits explain. The difference of the adjusted means is tested with Welch's unequal-variance
t, its degrees of freedom by Welch–Satterthwaite. With no pre-period spend (var(x) = 0), θ is 0
and this is plain Welch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CONFIDENCE = 0.95
METHOD = "Welch t, CUPED on pre-campaign spend"


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of one group (money in fen)."""

    n: int
    y: float
    yy: float
    x: float
    xx: float
    xy: float

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.y + other.y, self.yy + other.yy,
                       self.x + other.x, self.xx + other.xx, self.xy + other.xy)

    def cov(self, a: str, b: str) -> float:
        """Sample covariance (ddof 1) of two of x, y."""
        if self.n < 2:
            return 0.0
        sums = {"x": self.x, "y": self.y}
        products = {"xx": self.xx, "yy": self.yy, "xy": self.xy, "yx": self.xy}
        return (products[a + b] - sums[a] * sums[b] / self.n) / (self.n - 1)


EMPTY = Moments(0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Uplift:
    """Treated minus held out, per member, after CUPED; fen."""

    per_member: float
    low: float
    high: float
    std_error: float
    df: float
    theta: float
    variance_reduction: float  # share of the variance CUPED removed (0 to 1)
    method: str = METHOD
    confidence: float = CONFIDENCE


def _adjusted(m: Moments, theta: float) -> tuple[float, float]:
    """(mean, variance) of y − θx within the group (the pooled x̄ only shifts both means)."""
    mean = (m.y - theta * m.x) / m.n
    var = m.cov("y", "y") - 2 * theta * m.cov("x", "y") + theta * theta * m.cov("x", "x")
    return mean, max(var, 0.0)


def welch_cuped(treated: Moments, control: Moments, *, confidence: float = CONFIDENCE) -> Uplift:
    """The uplift of ``treated`` over ``control``; needs n ≥ 2 in each group."""
    if treated.n < 2 or control.n < 2:
        raise ValueError("each group needs at least two members")
    pooled = treated + control
    var_x = pooled.cov("x", "x")
    theta = pooled.cov("x", "y") / var_x if var_x > 0 else 0.0
    mean_t, var_t = _adjusted(treated, theta)
    mean_c, var_c = _adjusted(control, theta)
    a, b = var_t / treated.n, var_c / control.n
    se = math.sqrt(a + b)
    if se == 0:
        df = float(treated.n + control.n - 2)
        half = 0.0
    else:
        df = (a + b) ** 2 / (a * a / (treated.n - 1) + b * b / (control.n - 1))
        from scipy.special import stdtrit  # lighter to import than scipy.stats

        half = float(stdtrit(df, 0.5 + confidence / 2)) * se
    raw = treated.cov("y", "y") / treated.n + control.cov("y", "y") / control.n
    reduction = 1 - (a + b) / raw if raw > 0 else 0.0
    diff = mean_t - mean_c
    return Uplift(per_member=diff, low=diff - half, high=diff + half, std_error=se, df=df,
                  theta=theta, variance_reduction=max(reduction, 0.0), confidence=confidence)
