"""Where the runs and predictions of each training seed live (`prsr train/eval --seeds N`).

Seed S (the profile's seed, or `--seed`) keeps the single-run paths, so every reader of one run keeps
working on it: `runs/<dataset>/<method>/`, `runs/<dataset>/predictions/<row>.npz`, `metrics.csv`, ...
Every further seed k = S+1 .. S+N-1 has the same layout under `runs/<dataset>/seeds/<k>/`:

    runs/<dataset>/seeds/<k>/<method>/                     the run folder (model.safetensors, config.json, ...)
    runs/<dataset>/seeds/<k>/predictions/<row>.npz         the learned rows' predictions of the same images
    runs/<dataset>/seeds/<k>/metrics.csv, observer.csv     per-image metrics and machine observer of seed k

The evaluation images (`predictions/truth.npz`) are seed S's: one copy, the same for every seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

SEEDS_DIR = "seeds"


def seed_list(base_seed: int, n_seeds: int) -> List[int]:
    """[S, S+1, ..., S+N-1]; N must be a positive integer."""
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"--seeds must be a positive integer, got {n_seeds!r}")
    return [base_seed + i for i in range(n_seeds)]


def seed_root(dataset_root: str | os.PathLike, seed: int, base_seed: int) -> Path:
    """The folder that plays `runs/<dataset>/` for `seed`: itself for the base seed, else `seeds/<seed>/`."""
    root = Path(dataset_root)
    return root if seed == base_seed else root / SEEDS_DIR / str(seed)
