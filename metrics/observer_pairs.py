"""Per-pair outcomes of the machine observer: `observer_pairs.csv`, written by `prsr eval` beside `observer.csv`.

One row per (Table-1 row, evaluation pair): `row` (the Table-1 row / study method name, or `golden`),
`image_id` (the evaluation image id of `truth.npz`), `score_real` and `score_fake` (the observer's
realness logits for the ground truth and the method's output, from the observer trained on the other
folds, so never on that pair), `fooled` (1 when score_fake > score_real, 1/2 on a tie, else 0; its mean
per row is `observer.csv`'s `machine_fooled` / 100). `analysis.per_image` ranks images by
`score_fake - score_real` to compare with people per image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sr_data.files import atomic_write_text

OBSERVER_PAIR_COLUMNS = ["row", "image_id", "score_real", "score_fake", "fooled"]


def observer_pairs(results: dict, ids) -> pd.DataFrame:
    """`OBSERVER_PAIR_COLUMNS` from `{row: machine_fool_rate result}` (with `score_real` / `score_fake`).

    ids: the N evaluation image ids, in the order of the pairs the observer was given."""
    ids = [str(i) for i in np.asarray(ids).tolist()]
    frames = []
    for name, result in results.items():
        real = np.asarray(result["score_real"], dtype=float)
        fake = np.asarray(result["score_fake"], dtype=float)
        if real.shape != (len(ids),) or fake.shape != (len(ids),):
            raise ValueError(f"observer row {name!r}: {real.shape[0]} pair scores for {len(ids)} image ids")
        fooled = (fake > real).astype(float) + 0.5 * (fake == real)
        frames.append(pd.DataFrame(dict(row=name, image_id=ids, score_real=real, score_fake=fake, fooled=fooled)))
    if not frames:
        return pd.DataFrame(columns=OBSERVER_PAIR_COLUMNS)
    return pd.concat(frames, ignore_index=True)[OBSERVER_PAIR_COLUMNS]


def write_observer_pairs(path: str | Path, machine: pd.DataFrame, ids) -> Path:
    """Write `observer_pairs.csv` from `machine_rates`' table (its `attrs["results"]`) atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, observer_pairs(machine.attrs.get("results", {}), ids).to_csv(index=False))
    return path
