"""Print the `prsr compare` verdicts table of docs/results.md from a multi-seed `prsr eval` run.

Usage: .venv/bin/python scripts/compare_table.py [RUNS_DIR] [DATASET]   (default: runs fashion-mnist)

Each line is one ordering that docs/results.md § Compared with the paper states: the difference A − B of four
metrics with the verdict of `prsr compare A B` (Student's t, Welch–Satterthwaite degrees of freedom, 5 %);
p is shown where it lies between 0.01 and 0.2. Reads only what `prsr eval --seeds N` wrote.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from prsr.pipelines.compare import compare_rows  # noqa: E402

LABELS = {
    "resnet_l2": "ResNet-L2",
    "pixel_ce_mean": "per-pixel CE (mean)",
    "pixel_ce_argmax": "per-pixel CE (argmax)",
    "bicubic": "bicubic",
    "nearest": "nearest N.",
    "gan": "GAN",
    "pixel_recursive_greedy": "greedy",
    **{f"pixel_recursive_t{t}": f"samples τ = {t}" for t in ("1.0", "0.9", "0.8")},
}
SAMPLES = [f"pixel_recursive_t{t}" for t in ("1.0", "0.9", "0.8")]
PAIRS = (
    [("resnet_l2", b) for b in ["pixel_ce_mean", "bicubic", "gan", *SAMPLES]]
    + [("bicubic", b) for b in ["nearest", "gan", *SAMPLES, "pixel_recursive_greedy"]]
    + [("pixel_recursive_t1.0", "pixel_recursive_greedy"), ("pixel_recursive_greedy", "gan")]
    + [(s, "gan") for s in SAMPLES]
    + [(s, "nearest") for s in SAMPLES]
    + [(SAMPLES[0], SAMPLES[1]), (SAMPLES[1], SAMPLES[2]), (SAMPLES[0], SAMPLES[2])]
    + [("pixel_recursive_t1.0", "pixel_ce_argmax")]
)
COLUMNS = {  # metric -> (heading, decimals, unit)
    "psnr": ("pSNR", 2, " dB"),
    "ssim": ("SSIM", 3, ""),
    "consistency": ("consistency", 5, ""),
    "machine_fooled": ("% machine fooled", 1, ""),
}


def cell(diff: float, p: float, separated: bool, digits: int, unit: str) -> str:
    """'+0.55 dB, separated (p 0.026)': the signed difference, the verdict, p where 0.01 <= p < 0.2."""
    text = f"{diff:+.{digits}f}"
    if float(text) == 0:
        text = f"{0:.{digits}f}"
    text = text.replace("-", "−") + unit + (", separated" if separated else ", not separated")
    return text + (f" (p {p:.2g})" if 0.01 <= p < 0.2 else "")


def table(runs_dir: str, dataset: str) -> str:
    """The markdown table: one line per pair in PAIRS, one cell per metric in COLUMNS."""
    lines = ["| rows | " + " | ".join(name for name, _, _ in COLUMNS.values()) + " |"]
    lines.append("| --- " * (len(COLUMNS) + 1) + "|")
    for a, b in PAIRS:
        result = compare_rows(runs_dir, dataset, a, b).set_index("metric")
        cells = [cell(*result.loc[m, ["diff", "p", "separated"]], d, u) for m, (_, d, u) in COLUMNS.items()]
        lines.append(f"| {LABELS[a]} − {LABELS[b]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    args = sys.argv[1:]
    print(table(args[0] if args else "runs", args[1] if len(args) > 1 else "fashion-mnist"))
