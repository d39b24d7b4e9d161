"""`prsr compare ROW_A ROW_B`: do two Table-1 rows differ beyond the spread?

Reads what `prsr eval` wrote (with `--seeds N` or one seed): each seed's per-image `metrics.csv` (the base
seed's in `runs/<dataset>/`, the others in `seeds/<k>/`) and `table1_seeds.csv`. Per metric and seed, the
difference of the two rows is taken on the same evaluation images:

- image metrics and NLL: the mean of the per-image differences A_i - B_i (pSNR capped as in Table 1),
  with the paired resampling SE sd(A_i - B_i) / sqrt(N);
- % machine fooled: the difference of the two rates, with SE sqrt(se_A² + se_B²) from the observer's
  bootstrap over pairs (the two observers are trained separately).

The seeds' differences are combined by `metrics.spread.difference_test`: SE = sqrt(resampling SE² +
seed SD² / R), a two-sided t-test at alpha with Welch-Satterthwaite degrees of freedom (few seeds: wide);
"separated" when the 95 % interval of the difference excludes 0.
With one seed the seed spread is unknown and the answer covers the image resampling only (said so).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd

from metrics.registry import METRICS, TABLE_METRICS
from metrics.spread import difference_test
from prsr.pipelines.seeds import seed_root

COMPARE_COLUMNS = [
    "metric",
    "a",
    "b",
    "diff",
    "se",
    "df",
    "ci_low",
    "ci_high",
    "t",
    "p",
    "separated",
    "n_seeds",
    "test",
]


def _per_image(root: Path, seed: int, base_seed: int, row: str) -> pd.DataFrame:
    path = seed_root(root, seed, base_seed) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `prsr eval` (with the same --seeds) first")
    frame = pd.read_csv(path, dtype={"image_id": str})
    rows = frame[frame["method"] == row]
    if rows.empty:
        known = ", ".join(dict.fromkeys(frame["method"]))
        raise ValueError(f"row {row!r} is not in {path}; rows there: {known}")
    return rows.set_index("image_id")


def _metric_diffs(a: pd.DataFrame, b: pd.DataFrame, metric: str):
    """(mean of A_i - B_i, paired SE) over the images both rows have, or None when the metric is undefined."""
    cap = METRICS[metric].cap
    x, y = a[metric].astype(float), b[metric].astype(float).reindex(a.index)
    if cap is not None:
        x, y = x.clip(upper=cap), y.clip(upper=cap)
    d = (x - y).to_numpy()
    if np.isnan(d).any() or len(d) < 2:
        return None
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def compare_rows(
    runs_dir: str | os.PathLike, dataset: str, row_a: str, row_b: str, alpha: float = 0.05
) -> pd.DataFrame:
    """One line per metric (`COMPARE_COLUMNS`): A - B over the seeds in `table1_seeds.csv`, its SE, interval,
    its degrees of freedom, t, p, whether separated, the number of seeds and the test used."""
    root = Path(runs_dir) / dataset
    seeds_csv = root / "table1_seeds.csv"
    if not seeds_csv.is_file():
        raise FileNotFoundError(f"{seeds_csv} does not exist; run `prsr eval --dataset {dataset}` first")
    per_seed = pd.read_csv(seeds_csv)
    seeds: List[int] = [int(s) for s in dict.fromkeys(per_seed["seed"])]
    out = []
    for metric in TABLE_METRICS:
        diffs, ses = [], []
        for seed in seeds:
            got = _metric_diffs(
                _per_image(root, seed, seeds[0], row_a), _per_image(root, seed, seeds[0], row_b), metric
            )
            if got is not None:
                diffs.append(got[0])
                ses.append(got[1])
        if len(diffs) == len(seeds):
            out.append({"metric": metric, "a": row_a, "b": row_b, **difference_test(diffs, ses, alpha)})
    machine = _machine_diffs(per_seed, row_a, row_b)
    if machine is not None:
        out.append({"metric": "machine_fooled", "a": row_a, "b": row_b, **difference_test(*machine, alpha)})
    return pd.DataFrame(out, columns=COMPARE_COLUMNS)


def _machine_diffs(per_seed: pd.DataFrame, row_a: str, row_b: str):
    """([rate A - rate B per seed], [their bootstrap SEs in quadrature]) in percent, or None without rates."""
    a = per_seed[per_seed["method"] == row_a].set_index("seed")
    b = per_seed[per_seed["method"] == row_b].set_index("seed").reindex(a.index)
    d = (a["machine_fooled"] - b["machine_fooled"]).to_numpy(dtype=float)
    se = np.sqrt(a["machine_se"].to_numpy(dtype=float) ** 2 + b["machine_se"].to_numpy(dtype=float) ** 2)
    if len(d) == 0 or np.isnan(d).any() or np.isnan(se).any():
        return None
    return list(d), list(se)
