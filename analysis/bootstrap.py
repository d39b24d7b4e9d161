"""Bootstrap over raters: the reported uncertainty of a fool rate.

A study's unit of replication is the rater (each rater answers ~45 correlated trials), so the
bootstrap resamples *raters* with replacement within a method, keeps all of a resampled rater's
counted trials, and recomputes the pooled rate sum(fooled) / sum(trials). Everything is vectorised:
a resample is an integer index matrix, so 10,000 resamples of 40 raters are one gather and one sum.
"""

from __future__ import annotations

import zlib

import numpy as np


def method_rng(seed: int, method: str) -> np.random.Generator:
    """A generator that depends only on (seed, method), so adding a method never changes another's draws."""
    return np.random.default_rng([int(seed), zlib.crc32(method.encode("utf-8"))])


def pooled_rate(fooled: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """sum(fooled) / sum(trials) over the last axis. fooled, trials: int [..., R] -> float [...]."""
    return fooled.sum(axis=-1) / trials.sum(axis=-1)


def bootstrap_rates(
    fooled: np.ndarray, trials: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 2_000_000
) -> np.ndarray:
    """Pooled fool rates of `n_boot` rater resamples, for one study or many at once.

    fooled, trials: int [R] (one study) or [S, R] (S studies, each resampled independently), per-rater
    counts of fooled and counted trials; every rater must have trials >= 1.
    Returns float [n_boot] or [S, n_boot]: sum of resampled fooled / sum of resampled trials.
    """
    fooled = np.asarray(fooled)
    trials = np.asarray(trials)
    if fooled.shape != trials.shape or fooled.ndim not in (1, 2):
        raise ValueError(
            f"fooled and trials must have the same shape [R] or [S, R], got {fooled.shape} and {trials.shape}"
        )
    if fooled.shape[-1] == 0:
        raise ValueError("cannot bootstrap a method with no raters")
    if np.any(trials < 1) or np.any(fooled < 0) or np.any(fooled > trials):
        raise ValueError("per-rater counts must satisfy 0 <= fooled <= trials and trials >= 1")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    single = fooled.ndim == 1
    f2 = fooled[None] if single else fooled
    t2 = trials[None] if single else trials
    n_studies, n_raters = f2.shape
    out = np.empty((n_studies, n_boot))
    per = max(1, chunk // (n_boot * n_raters))  # studies per chunk, bounding the index matrix's memory
    for s0 in range(0, n_studies, per):
        s1 = min(n_studies, s0 + per)
        idx = rng.integers(0, n_raters, size=(s1 - s0, n_boot, n_raters))
        rows = np.arange(s1 - s0)[:, None, None]
        out[s0:s1] = f2[s0:s1][rows, idx].sum(axis=2) / t2[s0:s1][rows, idx].sum(axis=2)
    return out[0] if single else out


def summarize(boot: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(se, ci_low, ci_high) of bootstrap replicates along the last axis: SD (ddof=1) and percentile interval."""
    alpha = (1.0 - level) / 2.0
    se = boot.std(axis=-1, ddof=1)
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha], axis=-1)
    return se, lo, hi


def paired_difference_test(boot_a: np.ndarray, boot_b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Bootstrap test of rate_a - rate_b from independent rater resamples of two methods.

    boot_a, boot_b: float [B] replicates (different raters per method, so independent resamples).
    Returns (ci_low, ci_high, p_value): the percentile interval of the difference, and the two-sided
    p-value of "no difference" obtained by inverting percentile intervals:
    p = min(1, 2 * min(#(d <= 0) + 1, #(d >= 0) + 1) / (B + 1)), the smallest level whose interval
    excludes 0 (the +1s keep p > 0 with finitely many resamples).
    """
    if boot_a.shape != boot_b.shape or boot_a.ndim != 1:
        raise ValueError(f"replicates must be 1-D of the same length, got {boot_a.shape} and {boot_b.shape}")
    d = boot_a - boot_b
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(d, [alpha, 1.0 - alpha])
    n = d.size
    below = np.count_nonzero(d <= 0) + 1
    above = np.count_nonzero(d >= 0) + 1
    p = min(1.0, 2.0 * min(below, above) / (n + 1))
    return float(lo), float(hi), float(p)


def holm_adjust(p_values) -> np.ndarray:
    """Holm's step-down adjustment of p-values (Holm 1979), controlling the family-wise error rate.

    p_values: float [K] in [0, 1] (NaN kept as NaN and not counted in K). Returns float [K]: sorted
    ascending, the i-th smallest (0-based) becomes max over j <= i of min(1, (K - j) p_(j)), so
    "p_holm <= alpha" rejects with family-wise error <= alpha over all K hypotheses.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    k = int(ok.sum())
    if k == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    scaled = np.minimum(1.0, (k - np.arange(k)) * p[ok][order])
    adjusted = np.empty(k)
    adjusted[order] = np.maximum.accumulate(scaled)
    out[ok] = adjusted
    return out
