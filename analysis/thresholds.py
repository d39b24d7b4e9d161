"""HYPE-time thresholds: each method's exposure threshold from a staircase study (study_app/staircase.py).

Per rater: `rater_threshold_ms` over the exposures (`target_exposure_ms`) of their counted trials in trial
order, i.e. the kept trials after the exclusion rules. Per method: the geometric mean over its raters, with a
95 % percentile bootstrap over raters (raters resampled with replacement within the method; the draws
depend only on (seed, method)). A method whose raters sit at the grid's longest exposure is not told from
real within the grid: its threshold is a lower bound (`at_longest` = share of raters whose estimate is the
longest exposure).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.bootstrap import method_rng
from study_app.staircase import StaircaseRule, rater_threshold_ms

RATER_THRESHOLD_COLUMNS = ["method", "rater_id", "trials", "threshold_ms"]
THRESHOLD_COLUMNS = ["method", "raters", "threshold_ms", "ci_low", "ci_high", "at_longest", "at_shortest"]


def rater_thresholds(counted: pd.DataFrame, rule: StaircaseRule) -> pd.DataFrame:
    """counted: trials with rater_id, method, trial_index, target_exposure_ms (ms) -> one row per rater."""
    rows = []
    for (method, rater), group in counted.sort_values("trial_index").groupby(["method", "rater_id"], sort=False):
        exposures = group["target_exposure_ms"].astype(float).to_numpy()
        if np.isnan(exposures).any():
            raise ValueError(f"rater {rater!r} has trials without target_exposure_ms: not a staircase study's export")
        rows.append((method, rater, len(exposures), rater_threshold_ms(rule, exposures)))
    return pd.DataFrame(rows, columns=RATER_THRESHOLD_COLUMNS)


def method_thresholds(per_rater: pd.DataFrame, rule: StaircaseRule, *, n_boot: int = 10_000, seed: int = 0):
    """per_rater: `rater_thresholds` -> one row per method: geometric-mean threshold (ms) and its interval."""
    rows = []
    for method, group in per_rater.groupby("method", sort=False):
        logs = np.log(group["threshold_ms"].to_numpy(dtype=float))
        n = len(logs)
        idx = method_rng(seed, method).integers(0, n, size=(int(n_boot), n))
        boot = np.exp(logs[idx].mean(axis=1))
        low, high = np.quantile(boot, [0.025, 0.975]) if n > 1 else (np.nan, np.nan)
        th = group["threshold_ms"].to_numpy(dtype=float)
        rows.append(
            (
                method,
                n,
                float(np.exp(logs.mean())),
                float(low),
                float(high),
                float(np.mean(np.isclose(th, rule.grid_ms[-1]))),
                float(np.mean(np.isclose(th, rule.grid_ms[0]))),
            )
        )
    return pd.DataFrame(rows, columns=THRESHOLD_COLUMNS)
