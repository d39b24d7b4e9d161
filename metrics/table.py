"""Table 1 assembly: per-image metrics -> one row per method, written as CSV, Markdown and LaTeX.

CSV holds plain numbers (`fooled` and `machine_*` in percent, empty where not defined). Markdown and LaTeX show
"rate ± SE" for % fooled, mark the best value of each metric column in bold (direction from the
metric's `higher_better`), and label fool rates from a simulated study as simulated.

Training seeds (`prsr eval --seeds N`): `table1_seeds.csv` holds one row per (method, seed); `table1.csv`
one row per method with the mean over seeds, `n_seeds` and `<metric>_sd` (sample SD over seeds, empty with
one seed) after today's columns, so readers of the old columns keep working. With N >= 2 the Markdown and
LaTeX cells read "mean ± sd" and the machine interval combines the pair bootstrap with the seed spread
(`metrics.spread.combined_interval`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from .registry import METRICS, TABLE_METRICS
from .spread import combined_interval, seed_means

METRIC_COLUMNS = list(TABLE_METRICS)
MACHINE_COLUMNS = ["machine_fooled", "machine_ci_low", "machine_ci_high"]
TABLE_COLUMNS = ["method", *METRIC_COLUMNS, *MACHINE_COLUMNS, "fooled", "fooled_se", "fooled_source"]
#: The columns each seed gets a spread for (`<col>_sd` in table1.csv).
SPREAD_COLUMNS = [*METRIC_COLUMNS, "machine_fooled"]
#: table1.csv: today's columns, then the seed columns.
SEED_TABLE_COLUMNS = [*TABLE_COLUMNS, "n_seeds", *[f"{c}_sd" for c in SPREAD_COLUMNS]]
#: table1_seeds.csv: one row per (method, seed); `machine_se` is the pair-bootstrap SD of that seed's rate.
PER_SEED_COLUMNS = ["method", "seed", *METRIC_COLUMNS, *MACHINE_COLUMNS, "machine_se"]

# Row labels come from the caller (the method registry sits above this layer): `labels` maps a
# Table-1 row name to its label; a row without one is shown by its name.


def table1_from_metrics(per_image: pd.DataFrame, order: Sequence[str] = ()) -> pd.DataFrame:
    """Mean of every metric per method (rows in `order` first, then any others), with empty fool-rate columns.

    pSNR is averaged over images in dB (the mean of per-image values, not a pooled MSE; an identical
    image's infinite pSNR counts at the metric's cap). Each metric's `summarize` defines its mean.
    """
    means = per_image.groupby("method", sort=False)[METRIC_COLUMNS].agg(
        {m: METRICS[m].summarize for m in METRIC_COLUMNS}
    )
    rows = [m for m in order if m in means.index] + [m for m in means.index if m not in order]
    table = means.loc[rows].reset_index()
    for col in MACHINE_COLUMNS:
        table[col] = np.nan
    table["fooled"] = np.nan
    table["fooled_se"] = np.nan
    table["fooled_source"] = ""
    return table[TABLE_COLUMNS]


def fill_fooled(table: pd.DataFrame, rates: pd.DataFrame) -> pd.DataFrame:
    """Put the study's fool rates (analysis.fool_rates output, fractions) into Table 1 (percent)."""
    table = table.copy()
    source = "simulated" if rates.attrs.get("simulated") else "study"
    by_method = rates.set_index("method")
    for i, method in enumerate(table["method"]):
        if method in by_method.index:
            table.loc[i, "fooled"] = 100.0 * float(by_method.loc[method, "fool_rate"])
            table.loc[i, "fooled_se"] = 100.0 * float(by_method.loc[method, "se"])
            table.loc[i, "fooled_source"] = source
    return table


def fill_machine(table: pd.DataFrame, machine: pd.DataFrame) -> pd.DataFrame:
    """Put the machine observer's rates (`metrics.machine_eval.machine_rates` output, percent) into Table 1.

    Rows of `machine` that are not Table-1 methods (e.g. `golden`) are left out."""
    table = table.copy()
    by_method = machine.set_index("method")
    for i, method in enumerate(table["method"]):
        if method in by_method.index:
            for col in MACHINE_COLUMNS:
                table.loc[i, col] = float(by_method.loc[method, col])
    return table


def combine_seeds(per_seed: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """Table 1 over training seeds.

    per_seed: `PER_SEED_COLUMNS` rows, one per (method, seed); base: the first seed's Table 1 (its row
    order and its study columns `fooled*`, which are not per seed). Returns `SEED_TABLE_COLUMNS`: metric
    columns and `machine_fooled` are means over seeds; `machine_ci_*` the 95 % interval of
    `metrics.spread.combined_interval` (pair bootstrap + seed spread); with one seed the first seed's
    values unchanged.
    """
    summary = seed_means(per_seed, SPREAD_COLUMNS).set_index("method")
    table = base.copy()
    table["n_seeds"] = [int(summary.loc[m, "n_seeds"]) for m in table["method"]]
    for col in SPREAD_COLUMNS:
        table[f"{col}_sd"] = [float(summary.loc[m, f"{col}_sd"]) for m in table["method"]]
    if int(table["n_seeds"].max()) < 2:
        return table[SEED_TABLE_COLUMNS]
    for i, method in enumerate(table["method"]):
        rows = per_seed[per_seed["method"] == method]
        for col in METRIC_COLUMNS:
            table.loc[i, col] = float(summary.loc[method, col])
        rates = rows["machine_fooled"].to_numpy(dtype=float)
        if len(rates) and not np.isnan(rates).any():
            ci = combined_interval(rates, rows["machine_se"].to_numpy(dtype=float), 0.0, 100.0)
            table.loc[i, MACHINE_COLUMNS] = [ci["mean"], ci["ci_low"], ci["ci_high"]]
    return table[SEED_TABLE_COLUMNS]


def _best_rows(table: pd.DataFrame, metric: str) -> set:
    """Index of the best row of a metric column (none when fewer than two rows define it)."""
    values = [float(v) for v in table[metric]]
    if sum(not math.isnan(v) for v in values) < 2:
        return set()
    best = METRICS[metric].best_index(values)
    return {table.index[best]} | {table.index[i] for i, v in enumerate(values) if v == values[best]}


def _fmt(metric: str, value: float) -> str:
    text = METRICS[metric].format(value)
    return text or "–"


def _sd(row, col: str) -> float:
    """The seed SD of `col` in a table1 row, NaN when not there or with one seed."""
    return float(row.get(f"{col}_sd", np.nan)) if int(row.get("n_seeds", 1) or 1) > 1 else float("nan")


def _with_sd(text: str, metric: str, sd: float) -> str:
    return text if np.isnan(sd) or text == "–" else f"{text} ± {METRICS[metric].format(sd)}"


def _formatted_cells(table: pd.DataFrame, bold, labels: Optional[Mapping[str, str]]) -> List[List[str]]:
    best = {m: _best_rows(table, m) for m in METRIC_COLUMNS}
    simulated = (table["fooled_source"] == "simulated").any()
    out = []
    for i, row in table.iterrows():
        cells = [(labels or {}).get(row["method"], row["method"])]
        for m in METRIC_COLUMNS:
            text = _with_sd(_fmt(m, float(row[m])), m, _sd(row, m))
            cells.append(bold(text) if i in best[m] else text)
        if np.isnan(row["machine_fooled"]):
            cells.append("–")
        else:
            sd = _sd(row, "machine_fooled")
            spread = "" if np.isnan(sd) else f" ± {sd:.1f}"
            cells.append(
                f"{row['machine_fooled']:.1f}{spread} [{row['machine_ci_low']:.1f}, {row['machine_ci_high']:.1f}]"
            )
        if np.isnan(row["fooled"]):
            cells.append("–")
        else:
            mark = "*" if simulated else ""
            cells.append(f"{row['fooled']:.1f} ± {row['fooled_se']:.1f}{mark}")
        out.append(cells)
    return out


def to_markdown(table: pd.DataFrame, title: str = "", labels: Optional[Mapping[str, str]] = None) -> str:
    header = ["Method", *[METRICS[m].label for m in METRIC_COLUMNS], "% machine fooled", "% fooled"]
    lines = [f"**{title}**", ""] if title else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |")
    for cells in _formatted_cells(table, lambda s: f"**{s}**", labels):
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    n_seeds = _n_seeds(table)
    interval = "see below" if n_seeds > 1 else "95 % bootstrap CI over pairs"
    lines.append(
        "Means over the evaluation images; best value per column in bold. % machine fooled: held-out pairs a "
        f"cross-validated CNN observer got wrong [{interval}]. "
        "% fooled: rate ± jackknife SE over raters (`prsr analyze`'s `se`)."
    )
    if n_seeds > 1:
        lines.append(
            f"Learned rows: mean ± sample SD over {n_seeds} training seeds (the same evaluation images for every "
            "seed; the machine observer's seed moves with the run's); % machine fooled: mean ± SD over seeds "
            "[95 % interval combining the pair bootstrap and the seed spread, Student's t at the "
            "Welch-Satterthwaite degrees of freedom]."
        )
    if (table["fooled_source"] == "simulated").any():
        lines.append("\\* SIMULATED study: these fool rates come from simulated raters, not people.")
    return "\n".join(lines) + "\n"


def _n_seeds(table: pd.DataFrame) -> int:
    return int(table["n_seeds"].max()) if "n_seeds" in table and len(table) else 1


def _latex_escape(text: str) -> str:
    text = text.replace("τ", "$\\tau$").replace("∞", "$\\infty$").replace("±", "$\\pm$").replace("–", "--")
    return text.replace("_", "\\_").replace("%", "\\%")


def to_latex(table: pd.DataFrame, title: str = "", labels: Optional[Mapping[str, str]] = None) -> str:
    header = ["Method", *[METRICS[m].label for m in METRIC_COLUMNS], "\\% machine fooled", "\\% fooled"]
    lines = ["\\begin{tabular}{l" + "r" * (len(header) - 1) + "}", "\\hline", " & ".join(header) + " \\\\", "\\hline"]
    for cells in _formatted_cells(table, lambda s: f"\\textbf{{{s}}}", labels):
        lines.append(
            " & ".join(
                _latex_escape(c) if not c.startswith("\\textbf") else "\\textbf{" + _latex_escape(c[8:-1]) + "}"
                for c in cells
            )
            + " \\\\"
        )
    lines += ["\\hline", "\\end{tabular}"]
    if title:
        lines.insert(0, f"% {title}")
    if (table["fooled_source"] == "simulated").any():
        lines.append("% * SIMULATED study: fool rates from simulated raters, not people.")
    if _n_seeds(table) > 1:
        lines.append(f"% learned rows: mean $\\pm$ sample SD over {_n_seeds(table)} training seeds")
    return "\n".join(lines) + "\n"


def write_table1(
    table: pd.DataFrame, stem: Path, title: str = "", labels: Optional[Mapping[str, str]] = None
) -> List[Path]:
    """Write `<stem>.csv`, `<stem>.md`, `<stem>.tex`; returns the paths.

    The CSV is written as given (with `combine_seeds`' columns when present); Markdown and LaTeX show
    "mean ± sd" when the table holds more than one seed."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    table.to_csv(paths[0], index=False)
    paths[1].write_text(to_markdown(table, title, labels))
    paths[2].write_text(to_latex(table, title, labels))
    return paths
