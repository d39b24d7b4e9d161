"""Per image: fool rates with counts, the images that fool most and least, and people vs the machine observer.

- `per_image_table(result)`: one row per (method, image) with counted trials: `method, image_id, trials,
  fooled, fool_rate` (`per_image.csv`).
- `image_extremes(per_image, k, min_trials)`: per method the `k` images that fooled most and least often
  among images with at least `min_trials` counted trials (as the paper's appendix D ranks them):
  `method, which (most | least), rank, image_id, trials, fooled, fool_rate` (`image_extremes.csv`).
- `human_machine_agreement(per_image, observer_pairs)`: per method, Spearman's rank correlation between
  the people's per-image fool rate and the machine observer's margin `score_fake - score_real` (from
  `observer_pairs.csv`, written by `prsr eval`), over the images both saw, with a 95 % percentile
  bootstrap interval over those images (`agreement.csv`: `method, images, spearman, ci_low, ci_high`).
  With ~1-3 trials per image a per-image human rate is coarse, so expect modest correlations even for a
  good observer; the interval says how much the images allow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from analysis.bootstrap import method_rng
from analysis.fool_rates import Analysis, per_image_rates

PER_IMAGE_COLUMNS = ["method", "image_id", "trials", "fooled", "fool_rate"]
EXTREME_COLUMNS = ["method", "which", "rank", "image_id", "trials", "fooled", "fool_rate"]
AGREEMENT_COLUMNS = ["method", "images", "spearman", "ci_low", "ci_high"]


def per_image_table(result: Analysis) -> pd.DataFrame:
    """`PER_IMAGE_COLUMNS`, image ids as text, methods in the analysis' order, most fooling image first."""
    table = per_image_rates(result)
    table["image_id"] = table["image_id"].astype(str)
    order = {m: i for i, m in enumerate(result.fool_rates["method"])}
    table = table.assign(_o=table["method"].map(order)).sort_values(
        ["_o", "fool_rate", "trials", "image_id"], ascending=[True, False, False, True]
    )
    return table.drop(columns="_o").reset_index(drop=True)[PER_IMAGE_COLUMNS]


def image_extremes(per_image: pd.DataFrame, k: int = 5, min_trials: int = 2) -> pd.DataFrame:
    """The `k` most and `k` least fooling images per method (ties: more trials first, then image id)."""
    rows = []
    for method, mine in per_image[per_image["trials"] >= min_trials].groupby("method", sort=False):
        most = mine.sort_values(["fool_rate", "trials", "image_id"], ascending=[False, False, True]).head(k)
        least = mine.sort_values(["fool_rate", "trials", "image_id"], ascending=[True, False, True]).head(k)
        for which, pick in (("most", most), ("least", least)):
            for rank, r in enumerate(pick.itertuples(), start=1):
                rows.append((method, which, rank, r.image_id, r.trials, r.fooled, r.fool_rate))
    return pd.DataFrame(rows, columns=EXTREME_COLUMNS)


def read_observer_pairs(table1: str | Path) -> pd.DataFrame | None:
    """`observer_pairs.csv` beside a `table1.csv` (image ids as text), or None when `prsr eval` wrote none."""
    path = Path(table1).with_name("observer_pairs.csv")
    return pd.read_csv(path, dtype={"image_id": str}) if path.is_file() else None


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair: x, y float [B, n] -> float [B] (average ranks for ties; NaN if constant)."""
    rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(axis=1) / den, np.nan)


def human_machine_agreement(
    per_image: pd.DataFrame, observer_pairs: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0, min_images: int = 5
) -> pd.DataFrame:
    """`AGREEMENT_COLUMNS` per method seen by both (NaN rho where fewer than `min_images` shared images).

    per_image: `per_image_table`; observer_pairs: `observer_pairs.csv` (`row` = the method's name)."""
    machine = observer_pairs.assign(margin=observer_pairs["score_fake"] - observer_pairs["score_real"])
    machine = machine.assign(image_id=machine["image_id"].astype(str))
    rows = []
    for method, mine in per_image.groupby("method", sort=False):
        both = mine.merge(machine[machine["row"] == method][["image_id", "margin"]], on="image_id")
        both = both.dropna(subset=["margin"])
        n = len(both)
        if n < min_images:
            rows.append((method, n, np.nan, np.nan, np.nan))
            continue
        x, y = both["fool_rate"].to_numpy(float), both["margin"].to_numpy(float)
        rho = float(_spearman_rows(x[None], y[None])[0])
        idx = method_rng(seed, method).integers(0, n, size=(int(n_boot), n))
        boot = _spearman_rows(x[idx], y[idx])
        lo, hi = np.nanquantile(boot, [0.025, 0.975])
        rows.append((method, n, rho, float(lo), float(hi)))
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
