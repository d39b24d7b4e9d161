"""Cost and seed-spread of the machine observer (`metrics.machine_fool_rate`) at a profile's settings, and
the coverage of its interval on real-vs-real pairs.

    .venv/bin/python bench/observer.py [--profile quick] [--predictions runs/fashion-mnist/predictions]
                                       [--rows bicubic,resnet_l2] [--seeds 3]
    .venv/bin/python bench/observer.py --mode coverage [--reps 40] [--seeds 3] [--pairs 250] [--steps 50]

`--mode coverage` (quick by default: 250 pairs, 50 steps per fold, the profile's other settings; ~10 min on
one free core, 28 min at load average 5): each repetition draws 2 x pairs distinct Fashion-MNIST test images,
"real" the first half, "fake" the second (disjoint images, so nothing real in one pair is fake in another, and
the true fool rate is 50 %), and trains the observer with `--seeds` seeds. It reports how often 50 % lies
inside (a) the pair bootstrap interval of one observer and (b) the interval of
`metrics.observer.machine_fool_rate_seeds` (pair bootstrap + observer-seed spread), their mean widths and the
ratio, and draws every interval in `--figure` (default docs/images/observer_coverage.png).

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
from metrics.observer import machine_fool_rate_seeds  # noqa: E402
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


def coverage(cfg: dict, reps: int, seeds: int, pairs: int, figure: str) -> dict:
    """Real-vs-real repetitions -> coverage of 50 % and mean widths (points) of the two intervals."""
    hr = np.array(sr_data.load_pairs("fashion-mnist", "test").hr)
    if 2 * pairs > len(hr):
        raise ValueError(f"--pairs {pairs}: the test split holds only {len(hr)} images (need 2 x pairs)")
    one, multi = [], []
    for rep in range(reps):
        pick = np.random.default_rng([rep, 0xC0FE]).permutation(len(hr))[: 2 * pairs]
        real, fake = hr[pick[:pairs]], hr[pick[pairs:]]
        got = machine_fool_rate_seeds(real, fake, seeds=[1000 * rep + j for j in range(seeds)], progress=False, **cfg)
        first = got["per_seed"][0]
        one.append((100 * first["fooled"], 100 * first["ci_low"], 100 * first["ci_high"]))
        multi.append((100 * got["fooled"], 100 * got["ci_low"], 100 * got["ci_high"], 100 * got["sd_seed"]))
        print(
            f"rep {rep:3d}: one observer {one[-1][0]:.1f} [{one[-1][1]:.1f}, {one[-1][2]:.1f}]   "
            f"{seeds} observers {multi[-1][0]:.1f} [{multi[-1][1]:.1f}, {multi[-1][2]:.1f}] sd {multi[-1][3]:.1f}",
            flush=True,
        )
    one, multi = np.array(one), np.array(multi)
    out = dict(
        reps=reps,
        cover_pairs=float(np.mean((one[:, 1] <= 50) & (50 <= one[:, 2]))),
        cover_combined=float(np.mean((multi[:, 1] <= 50) & (50 <= multi[:, 2]))),
        width_pairs=float(np.mean(one[:, 2] - one[:, 1])),
        width_combined=float(np.mean(multi[:, 2] - multi[:, 1])),
        sd_reps_one=float(one[:, 0].std(ddof=1)),
        sd_reps_mean=float(multi[:, 0].std(ddof=1)),
        mean_rate=float(multi[:, 0].mean()),
        mean_sd_seed=float(np.nanmean(multi[:, 3])),
    )
    _coverage_figure(one, multi, out, seeds, pairs, figure)
    return out


def _coverage_figure(one, multi, out: dict, seeds: int, pairs: int, path: str) -> None:
    import matplotlib  # noqa: PLC0415  (optional plotting, only in this mode)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=120)
    x = np.arange(len(one))
    ax.errorbar(
        x - 0.15,
        one[:, 0],
        yerr=[one[:, 0] - one[:, 1], one[:, 2] - one[:, 0]],
        fmt="o",
        ms=3,
        color="tab:gray",
        label=f"1 observer, pair bootstrap: covers {100 * out['cover_pairs']:.0f} %",
    )
    ax.errorbar(
        x + 0.15,
        multi[:, 0],
        yerr=[multi[:, 0] - multi[:, 1], multi[:, 2] - multi[:, 0]],
        fmt="o",
        ms=3,
        color="tab:blue",
        label=f"{seeds} observers, bootstrap + seed spread: covers "
        f"{100 * out['cover_combined']:.0f} %, width x{out['width_combined'] / out['width_pairs']:.2f}",
    )
    ax.axhline(50, color="k", lw=0.8)
    ax.set_xlabel("repetition (new disjoint real/real split, new observer seeds)")
    ax.set_ylabel("% machine fooled, 95 % interval")
    ax.set_title(f"Machine observer on real vs real ({pairs} pairs): the true rate is 50 %", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    print(f"wrote {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["spread", "coverage"], default="spread")
    ap.add_argument("--reps", type=int, default=40, help="coverage: repetitions (default 40)")
    ap.add_argument(
        "--steps", type=int, default=None, help="observer steps per fold (default: coverage 50, else the profile's)"
    )
    ap.add_argument("--figure", default="docs/images/observer_coverage.png", help="coverage: the figure's path")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--predictions", default=None, help="a predictions/ folder written by `prsr eval`")
    ap.add_argument("--rows", default=None, help="comma-separated rows (default: every saved row)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=None, help="pairs when no --predictions (default 1000; coverage 250)")
    args = ap.parse_args()
    cfg = observer_settings(load_profile(args.profile).get("observer"))
    if args.mode == "coverage":
        cfg["steps"] = args.steps or 50
        print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; torch threads {torch.get_num_threads()}")
        print(f"coverage: {args.reps} reps x {args.seeds} observer seeds, {args.pairs or 250} pairs, settings {cfg}")
        out = coverage(cfg, args.reps, args.seeds, args.pairs or 250, args.figure)
        print(
            f"coverage of 50 %: one observer's pair bootstrap {100 * out['cover_pairs']:.1f} %, "
            f"{args.seeds} observers with the seed spread {100 * out['cover_combined']:.1f} % (target 88-99 %); "
            f"mean width {out['width_pairs']:.1f} vs {out['width_combined']:.1f} points "
            f"(x{out['width_combined'] / out['width_pairs']:.2f}, target <= 1.6); SD over reps of one observer's "
            f"rate {out['sd_reps_one']:.2f}, of the {args.seeds}-seed mean {out['sd_reps_mean']:.2f}; mean rate "
            f"{out['mean_rate']:.1f} %, mean SD over observer seeds {out['mean_sd_seed']:.2f}"
        )
        print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        return 0
    if args.steps:
        cfg["steps"] = args.steps
    if args.predictions:
        real, rows = _rows_from_predictions(args.predictions, args.rows.split(",") if args.rows else None)
    else:
        real, rows = _rows_from_test(args.pairs or 1000)
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
