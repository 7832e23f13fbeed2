"""BG/NBD (Fader, Hardie & Lee 2005): how likely a member is still active, from three numbers.

Per member: ``x`` repeat purchase days, ``t_x`` age at the last purchase and ``T`` age now
(segmentation's ``bgnbd_frame`` convention, in days). The model's four parameters are fitted by
maximum likelihood over the whole member base (log-parameters, L-BFGS-B); the probability that a
member is still "alive" is then

    P(alive) = 1 / (1 + [x > 0] · a / (b + x - 1) · ((α + T) / (α + t_x))^(r + x)).

A small implementation rather than ``lifetimes`` (unmaintained since 2020): the likelihood and
P(alive) are a few lines of numpy and scipy, and the tests pin them to the published CDNOW fit
(r = 0.243, α = 4.414, a = 0.793, b = 2.426 in weeks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

from dispatcher.scheduler.errors import ScheduleError

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BgNbd:
    """Fitted parameters: purchase rate Gamma(r, α), dropout Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def p_alive(self, x: Floats, t_x: Floats, big_t: Floats) -> Floats:
        """Probability that each member is still active (1 for members with no repeat)."""
        x, t_x, big_t = (np.asarray(v, dtype=np.float64) for v in (x, t_x, big_t))
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            log_ratio = (np.log(self.a) - np.log(np.maximum(self.b + x - 1, 1e-12))
                         + (self.r + x) * (np.log(self.alpha + big_t)
                                           - np.log(self.alpha + t_x)))
            odds = np.where(x > 0, np.exp(np.minimum(log_ratio, 700.0)), 0.0)
        return np.asarray(1.0 / (1.0 + odds), dtype=np.float64)


def log_likelihood(params: BgNbd, x: Floats, t_x: Floats, big_t: Floats) -> float:
    """Sum of the members' log-likelihoods (FHL 2005, eq. 6)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + big_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12))
                      - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(np.sum(a1 + a2 + np.logaddexp(a3, a4)))


FIT_SAMPLE = 20_000  # members the fit reads: four parameters need no more


def fit(x: Floats, t_x: Floats, big_t: Floats, *, sample: int = FIT_SAMPLE) -> BgNbd:
    """Maximum-likelihood parameters for the members' (x, t_x, T).

    Over more than ``sample`` members the fit reads a fixed random sample of them (the same
    members each time for the same input): the four parameters are as well determined by
    20,000 members as by a million, and the optimiser evaluates the likelihood a few hundred
    times."""
    x, t_x, big_t = (np.asarray(v, dtype=np.float64) for v in (x, t_x, big_t))
    if len(x) > sample:
        chosen = np.random.default_rng(0).choice(len(x), size=sample, replace=False)
        x, t_x, big_t = x[chosen], t_x[chosen], big_t[chosen]
    if len(x) < 10 or not (x > 0).any():
        raise ScheduleError("wake_up max_p_alive: the BG/NBD model needs at least 10 buyers "
                            "and some repeat purchases")
    scale = float(big_t.max()) / 10 or 1.0  # fit in scaled time: better conditioned

    def negative(log_params: Floats) -> float:
        r, alpha, a, b = np.exp(log_params)
        return -log_likelihood(BgNbd(r, alpha, a, b), x, t_x / scale, big_t / scale)

    found = minimize(negative, x0=np.zeros(4), method="L-BFGS-B",
                     bounds=[(-10.0, 10.0)] * 4)
    r, alpha, a, b = np.exp(found.x)
    return BgNbd(float(r), float(alpha * scale), float(a), float(b))
