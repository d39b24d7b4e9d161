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


# HYPE-time (staircase) studies: a rater's accuracy grows with the exposure t (ms) along a Weibull psychometric
# function for two-alternative forced choice, P(correct | t) = 0.5 + (0.5 - lapse) * (1 - exp(-(t / alpha) ** slope)),
# with alpha_r = alpha_method * exp(threshold_sd * z_r), z_r ~ N(0, 1). The rater's threshold (the exposure of
# P(correct) = p_target, the staircase's target) is alpha_r * k(p_target, slope, lapse), so the population's
# geometric-mean threshold is alpha_method * k: `psychometric_alpha` inverts that.
STAIRCASE_SLOPE = 3.0
STAIRCASE_LAPSE = 0.02
STAIRCASE_THRESHOLD_SD = 0.3


def p_correct_at(t_ms: float, alpha_ms: float, slope: float = STAIRCASE_SLOPE, lapse: float = STAIRCASE_LAPSE) -> float:
    """P(the real image is chosen) after an exposure of `t_ms` (see above)."""
    return 0.5 + (0.5 - lapse) * (1.0 - math.exp(-((t_ms / alpha_ms) ** slope)))


def psychometric_alpha(
    threshold_ms: float, p_target: float, slope: float = STAIRCASE_SLOPE, lapse: float = STAIRCASE_LAPSE
) -> float:
    """alpha (ms) whose P(correct) reaches `p_target` at `threshold_ms`; `p_target` in (0.5, 1 - lapse)."""
    if not 0.5 < p_target < 1.0 - lapse:
        raise ValueError(f"p_target must be in (0.5, {1 - lapse}), got {p_target}")
    k = (-math.log(1.0 - (p_target - 0.5) / (0.5 - lapse))) ** (1.0 / slope)
    return threshold_ms / k
