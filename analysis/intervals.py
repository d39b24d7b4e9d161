"""The default fool-rate interval: a jackknife over raters on the logit scale, with a t quantile.

A study's unit of replication is the rater, so the SE of the pooled rate p = sum(fooled) / sum(trials)
comes from leaving one rater out at a time (the delete-one jackknife, Efron & Tibshirani 1993, ch. 11):
p_(r) = (F - f_r) / (T - t_r), se = sqrt((R - 1) / R * sum_r (p_(r) - mean p_(.))^2). The 95 % interval
is built on the logit scale, where a small rate's sampling distribution is nearly symmetric
(logit(p) +- t_{R-1} * se / (p (1 - p)), mapped back), and the t quantile with R - 1 degrees of freedom
widens it for the few raters a study has. A difference of two methods' rates (different raters, so
independent) gets a Welch t interval and test on the rate scale: d +- t_nu * sqrt(se_a^2 + se_b^2), nu the
Welch-Satterthwaite degrees of freedom.

Why not the percentile bootstrap over raters (`analysis.bootstrap`, still reported as `boot_*` columns):
at the paper's design it covered 0.917-0.942 of simulated studies, too narrow (it has no small-sample
correction and no skew correction at small rates); this interval covers 0.935-0.954 over the same grid
(docs/analysis.md, `python -m analysis.validate_coverage --grid`).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def jackknife_se(fooled: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Delete-one-rater jackknife SE of the pooled rate. fooled, trials: int [..., R] (R >= 2, every rater
    with trials >= 1) -> float [...]; NaN where R < 2."""
    fooled = np.asarray(fooled, dtype=float)
    trials = np.asarray(trials, dtype=float)
    n = fooled.shape[-1]
    if n < 2:
        return np.full(fooled.shape[:-1], np.nan)
    loo = (fooled.sum(-1, keepdims=True) - fooled) / (trials.sum(-1, keepdims=True) - trials)
    dev = loo - loo.mean(-1, keepdims=True)
    return np.sqrt((n - 1) / n * (dev**2).sum(-1))


def rate_interval(
    fooled: np.ndarray, trials: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rate, se, ci_low, ci_high) of the pooled rate per study: jackknife SE, logit-scale t interval.

    fooled, trials: int [..., R] per-rater counts. Returns float [...] each, rates as fractions. Where the
    rate is 0 or 1 (no logit) the interval is the rate-scale t interval clipped to [0, 1], which is the
    single point p when every rater agrees; NaN SE and interval with fewer than 2 raters.
    """
    fooled = np.asarray(fooled)
    trials = np.asarray(trials)
    n = fooled.shape[-1]
    rate = fooled.sum(-1) / trials.sum(-1)
    se = jackknife_se(fooled, trials)
    q = stats.t.ppf(0.5 + level / 2.0, max(n - 1, 1))
    inner = (rate > 0) & (rate < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = np.log(rate / (1.0 - rate))
        half = q * se / (rate * (1.0 - rate))
        lo = np.where(inner, 1.0 / (1.0 + np.exp(-(centre - half))), np.clip(rate - q * se, 0.0, 1.0))
        hi = np.where(inner, 1.0 / (1.0 + np.exp(-(centre + half))), np.clip(rate + q * se, 0.0, 1.0))
    return rate, se, lo, hi


def difference_test(
    rate_a, se_a, n_a: int, rate_b, se_b, n_b: int, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch t interval and two-sided p-value of rate_a - rate_b for independent raters per method.

    rate_*, se_*: float [...] (jackknife SEs); n_*: raters per method (>= 2). Returns (ci_low, ci_high,
    p_value), each float [...]; NaN where a SE is NaN. Where both SEs are 0, p is 0 for a non-zero
    difference and 1 for none (the raters agree exactly).
    """
    rate_a, se_a, rate_b, se_b = (np.asarray(x, dtype=float) for x in (rate_a, se_a, rate_b, se_b))
    va, vb = se_a**2, se_b**2
    se = np.sqrt(va + vb)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = (va + vb) ** 2 / (va**2 / max(n_a - 1, 1) + vb**2 / max(n_b - 1, 1))
        nu = np.where(np.isfinite(nu), nu, max(n_a + n_b - 2, 1))
        d = rate_a - rate_b
        q = stats.t.ppf(0.5 + level / 2.0, nu)
        z = np.abs(d) / se
        p = np.where(se > 0, 2.0 * stats.t.sf(z, nu), np.where(d == 0, 1.0, 0.0))
    p = np.where(np.isnan(se), np.nan, p)
    return d - q * se, d + q * se, p
