"""The generative model of a rater's answers, shared by the study simulator and the analysis' validation.

A counted trial of rater r on image i is "fooled" (the model's image chosen as real) with probability
sigmoid(b0 + u_r + v_i), u_r ~ N(0, rater_sd^2), v_i ~ N(0, image_sd^2) on the logit scale. The
*marginal* fool rate is E[sigmoid(b0 + u + v)]; `solve_logit_intercept` finds the b0 that gives a
requested marginal rate, so simulated studies have a known true rate whatever the variation.
"""

from __future__ import annotations

import math

import numpy as np

_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(80)  # probabilists' Hermite: weight exp(-x^2/2)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


def marginal_rate(intercept: float, rater_sd: float = 0.0, image_sd: float = 0.0) -> float:
    """E[sigmoid(intercept + z * s)] with z ~ N(0, 1), s = sqrt(rater_sd^2 + image_sd^2) (Gauss-Hermite, 80 nodes)."""
    s = math.hypot(rater_sd, image_sd)
    return float(np.sum(_GH_WEIGHTS / (1.0 + np.exp(-(intercept + s * _GH_NODES)))))


def solve_logit_intercept(marginal: float, rater_sd: float = 0.0, image_sd: float = 0.0) -> float:
    """The intercept b0 whose marginal fool rate is `marginal` (in (0, 1)) under the given logit SDs."""
    if not 0.0 < marginal < 1.0:
        raise ValueError(f"marginal fool rate must be strictly between 0 and 1, got {marginal}")
    if rater_sd < 0 or image_sd < 0:
        raise ValueError(f"standard deviations must be >= 0, got rater_sd={rater_sd}, image_sd={image_sd}")
    lo, hi = -40.0, 40.0  # marginal_rate is increasing in the intercept: bisection is exact enough
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if marginal_rate(mid, rater_sd, image_sd) < marginal:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
