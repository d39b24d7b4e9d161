"""Numbers with their spread: training seeds, observer seeds and the resampling of images or pairs, combined.

Two sources of uncertainty sit behind every Table-1 cell:

- **resampling** of the evaluation images (image metrics) or pairs (the machine observer): how the number
  would move on another draw of test images. Its standard error is `se_resample` (the SD of the per-image
  values over sqrt(N), or the observer's bootstrap SD over pairs);
- **seeds**: how it moves when the model (or the observer) is trained again with another seed, on the
  *same* images. Its estimate is the sample SD of the per-seed values, `sd_seed` (ddof = 1).

The images are shared by every seed, so the resampling part does not shrink with more seeds while the seed
part does: the standard error of the mean over R seeds is

    se = sqrt(se_resample² + sd_seed² / R)

(`combined_se`). The seed part is estimated from R values, so the 95 % interval is mean ± t se with Student's
t at the Welch-Satterthwaite degrees of freedom (`effective_df`): R - 1 scaled up by how much of se² is the
resampling part, which is taken as known (hundreds of images or pairs). With 3 seeds and a seed part that
dominates, t is ~4.3 instead of the normal 1.96; when the resampling part dominates, the interval is the normal
one. With R = 1 the seed part is unknown and left out: the interval then covers the resampling alone (normal),
as the single-run tables always did. `bench/observer.py --mode coverage` checks this interval for the machine
observer on real-vs-real pairs.
"""

from __future__ import annotations

import math
from typing import Dict, Sequence

import numpy as np
import pandas as pd

#: The two-sided 95 % normal quantile used by every interval here.
Z95 = 1.959963984540054


def sample_sd(values: Sequence[float]) -> float:
    """Sample SD (ddof = 1) of `values`; NaN for fewer than two values (a spread needs two draws)."""
    v = np.asarray(values, dtype=float)
    return float(v.std(ddof=1)) if len(v) > 1 else float("nan")


def combined_se(values: Sequence[float], se_resample: Sequence[float]) -> float:
    """Standard error of the mean of `values` (one per seed, [R]) whose resampling SEs are `se_resample` ([R]).

    The resampling SEs are pooled as sqrt(mean(se²)) (the seeds share the images, so it does not shrink
    with R); the seed part sd²/R is added when R >= 2.
    """
    values = np.asarray(values, dtype=float)
    se = np.asarray(se_resample, dtype=float)
    if values.shape != se.shape or values.ndim != 1 or len(values) == 0:
        raise ValueError(f"combined_se: need equal-length 1-d values and SEs, got {values.shape} and {se.shape}")
    var = float(np.mean(se**2))
    if len(values) > 1:
        var += float(values.var(ddof=1)) / len(values)
    return math.sqrt(var)


def effective_df(values: Sequence[float], se_resample: Sequence[float]) -> float:
    """Welch-Satterthwaite degrees of freedom of `combined_se`'s variance: the seed part sd²/R has R - 1, the
    resampling part mean(se²) is taken as known (infinite). inf with one seed or no seed spread."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.inf
    seed_var = float(values.var(ddof=1)) / len(values)
    if seed_var == 0:
        return math.inf
    total = seed_var + float(np.mean(np.asarray(se_resample, dtype=float) ** 2))
    return total**2 * (len(values) - 1) / seed_var**2


def t_quantile(q: float, df: float) -> float:
    """Student's t quantile at `df` degrees of freedom (the normal one at df = inf)."""
    if math.isinf(df):
        return Z95 if q == 0.975 else _normal_quantile(q)
    from scipy.stats import t  # noqa: PLC0415 (scipy loads only when seeds are combined)

    return float(t.ppf(q, df))


def combined_interval(
    values: Sequence[float], se_resample: Sequence[float], low: float = -math.inf, high: float = math.inf
) -> Dict[str, float]:
    """{"mean", "se", "df", "ci_low", "ci_high", "sd_seed", "n"}: the mean over seeds with its 95 % interval
    (`combined_se`, Student's t at `effective_df`), clipped to [low, high] (e.g. 0 and 100 for a rate in
    percent)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    se = combined_se(values, se_resample)
    df = effective_df(values, se_resample)
    crit = t_quantile(0.975, df)
    return dict(
        mean=mean,
        se=se,
        df=df,
        ci_low=max(low, mean - crit * se),
        ci_high=min(high, mean + crit * se),
        sd_seed=sample_sd(values),
        n=int(len(values)),
    )


def seed_means(per_seed: pd.DataFrame, columns: Sequence[str], by: str = "method") -> pd.DataFrame:
    """One row per `by` value (first-seen order): the mean of every column over its seeds, `<col>_sd`
    (sample SD, NaN with one seed; exactly 0 when every seed has the same value) and `n_seeds`."""
    groups = per_seed.groupby(by, sort=False)
    out = groups[list(columns)].mean()
    for col in columns:
        out[f"{col}_sd"] = groups[col].agg(lambda s: sample_sd(s.to_numpy(dtype=float)))
    out["n_seeds"] = groups.size()
    return out.reset_index()


def difference_test(
    diff_per_seed: Sequence[float], se_resample_per_seed: Sequence[float], alpha: float = 0.05
) -> Dict[str, float | bool | str]:
    """Is a difference between two rows beyond the spread? `diff_per_seed` [R]: row A minus row B per seed
    (on the same images); `se_resample_per_seed` [R]: the resampling SE of each difference (paired over
    images, or the two rows' bootstrap SEs added in quadrature for the observer).

    Test: two-sided t-test of mean = 0 with `combined_se` and Student's t at `effective_df` (normal with one
    seed); separated when the (1 - alpha) interval excludes 0. Returns diff, se, df, ci_low, ci_high, t, p,
    separated, n_seeds, test.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"difference_test: alpha must be in (0, 1), got {alpha}")
    d = np.asarray(diff_per_seed, dtype=float)
    se = combined_se(d, se_resample_per_seed)
    df = effective_df(d, se_resample_per_seed)
    mean = float(d.mean())
    crit = t_quantile(1 - alpha / 2, df)
    t = mean / se if se > 0 else (math.inf if mean != 0 else 0.0)
    p = _two_sided_p(t, df)
    seeds = "seed spread included" if len(d) > 1 else "1 seed: seed spread unknown, resampling only"
    return dict(
        diff=mean,
        se=se,
        df=df,
        ci_low=mean - crit * se,
        ci_high=mean + crit * se,
        t=t,
        p=p,
        separated=bool(abs(mean) > crit * se),
        n_seeds=int(len(d)),
        test=f"two-sided t-test, se = sqrt(resampling se^2 + seed sd^2 / R), Welch-Satterthwaite df, "
        f"alpha {alpha:g} ({seeds})",
    )


def _two_sided_p(t: float, df: float) -> float:
    if not math.isfinite(t):
        return 0.0
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    from scipy.stats import t as student  # noqa: PLC0415

    return float(2 * student.sf(abs(t), df))


def _normal_quantile(q: float) -> float:
    """Inverse of the standard normal CDF by bisection on erfc (no scipy at this layer)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
