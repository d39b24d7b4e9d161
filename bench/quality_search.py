"""What buys sample quality per CPU-minute (issue 21): each lever alone, then a combination, each a row.

    .venv/bin/python bench/quality_search.py                       # --quick (the default): smoke size, < 1 min
    .venv/bin/python bench/quality_search.py --full [--levers ema_h100 cosine ...] [--combo ema_h100+cosine]
    .venv/bin/python bench/quality_search.py --full --budget-curve --curve-steps 1000 2000 3000 [--combo ...]
    .venv/bin/python bench/quality_search.py --list                  # the levers and their profile overrides

A lever is a list of profile overrides (`--set PATH=VALUE`, docs/quality-search.md). For every config (the
profile as shipped = `baseline`, each lever in `--levers`, each `--combo`) and every training seed (`--seeds
N`: seeds profile.seed .. profile.seed + N - 1; `--set seed=K` starts at K) the script trains `--methods`
(default the pixel-recursive model) with the toolkit's own `prsr train` (the one Trainer), evaluates them with
`prsr.pipelines.evaluate.evaluate` (the Table-1 rows of those methods: samples, test NLL, the machine observer
`metrics.machine_fool_rate` through `prsr eval`'s own code) and writes one row per (config, seed, method):
steps, training minutes (the Trainer's own clock, `state.pt` `elapsed`: steps, validation, grids and
checkpoints), test NLL (bits/dim, `likelihood.csv`), % machine fooled with its 95 % interval per Table-1 row
(pixel-recursive: tau = 1.0 / 0.9 / 0.8 and greedy), and samples/s of the evaluation's prediction (images x
rows / seconds, from `prsr eval`'s own timing line).

`--budget-curve`: ONE run of the first combo (or the baseline) trained to each of `--curve-steps` in turn
(`prsr train --resume --steps S`: the same run continued exactly), each checkpoint evaluated as above: machine
fooled and NLL against training minutes. With a rate schedule the horizon is pinned to the last point
(`lr_decay_steps`), so the earlier points are checkpoints mid-schedule of the longest run.

Files under `--out` (default runs/quality_search/<quick|full>): `<config>/seed<k>/` (run folders and Table 1
of each config), `result.json` per finished (config, seed) -- a rerun reuses it, and an interrupted
training continues (--resume) -- `quality_search.csv` (or `budget_curve.csv`) and the Markdown table printed.
Runs unchanged on CUDA (training and evaluation take CUDA when present). `make bench` runs `bench/*.py`
without arguments, which is this script's quick mode; the real search needs `--full` and the machine to
itself (timings). Quick mode needs the Fashion-MNIST files (`make data`); without them it says so and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prsr.cli import main as prsr_main  # noqa: E402
from prsr.pipelines.evaluate import evaluate  # noqa: E402
from sr_data import load_pairs  # noqa: E402
from sr_data.errors import DataError  # noqa: E402
from sr_models import checkpoint as ckpt  # noqa: E402
from sr_models.profiles import load_profile  # noqa: E402

PR = "methods.pixel_recursive"
Lever = Callable[[dict], List[str]]  # profile -> overrides


def _train(profile: dict) -> dict:
    return profile["methods"]["pixel_recursive"]["train"]


def _model(profile: dict) -> dict:
    return profile["methods"]["pixel_recursive"]["model"]


def _warm(profile: dict) -> int:
    """Warm-up steps: 5 % of the run (200 of quick's 4,000 steps)."""
    return max(1, int(_train(profile)["steps"]) // 20)


def _same_images(profile: dict, batch: int) -> List[str]:
    """Batch `batch` for as many training images as the profile's run (steps x batch kept constant)."""
    images = int(_train(profile)["steps"]) * int(_train(profile)["batch_size"])
    return [f"{PR}.train.batch_size={batch}", f"{PR}.train.steps={max(1, images // batch)}"]


# Levers: the list. Each is tried alone against `baseline` (the profile as shipped).
LEVERS: Dict[str, Lever] = {
    "baseline": lambda p: [],
    # weight averaging: half-lives for a ~1,000-step run (PixelCNN++'s 0.9995 is a half-life of ~1,386 steps)
    "ema_h30": lambda p: [f"{PR}.train.ema_half_life=30"],
    "ema_h100": lambda p: [f"{PR}.train.ema_half_life=100"],
    "ema_h300": lambda p: [f"{PR}.train.ema_half_life=300", f"{PR}.train.ema_start=100"],
    "no_ema": lambda p: [f"{PR}.train.ema_half_life=null"],
    # rate schedule over the run
    "cosine": lambda p: [
        f"{PR}.train.lr_schedule=cosine",
        f"{PR}.train.lr_warmup={_warm(p)}",
        f"{PR}.train.lr_min_factor=0.05",
    ],
    # between cosine (floor 5 %) and constant: the decay stops at 30 % of the rate (the profile's warm-up kept)
    "cosine_floor0.3": lambda p: [
        f"{PR}.train.lr_schedule=cosine",
        f"{PR}.train.lr_warmup={_train(p).get('lr_warmup') or _warm(p)}",
        f"{PR}.train.lr_min_factor=0.3",
    ],
    "linear": lambda p: [f"{PR}.train.lr_schedule=linear", f"{PR}.train.lr_warmup={_warm(p)}"],
    "constant": lambda p: [f"{PR}.train.lr_schedule=constant", f"{PR}.train.lr_warmup=0"],
    "cosine_lr2x": lambda p: [
        f"{PR}.train.lr_schedule=cosine",
        f"{PR}.train.lr_warmup={_warm(p)}",
        f"{PR}.train.lr={2 * _train(p)['lr']}",
    ],
    # the rate of quick before it took cosine_lr2x (Adam 1e-3, warm-up 100): put it first in a --combo to rerun the
    # screens measured from that profile (docs/quality-search.md)
    "lr1e-3": lambda p: [f"{PR}.train.lr=1.0e-3", f"{PR}.train.lr_warmup=100"],
    # quick before it took 2,000 steps at 4e-3: 3,000 steps at Adam 2e-3, warm-up 150 (the cosine_lr2x screens and
    # the rows measured from that profile start here; docs/quality-search.md)
    "quick3000": lambda p: [
        f"{PR}.train.steps=3000",
        f"{PR}.train.lr=2.0e-3",
        f"{PR}.train.lr_warmup=150",
        f"{PR}.train.ema_half_life=100",
    ],
    # quick's earlier 2,000 steps at Adam 4e-3 (warm-up and half-life 100 steps, 5 % of the run)
    "quick2000": lambda p: [f"{PR}.train.steps=2000", f"{PR}.train.lr_warmup=100", f"{PR}.train.ema_half_life=100"],
    # dropout in the prior's gated blocks (PixelCNN++: 0.5)
    "dropout0.1": lambda p: [f"{PR}.model.prior_dropout=0.1"],
    "dropout0.5": lambda p: [f"{PR}.model.prior_dropout=0.5"],
    # batch size at the same number of images seen
    "batch16": lambda p: _same_images(p, 16),
    "batch32": lambda p: _same_images(p, 32),
    "batch64": lambda p: _same_images(p, 64),
    # the prior's width / depth / kernel and head, the conditioning network's share
    "width48": lambda p: [f"{PR}.model.prior_width=48"],
    "layers10": lambda p: [f"{PR}.model.prior_layers=10"],
    "layers4": lambda p: [f"{PR}.model.prior_layers=4"],
    "kernel3": lambda p: [f"{PR}.model.prior_kernel=3"],
    "kernel7": lambda p: [f"{PR}.model.prior_kernel=7"],
    "head512": lambda p: [f"{PR}.model.head_channels=512"],
    "head128": lambda p: [f"{PR}.model.head_channels=128"],
    "cond_blocks4": lambda p: [f"{PR}.model.cond_blocks=4"],
    "cond_blocks1": lambda p: [f"{PR}.model.cond_blocks=1"],
    # the earlier quick's prior (6 gated blocks of 5x5) and its 2,000 steps: with `constant`, that profile
    "prior6x5": lambda p: [f"{PR}.model.prior_layers=6", f"{PR}.model.prior_kernel=5"],
    "steps2000": lambda p: [f"{PR}.train.steps=2000", f"{PR}.train.ema_half_life=100"],
    # the optimiser: the paper's TF-style RMSProp at the paper's rate
    "rmsprop_tf": lambda p: [f"{PR}.train.optimizer=rmsprop_tf", f"{PR}.train.lr=4.0e-4"],
    # throughput: bf16 autocast off (it is on in quick); threads: --threads
    "fp32": lambda p: [f"{PR}.train.bf16=false"],
}
QUICK_LEVERS = ["dropout0.5"]  # quick: plumbing; the combo below covers EMA (with its raw weights) and the schedule
QUICK_COMBO = "ema_h30+cosine"

_PREDICTED = re.compile(r"^(\S+): predicted (.+) in ([0-9.]+) s")


def config_overrides(name: str, profile: dict) -> List[str]:
    """The overrides of config `name`: a lever, or levers joined by '+' (later ones win on a shared key). Each
    lever sees the profile with the earlier ones applied, so `batch32+cosine` warms up over 5 % of 1,000 steps."""
    out: List[str] = []
    for part in name.split("+"):
        if part not in LEVERS:
            raise SystemExit(f"quality_search: unknown lever {part!r}; known: {', '.join(LEVERS)}")
        out += LEVERS[part](load_profile(profile, overrides=out))
    return out


def lever_touches(name: str, profile: str, methods: List[str]) -> bool:
    """Whether lever `name` overrides a key of one of `methods`: the default screen skips the others (every lever
    in LEVERS is the pixel-recursive model's, so `--methods gan` alone would retrain one GAN per lever)."""
    prefixes = tuple(f"methods.{m}." for m in methods)
    return any(s.startswith(prefixes) for s in LEVERS[name](load_profile(profile)))


def _run_cli(argv: List[str]) -> None:
    code = prsr_main(argv)
    if code:
        raise RuntimeError(f"`prsr {' '.join(argv)}` failed with exit code {code}")


@contextlib.contextmanager
def _progress_to(args, path: Path):
    """Training and evaluation chatter (progress bars, prsr's lines) into `path`, unless --progress."""
    if args.progress:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f, contextlib.redirect_stderr(f), contextlib.redirect_stdout(f):
        yield


def train_methods(args, seed: int, sets: List[str], runs: Path, steps: Optional[int] = None) -> None:
    """`prsr train` of each of `args.methods` into `runs` (continuing a run left there: --resume)."""
    for method in args.methods:
        argv = ["train", "--method", method, "--profile", args.profile, "--dataset", args.dataset]
        argv += ["--runs-dir", str(runs), "--seed", str(seed), "--resume"]
        argv += [f"--set={s}" for s in sets] + (["--steps", str(steps)] if steps else [])
        _run_cli(argv)


def raw_weights_copy(args, runs: Path, dst: Path) -> bool:
    """Run folders in `dst` holding the TRAINED weights of the EMA runs in `runs` (model_raw.safetensors as
    model.safetensors), so the same run is evaluated with and without the average. False when no run has EMA."""
    found = False
    for method in args.methods:
        src = runs / args.dataset / method
        if not (src / ckpt.RAW_WEIGHTS).is_file():
            continue
        out = dst / args.dataset / method
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / ckpt.RAW_WEIGHTS, out / ckpt.WEIGHTS)
        for f in (ckpt.CONFIG, ckpt.STATE):
            shutil.copy2(src / f, out / f)
        found = True
    return found


def evaluate_runs(args, name: str, seed: int, sets: List[str], runs: Path) -> list:
    """`prsr eval`'s own pipeline on the run folders in `runs` for `args.methods` -> records (see module doc)."""
    profile = load_profile(args.profile, overrides=sets)
    lines: List[str] = []
    evaluate(args.dataset, profile, runs_dir=runs, methods=list(args.methods), log=lines.append)
    root = runs / args.dataset
    table = pd.read_csv(root / "table1.csv")
    lik = pd.read_csv(root / "likelihood.csv") if (root / "likelihood.csv").is_file() else None
    n_images = int(profile["eval"].get("subset") or 0)
    records = []
    for method in args.methods:
        state = ckpt.load_state(root / method)
        rec = {"config": name, "seed": seed, "method": method, "steps": int(state["step"])}
        rec["train_min"] = float(state["elapsed"]) / 60.0
        nll = lik.loc[lik["method"] == method, "nll_bpd"] if lik is not None else []
        rec["test_nll_bpd"] = float(nll.iloc[0]) if len(nll) else float("nan")
        rec["samples_per_s"] = _samples_per_s(lines, method, n_images)
        rec["weights"] = ckpt.weights_held(root / method / ckpt.WEIGHTS)
        for _, row in table[table["method"].str.startswith(method)].iterrows():
            suffix = row["method"][len(method) :].lstrip("_") or "default"
            for col, key in (("machine_fooled", "fooled"), ("machine_ci_low", "fooled_ci_low")):
                rec[f"{key}_{suffix}"] = row[col]
            rec[f"fooled_ci_high_{suffix}"] = row["machine_ci_high"]
        records.append(rec)
    return records


def _samples_per_s(lines: List[str], method: str, n_images: int) -> float:
    """Images x rows / seconds from `prsr eval`'s line "<method>: predicted <rows> in <s> s" (NaN when reused)."""
    for line in lines:
        m = _PREDICTED.match(line)
        if m and m.group(1) == method:
            return n_images * len(m.group(2).split(", ")) / max(float(m.group(3)), 1e-9)
    return float("nan")


def run_config(args, name: str, seed: int) -> list:
    """One (config, seed): reused from its result.json when finished before, else trained and evaluated."""
    folder = args.out / name.replace("+", "__") / f"seed{seed}"
    done = folder / "result.json"
    if done.is_file():
        print(f"[{name} seed {seed}] reusing {done}", flush=True)
        return json.loads(done.read_text())
    profile = load_profile(args.profile)
    sets = config_overrides(name, profile) + list(args.set)
    print(f"[{name} seed {seed}] {' '.join(sets) or '(the profile as shipped)'}", flush=True)
    t0 = time.perf_counter()
    with _progress_to(args, folder / "progress.log"):
        train_methods(args, seed, sets, folder / "runs")
        records = evaluate_runs(args, name, seed, sets, folder / "runs")
        if args.raw_too and raw_weights_copy(args, folder / "runs", folder / "runs_raw"):
            records += evaluate_runs(args, f"{name}:raw", seed, sets, folder / "runs_raw")
    for r in records:
        r["overrides"] = " ".join(sets)
        r["wall_min"] = (time.perf_counter() - t0) / 60.0
    ckpt.write_json(done, records)
    print(markdown(records), flush=True)
    return records


def budget_curve(args) -> list:
    """One run continued through `args.curve_steps`; each checkpoint copied aside and evaluated."""
    name = args.combo[0] if args.combo else "baseline"
    profile = load_profile(args.profile)
    sets = config_overrides(name, profile) + list(args.set)
    checked = load_profile(args.profile, overrides=sets)
    steps = sorted(args.curve_steps)
    for method in args.methods:
        train = checked["methods"][method].get("train") or {}
        if str(train.get("lr_schedule") or "constant") != "constant" and train.get("lr_decay_steps") is None:
            sets.append(f"methods.{method}.train.lr_decay_steps={steps[-1]}")  # one schedule for the whole curve
    seed = checked["seed"]
    base = args.out / f"curve_{name.replace('+', '__')}"
    records = []
    for s in steps:
        print(f"[curve {name}] training to step {s}, then evaluating", flush=True)
        with _progress_to(args, base / "progress.log"):
            train_methods(args, seed, sets, base / "train", steps=s)
        for method in args.methods:
            src, dst = base / "train" / args.dataset / method, base / f"step{s}" / args.dataset / method
            dst.mkdir(parents=True, exist_ok=True)
            for f in (ckpt.WEIGHTS, ckpt.CONFIG, ckpt.STATE, ckpt.RAW_WEIGHTS):
                if (src / f).is_file():
                    shutil.copy2(src / f, dst / f)
        with _progress_to(args, base / "progress.log"):
            got = evaluate_runs(args, name, seed, sets, base / f"step{s}")
            if args.raw_too and raw_weights_copy(args, base / f"step{s}", base / f"step{s}_raw"):
                got += evaluate_runs(args, f"{name}:raw", seed, sets, base / f"step{s}_raw")
        for r in got:
            r["overrides"] = " ".join(sets)
            records.append(r)
    return records


def _cell(rec: dict, suffix: str) -> str:
    f = rec.get(f"fooled_{suffix}")
    if f is None or pd.isna(f):
        return "-"
    return f"{f:.1f} [{rec[f'fooled_ci_low_{suffix}']:.1f}, {rec[f'fooled_ci_high_{suffix}']:.1f}]"


def markdown(records: list) -> str:
    """The Markdown table: one line per record, then mean (sd) over seeds per config when there are several."""
    suffixes = []
    for r in records:
        suffixes += [k[len("fooled_") :] for k in r if k.startswith("fooled_") and "_ci_" not in k]
    suffixes = list(dict.fromkeys(suffixes))
    head = ["config", "seed", "method", "steps", "train min", "test NLL (bpd)"]
    head += [f"% fooled {s}" for s in suffixes] + ["samples/s (eval)"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in records:
        cells = [r["config"], str(r["seed"]), r["method"], str(r["steps"]), f"{r['train_min']:.2f}"]
        cells += [f"{r['test_nll_bpd']:.3f}"] + [_cell(r, s) for s in suffixes] + [f"{r['samples_per_s']:.1f}"]
        out.append("| " + " | ".join(cells) + " |")
    groups: Dict[tuple, list] = {}
    for r in records:
        groups.setdefault((r["config"], r["method"], r["steps"]), []).append(r)
    for (config, method, steps), rs in groups.items():
        if len(rs) < 2:
            continue

        def ms(key: str) -> str:
            vals = [float(r[key]) for r in rs if key in r and not pd.isna(r[key])]
            return f"{statistics.mean(vals):.3f} ({statistics.stdev(vals):.3f})" if len(vals) > 1 else "-"

        cells = [config, f"mean (sd) of {len(rs)}", method, str(steps), ms("train_min"), ms("test_nll_bpd")]
        cells += [ms(f"fooled_{s}") for s in suffixes] + [ms("samples_per_s")]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke size, well under a minute (the default)")
    mode.add_argument("--full", action="store_true", help="the real search (profile --profile, default quick)")
    p.add_argument("--list", action="store_true", help="print the levers and their overrides, then exit")
    p.add_argument("--profile", default=None, help="profile to start from (quick mode: smoke; full: quick)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--methods", nargs="+", default=["pixel_recursive"], help="learned methods trained per config")
    p.add_argument("--levers", nargs="*", default=None, help="levers screened alone (default: all; quick: dropout0.5)")
    p.add_argument("--combo", action="append", default=None, help="levers joined by '+', e.g. ema_h100+cosine")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="override for every config")
    p.add_argument("--seeds", type=int, default=1, help="training seeds per config (profile seed, +1, ...)")
    p.add_argument("--no-baseline", action="store_true", help="do not run the profile as shipped")
    p.add_argument("--budget-curve", action="store_true", help="one run through --curve-steps instead of the screen")
    p.add_argument("--curve-steps", nargs="+", type=int, default=None, help="default: 1x, 2x, 3x the profile's steps")
    p.add_argument("--threads", type=int, default=None, help="torch threads for training and evaluation")
    p.add_argument("--raw-too", action="store_true", help="EMA configs: also evaluate the same run's raw weights")
    p.add_argument("--progress", action="store_true", help="show progress bars (default: into progress.log)")
    p.add_argument("--out", type=Path, default=None, help="default runs/quality_search/<quick|full>")
    args = p.parse_args(argv)
    args.quick = not args.full
    args.raw_too = args.raw_too or args.quick
    args.profile = args.profile or ("smoke" if args.quick else "quick")
    args.out = args.out or Path("runs/quality_search") / ("quick" if args.quick else "full")
    if args.levers is None:
        every = [k for k in LEVERS if k != "baseline" and lever_touches(k, args.profile, args.methods)]
        args.levers = QUICK_LEVERS if args.quick else every
    if args.combo is None and args.quick:
        args.combo = [QUICK_COMBO]
    args.combo = args.combo or []
    if args.curve_steps is None:
        steps = int(_train(load_profile(args.profile)).get("steps", 1000))
        args.curve_steps = [steps, 2 * steps] if args.quick else [steps, 2 * steps, 3 * steps]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        profile = load_profile(args.profile)
        for name in LEVERS:
            print(f"{name:<14} {' '.join(config_overrides(name, profile)) or '(the profile as shipped)'}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick and args.out.exists():
        shutil.rmtree(args.out)  # quick mode: a fresh check every time
    t0 = time.perf_counter()
    print(
        f"bench/quality_search.py: {'quick' if args.quick else 'full'} mode, profile {args.profile}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CUDA {torch.cuda.is_available()} "
        f"-> {args.out}",
        flush=True,
    )
    try:
        if args.quick:
            load_pairs(args.dataset, "valid")  # DataError when the files are missing: skipped, not failed
        if args.budget_curve or args.quick:
            curve = budget_curve(args)
            _write(args.out / "budget_curve.csv", curve, "budget curve")
        if not args.budget_curve:
            configs = ([] if args.no_baseline else ["baseline"]) + list(args.levers) + list(args.combo)
            first = load_profile(args.profile, overrides=args.set)["seed"]  # `--set seed=K` starts at K
            seeds = [first + k for k in range(args.seeds)]
            records = [r for name in configs for s in seeds for r in run_config(args, name, s)]
            _write(args.out / "quality_search.csv", records, "levers")
    except (DataError, FileNotFoundError) as exc:
        if not args.quick:
            raise
        print(f"bench/quality_search.py: skipped ({exc}); run `make data` first")
        return 0
    print(f"bench/quality_search.py: done in {(time.perf_counter() - t0) / 60:.2f} min")
    return 0


def _write(path: Path, records: list, what: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_csv(path, index=False)
    print(f"\n## {what} ({path})\n\n{markdown(records)}\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
