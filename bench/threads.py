"""Reproducibility by thread count: the same seed trained and evaluated three times, with 1, 1 and 2 threads.

    .venv/bin/python bench/threads.py [--profile smoke] [--dataset fashion-mnist] [--out /tmp/prsr_threads]

Each run is `prsr train --method all` + `prsr eval` in a fresh process with OMP_NUM_THREADS set. Prints
whether the two 1-thread runs gave identical weights (file bytes and tensors) and an identical table1.csv,
and, for 1 vs 2 threads, how many weight tensors moved (largest change) and each Table-1 cell that moved.
The smoke profile takes ~1 min in all on a free core; `--profile quick` ~1 h.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and would shadow the `metrics` package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import pandas as pd  # noqa: E402
from safetensors import safe_open  # noqa: E402

from baselines.registry import train_order  # noqa: E402

CELLS = ["psnr", "ssim", "ms_ssim", "consistency", "nll_bpd", "machine_fooled"]


def _run(out: Path, threads: int, profile: str, dataset: str) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    common = ["--dataset", dataset, "--profile", profile, "--runs-dir", str(out)]
    for cmd in (["train", "--method", "all", *common], ["eval", *common]):
        done = subprocess.run([sys.executable, "-m", "prsr.cli", "-q", *cmd], env=env, capture_output=True, text=True)
        if done.returncode != 0:  # progress bars are hidden; a failure shows what the command said
            raise SystemExit(f"prsr {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return out / dataset


def _weights_moved(a: Path, b: Path, method: str) -> tuple[bool, int, int, float]:
    """(file bytes equal, tensors that differ, tensors, largest absolute change)."""
    fa, fb = a / method / "model.safetensors", b / method / "model.safetensors"
    same_bytes = fa.read_bytes() == fb.read_bytes()
    with safe_open(str(fa), "pt") as x, safe_open(str(fb), "pt") as y:
        deltas = [float((x.get_tensor(k).double() - y.get_tensor(k).double()).abs().max()) for k in x.keys()]
    return same_bytes, sum(d > 0 for d in deltas), len(deltas), max(deltas)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--out", default="/tmp/prsr_threads")
    args = ap.parse_args()
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    runs = {
        name: _run(Path(args.out) / name, t, args.profile, args.dataset) for name, t in [("1a", 1), ("1b", 1), ("2", 2)]
    }
    tables = {name: pd.read_csv(root / "table1.csv").set_index("method") for name, root in runs.items()}
    same_table = (runs["1a"] / "table1.csv").read_bytes() == (runs["1b"] / "table1.csv").read_bytes()
    print(f"1 vs 1 thread: table1.csv {'identical' if same_table else 'DIFFERS'}")
    for method in train_order():
        same, moved, total, biggest = _weights_moved(runs["1a"], runs["1b"], method)
        print(f"  {method:16s} weights file {'identical' if same else 'differs'}, {moved}/{total} tensors moved")
    print("1 vs 2 threads:")
    for method in train_order():
        _, moved, total, biggest = _weights_moved(runs["1a"], runs["2"], method)
        print(f"  {method:16s} {moved}/{total} weight tensors moved, largest change {biggest:.2e}")
    diff = tables["2"][CELLS] - tables["1a"][CELLS]
    for method, row in diff.iterrows():
        moved = {c: v for c, v in row.items() if pd.notna(v) and v != 0}
        if moved:
            print(
                f"  {method:24s} "
                + ", ".join(f"{c} {tables['1a'].loc[method, c]:.6g} -> {v:+.2e}" for c, v in moved.items())
            )
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
