"""Machine observer (Table 1's `machine_*` columns, written by `prsr eval`) beside the study's fool rates.

The machine rate is the share of held-out pairs a cross-validated CNN observer got wrong
(`metrics.machine_fool_rate`); the human (or simulated) rate is the share of counted study trials in
which raters chose the model's image. Both answer "which of these two is real?", both are fractions
with 95 % intervals, so they sit on one axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional
from urllib.parse import unquote

import numpy as np
import pandas as pd

MACHINE_VS_HUMAN_COLUMNS = [
    "method",
    "machine_fooled",
    "machine_ci_low",
    "machine_ci_high",
    "human_fooled",
    "human_ci_low",
    "human_ci_high",
    "human_source",
]


def find_table1(db_url: Optional[str], explicit: Optional[str | Path] = None) -> Optional[Path]:
    """`explicit` if given (must exist), else a `table1.csv` in the SQLite study file's folder or the folder
    above it (`runs/<dataset>/study/x.db` -> `runs/<dataset>/table1.csv`); None when there is none."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"table1.csv {str(path)!r} does not exist; run `prsr eval` first")
        return path
    if not db_url or not str(db_url).startswith("sqlite:///"):
        return None
    db = Path(unquote(str(db_url)[len("sqlite:///") :].split("?", 1)[0]))  # sqlite:////abs/x.db or sqlite:///rel.db
    for folder in (db.parent, db.parent.parent):
        if (folder / "table1.csv").is_file():
            return folder / "table1.csv"
    return None


def machine_vs_human(fool_rates: pd.DataFrame, table1: pd.DataFrame, *, simulated: bool) -> pd.DataFrame:
    """One row per method of either table: machine and human fool rates in percent with 95 % intervals.

    fool_rates: `analysis.fool_rates` output (fractions); table1: `table1.csv` (machine_* in percent).
    Missing on one side -> NaN. `human_source` is `simulated` or `study`.
    """
    for col in ("method", "machine_fooled", "machine_ci_low", "machine_ci_high"):
        if col not in table1.columns:
            raise ValueError(
                f"table1.csv lacks the column {col!r}; re-run `prsr eval` with an `observer:` profile section"
            )
    machine = table1.set_index("method")[["machine_fooled", "machine_ci_low", "machine_ci_high"]]
    human = (fool_rates.set_index("method")[["fool_rate", "ci_low", "ci_high"]] * 100).rename(
        columns={"fool_rate": "human_fooled", "ci_low": "human_ci_low", "ci_high": "human_ci_high"}
    )
    order = list(table1["method"]) + [m for m in fool_rates["method"] if m not in set(table1["method"])]
    out = machine.join(human, how="outer").reindex(order).rename_axis("method").reset_index()
    out["human_source"] = np.where(out["human_fooled"].notna(), "simulated" if simulated else "study", "")
    return out[MACHINE_VS_HUMAN_COLUMNS]
