"""Cost and seed-spread of the machine observer (`metrics.machine_fool_rate`) at a profile's settings.

    .venv/bin/python bench/observer.py [--profile quick] [--predictions runs/fashion-mnist/predictions]
                                       [--rows bicubic,resnet_l2] [--seeds 3]

Per row: the machine fool rate and 95 % bootstrap interval for seeds 0..S-1, the SD of the rate across seeds
(the re-training variability the bootstrap over pairs does NOT include), seconds per observer run, and the
ratio of that time to the profile's per-row budget (30 s; `make eval` in quick must stay <= 10 min for
11 rows). Without saved predictions it uses the Fashion-MNIST test split: real = the first N images, rows =
bicubic x4 of their 8x8 inputs and "other real images" (the next N). Prints `uptime`'s load average: on a
shared machine the seconds are only comparable at the same load.
"""

from __future__ import annotations

import argparse
import os
import sys

# Run as a script, this file's folder comes first on sys.path and this file would shadow the `metrics` package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import numpy as np  # noqa: E402
import torch  # noqa: E402

import metrics  # noqa: E402
import sr_data  # noqa: E402
from metrics.machine_eval import observer_settings  # noqa: E402
from sr_models.profiles import load_profile  # noqa: E402  (the bench may read profiles; metrics may not)

BUDGET_S = 30.0


def _rows_from_test(n: int):
    hr = np.array(sr_data.load_pairs("fashion-mnist", "test").hr[: 2 * n])
    real = hr[:n]
    bic = sr_data.to_uint8(sr_data.upsample(sr_data.downsample(sr_data.to_float(torch.from_numpy(real)), 4), 4)).numpy()
    return real, {"bicubic": bic, "other_real": hr[n:]}


def _rows_from_predictions(folder: str, names):
    with np.load(os.path.join(folder, "truth.npz")) as z:
        real = z["hr"]
    names = names or sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".npz") and f != "truth.npz")
    rows = {}
    for name in names:
        with np.load(os.path.join(folder, f"{name}.npz")) as z:
            rows[name] = z["sr"]
    return real, rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--predictions", default=None, help="a predictions/ folder written by `prsr eval`")
    ap.add_argument("--rows", default=None, help="comma-separated rows (default: every saved row)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=1000, help="pairs when no --predictions (default 1000)")
    args = ap.parse_args()
    cfg = observer_settings(load_profile(args.profile).get("observer"))
    if args.predictions:
        real, rows = _rows_from_predictions(args.predictions, args.rows.split(",") if args.rows else None)
    else:
        real, rows = _rows_from_test(args.pairs)
    print(
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
        f"torch threads {torch.get_num_threads()}; profile {args.profile}: {cfg}; {len(real)} pairs"
    )
    print("row, seed rates % [CI], SD across seeds (points), mean seconds, seconds / 30 s budget")
    for name, fake in rows.items():
        runs = [metrics.machine_fool_rate(real, fake, seed=s, progress=False, **cfg) for s in range(args.seeds)]
        rates = np.array([100 * r["fooled"] for r in runs])
        secs = float(np.mean([r["seconds"] for r in runs]))
        cis = " ".join(f"{100 * r['fooled']:.1f}[{100 * r['ci_low']:.1f},{100 * r['ci_high']:.1f}]" for r in runs)
        sd = float(rates.std(ddof=1)) if len(rates) > 1 else float("nan")
        print(f"{name:24s} {cis}  sd {sd:.2f}  {secs:.1f} s  ratio {secs / BUDGET_S:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
