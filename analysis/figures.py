"""Figures of the fool-rate analysis (matplotlib, Agg-safe): bars with intervals, rate by temperature,
and the most / least convincing samples. Every figure of a simulated study says SIMULATED in its title."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)  # headless by default; a notebook's inline backend still wins
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.fool_rates import temperature_of  # noqa: E402

SIMULATED_LABEL = "SIMULATED study (not human data)"


def _title(text: str, simulated: bool) -> str:
    return f"{text}\n{SIMULATED_LABEL}" if simulated else text


def fool_rate_bars(table: pd.DataFrame, *, simulated: bool, ax=None):
    """Bar chart of `fool_rates.csv` rows: fool rate (%) with the 95 % bootstrap interval over raters as
    error bars, the GLMM rate and interval as a marker beside each bar. Returns the figure."""
    data = table.dropna(subset=["fool_rate"])
    if data.empty:
        raise ValueError("no method has counted trials: nothing to plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.9 * len(data) + 2.0, 4.2))
    x = np.arange(len(data))
    rate = 100 * data["fool_rate"].to_numpy()
    err = np.vstack([rate - 100 * data["ci_low"].to_numpy(), 100 * data["ci_high"].to_numpy() - rate])
    ax.bar(x, rate, width=0.6, color="#4C72B0", label="fool rate, 95 % bootstrap CI over raters")
    ax.errorbar(x, rate, yerr=err, fmt="none", ecolor="black", capsize=5, lw=1.2)
    if data["glmm_rate"].notna().any():
        g = 100 * data["glmm_rate"].to_numpy()
        gerr = np.vstack([g - 100 * data["glmm_ci_low"].to_numpy(), 100 * data["glmm_ci_high"].to_numpy() - g])
        ax.errorbar(
            x + 0.38,
            g,
            yerr=gerr,
            fmt="D",
            color="#DD8452",
            ms=4,
            capsize=3,
            lw=1,
            label="GLMM check (rater x image effects)",
        )
    labels = [f"{m}\n{n} raters, {t} trials" for m, n, t in zip(data["method"], data["raters_kept"], data["trials"])]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("model image chosen as real (%)")
    highs = 100 * data[["ci_high", "glmm_ci_high"]].to_numpy(dtype=float)
    top = float(np.nanmax(highs)) if np.isfinite(highs).any() else 0.0  # no interval at all: a study without answers
    ax.set_ylim(0, max(60.0, top * 1.15))
    ax.axhline(50, color="grey", ls=":", lw=1)
    ax.text(len(data) - 0.5, 50.5, "indistinguishable (50 %)", ha="right", va="bottom", fontsize=7, color="grey")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(_title("Fool rate per method", simulated))
    ax.figure.tight_layout()
    return ax.figure


def fool_rate_by_temperature(table: pd.DataFrame, *, simulated: bool, ax=None):
    """Fool rate (%) against sampling temperature for the `..._t<T>` methods, with bootstrap intervals."""
    temps = table["method"].map(temperature_of)
    data = table[temps.notna() & table["fool_rate"].notna()].assign(temperature=temps).sort_values("temperature")
    if data.empty:
        raise ValueError("no method with a temperature (names like pixel_recursive_t0.9) has counted trials")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    rate = 100 * data["fool_rate"].to_numpy()
    err = np.vstack([rate - 100 * data["ci_low"].to_numpy(), 100 * data["ci_high"].to_numpy() - rate])
    ax.errorbar(data["temperature"], rate, yerr=err, fmt="o-", capsize=4)
    ax.set_xlabel("sampling temperature τ")
    ax.set_ylabel("fool rate (%)")
    ax.set_title(_title("Fool rate by temperature", simulated))
    ax.figure.tight_layout()
    return ax.figure


def image_pairs(pairs: list[tuple[str, np.ndarray, np.ndarray]], *, title: str, simulated: bool):
    """One column per (label, truth, model) pair, truth on top and the model's image below.

    truth, model: uint8 [H, W, C] (C = 1 or 3). Returns the figure.
    """
    if not pairs:
        raise ValueError("no image pairs to show")
    fig, axes = plt.subplots(2, len(pairs), figsize=(1.5 * len(pairs) + 0.6, 3.6), squeeze=False)
    for col, (label, truth, model) in enumerate(pairs):
        for row, img in enumerate((truth, model)):
            ax = axes[row, col]
            img = np.asarray(img)
            ax.imshow(
                img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img,
                cmap="gray",
                vmin=0,
                vmax=255,
                interpolation="nearest",
            )
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(label, fontsize=8)
        axes[0, 0].set_ylabel("truth", fontsize=8)
        axes[1, 0].set_ylabel("model", fontsize=8)
    fig.suptitle(_title(title, simulated), fontsize=9)
    fig.tight_layout()
    return fig


def machine_vs_human_bars(table: pd.DataFrame, *, simulated: bool, ax=None):
    """Paired bars per method: the machine observer's fool rate and the human (or simulated) fool rate, in
    percent, each with its 95 % interval. table: `analysis.machine.machine_vs_human` output. Returns the figure."""
    data = table[table["machine_fooled"].notna() | table["human_fooled"].notna()]
    if data.empty:
        raise ValueError("no method has a machine or a human fool rate: nothing to plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * len(data) + 2.5, 4.2))
    x = np.arange(len(data))
    human_label = "simulated raters (SIMULATED)" if simulated else "human raters"
    for offset, prefix, color, label in (
        (-0.2, "machine", "#55A868", "machine observer, 95 % CI over pairs"),
        (0.2, "human", "#4C72B0", f"{human_label}, 95 % CI over raters"),
    ):
        rate = data[f"{prefix}_fooled"].to_numpy(dtype=float)
        err = np.vstack(
            [
                rate - data[f"{prefix}_ci_low"].to_numpy(dtype=float),
                data[f"{prefix}_ci_high"].to_numpy(dtype=float) - rate,
            ]
        )
        ax.bar(x + offset, np.nan_to_num(rate), width=0.4, color=color, label=label)
        ax.errorbar(x + offset, rate, yerr=err, fmt="none", ecolor="black", capsize=3, lw=1)
    ax.set_xticks(x, list(data["method"]), fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("model image judged real (%)")
    ax.set_ylim(0, 60)
    ax.axhline(50, color="grey", ls=":", lw=1)
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title(_title("Machine observer vs raters", simulated))
    ax.figure.tight_layout()
    return ax.figure
