"""`prsr train`: train a learned method (or all of them) with the shared Trainer.

    prsr train --method pixel_recursive --dataset fashion-mnist --profile quick [--seed S] [--resume | --fresh]
    prsr train --method all ...                    # every learned method, in TRAIN_ALL_ORDER (make train-all)
    prsr train --method all --seeds 3 ...          # seeds S, S+1, S+2 (S: --seed or the profile's)
    prsr train --method all --jobs 2 ...           # two trainings at once, each on half the threads
    prsr train --method all --jobs auto ...        # 2 at once on a CPU, one per GPU (make train-all, make demo)
    torchrun --nproc_per_node=2 -m prsr.cli train ...   # DDP: one process per GPU, or gloo on CPU

The run folder is `<runs-dir>/<dataset>/<method>/`; with `--seeds N` the seeds after the first go to
`<runs-dir>/<dataset>/seeds/<seed>/<method>/` (`prsr/pipelines/seeds.py`), every seed with the same
profile and data, one method after the other, seed by seed (with `--jobs N`, up to N at once in that order:
`prsr/pipelines/train_jobs.py`). A folder that already holds a checkpoint is never
overwritten: `--resume` continues it exactly, `--fresh` first renames it to `<method>.old-<timestamp>`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional

import torch

import sr_data
from baselines.registry import get_method, train_order
from prsr.pipelines.seeds import seed_list, seed_root
from prsr.pipelines.train_jobs import auto_lanes, job_command, run_jobs, threads_per_job
from sr_data.paths import default_runs_dir
from sr_models import distributed as dist_utils
from sr_models.checkpoint import prepare_run_dir
from sr_models.profiles import load_profile, method_config
from sr_models.trainer import NonFiniteLossError, Trainer

HELP = "train a learned method (or --method all) with the shared Trainer; writes runs/<dataset>/<method>/"

# `--method all`: the registry's training order (the pixel-recursive model first, then the learned baselines).
TRAIN_ALL_ORDER = train_order()


def add_arguments(parser):
    parser.add_argument(
        "--method",
        required=True,
        metavar="NAME",
        help=f"learned method to train ({', '.join(TRAIN_ALL_ORDER)}) or 'all'",
    )
    parser.add_argument("--dataset", default=None, metavar="NAME", help="dataset (default: the profile's data.dataset)")
    parser.add_argument(
        "--profile",
        default="quick",
        metavar="NAME_OR_YAML",
        help="smoke | quick | paper, or a path to a profile .yaml (default: quick)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the profile's seed)")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="train seeds S..S+N-1 (S = --seed or the profile's); seed S in the usual run folder, the others "
        "in <runs-dir>/<dataset>/seeds/<seed>/ (default 1)",
    )
    parser.add_argument(
        "--jobs",
        type=_jobs_value,
        default=1,
        metavar="N|auto",
        help="train up to N (seed, method) runs at once as separate processes, each on 1/N of the threads "
        "(default 1: one after the other; auto: 2 on a CPU, one per GPU, as make demo does); "
        "logs in <runs-dir>/<dataset>/logs/",
    )
    parser.add_argument("--only-seed", type=int, default=None, help=argparse.SUPPRESS)  # one job of --jobs
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the run folder exactly where it stopped (starts it if there is none)",
    )
    group.add_argument(
        "--fresh", action="store_true", help="rename an existing run folder to <dir>.old-<timestamp>, then start again"
    )
    parser.add_argument(
        "--runs-dir",
        default=default_runs_dir(),
        metavar="DIR",
        help="root of the run folders (default: $PRSR_HOME/runs, else runs)",
    )
    parser.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="folder of the raw data (default: $PRSR_DATA, else the dataset's default folder)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        metavar="N",
        help="override the profile's train.steps (recorded in config.json)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a profile key for this run, e.g. methods.resnet_l2.train.steps=3 "
        "(repeatable; VALUE parsed as YAML; unknown keys are refused)",
    )


def _jobs_value(text: str):
    """`--jobs`' value: 'auto' or an integer (its range is checked where the lanes are made)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}") from None


def _method_class(name: str):
    spec = get_method(name)
    if not spec.learned:
        raise ValueError(
            f"method {name!r} is not learned (nothing to train); learned methods: {', '.join(TRAIN_ALL_ORDER)}"
        )
    try:
        return spec.load_class()
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"method {name!r}: its class {spec.target} cannot be loaded ({exc})") from exc


def _fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def train_one(name: str, args, profile: dict, info, seed: Optional[int] = None) -> dict:
    """Train method `name` per `args` and `profile` with `seed` (default `args.seed`, else the profile's);
    returns the final validation scalars."""
    cls = _method_class(name)
    section = method_config(profile, name)
    train_cfg = dict(section.get("train") or {})
    if args.steps is not None:
        if args.steps < 1:
            raise ValueError(f"--steps must be a positive integer, got {args.steps}")
        train_cfg["steps"] = args.steps
    dataset = args.dataset or profile["data"]["dataset"]
    base_seed = profile["seed"] if args.seed is None else args.seed
    seed = base_seed if seed is None else seed
    limit = (profile.get("data") or {}).get("train_limit")

    # Rank 0 first: it may have to decode the dataset into the cache, which the others then read.
    if info.is_main:
        train = sr_data.load_pairs(dataset, "train", args.data_root)
    dist_utils.barrier(info)
    if not info.is_main:
        train = sr_data.load_pairs(dataset, "train", args.data_root)
    valid = sr_data.load_pairs(dataset, "valid", args.data_root)
    full_n = len(train.lr)
    train = sr_data.first_pairs(train, limit)

    run_dir = seed_root(Path(args.runs_dir) / dataset, seed, base_seed) / name
    if info.is_main and args.fresh:
        moved = prepare_run_dir(run_dir, resume=False, fresh=True)
        if moved is not None:
            print(f"prsr train: moved the old run folder to {moved}")
    dist_utils.barrier(info)

    torch.manual_seed(seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    method = cls.from_profile(profile, train.channels)
    meta = {
        "profile": profile["name"],
        "dataset": dataset,
        "channels": int(train.channels),
        "train_pairs": int(len(train.lr)),
        "train_pairs_available": int(full_n),
        "valid_pairs": int(len(valid.lr)),
        "overrides": {
            **({"steps": args.steps} if args.steps is not None else {}),
            **({"set": list(args.set)} if getattr(args, "set", None) else {}),
        },
    }
    if info.is_main:
        print(
            f"prsr train: {name} on {dataset} ({len(train.lr):,d} training pairs, C={train.channels}), "
            f"profile {profile['name']}, seed {seed}, {info.world_size} process(es) on {info.device} -> {run_dir}"
        )
    trainer = Trainer(
        method, train, valid, run_dir, train_cfg, seed=seed, meta=meta, resume=args.resume, device=info.device
    )
    final = trainer.fit()
    if info.is_main:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in final.items()) or "(no validation data)"
        print(
            f"prsr train: {name} done; wrote {run_dir} "
            "(model.safetensors, config.json, state.pt, log.csv, tb/, samples/)"
        )
        print(f"prsr train: {name} final validation: {shown}")
    return final


def _jobs(args, profile: dict):
    """(base seed, seeds, method names, [(seed, name)] in training order) of `args`."""
    base = profile["seed"] if args.seed is None else args.seed
    seeds = seed_list(base, getattr(args, "seeds", 1))
    only = getattr(args, "only_seed", None)
    if only is not None:
        if only not in seeds:
            raise ValueError(f"--only-seed {only} is not one of the seeds {seeds}")
        seeds = [only]
    names = list(TRAIN_ALL_ORDER) if args.method == "all" else [args.method]
    for name in names:  # fail before hours of training if a method's module is missing
        _method_class(name)
    return base, seeds, names, [(seed, name) for seed in seeds for name in names]  # seed S first


def _run_side_by_side(args, profile: dict) -> int:
    """`--jobs N`: every (seed, method) as its own `prsr train` process, N at a time."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("--jobs runs its own processes; under torchrun leave it at 1")
    base, _, _, jobs = _jobs(args, profile)
    n_seeds = getattr(args, "seeds", 1)
    logs = Path(args.runs_dir) / (args.dataset or profile["data"]["dataset"]) / "logs"

    def command(name: str, seed: int):
        return job_command(args, name, seed, base, n_seeds)

    failed = run_jobs(jobs, command, args.jobs, logs)  # a bad --jobs is refused there before any job starts
    if failed:
        shown = ", ".join(f"{name} seed {seed}" for seed, name in failed)
        print(f"prsr train: error: {shown} failed; `--resume` continues every run", file=sys.stderr)
        return 1
    return 0


def _resolve_auto_jobs(args, profile: dict) -> int:
    """`--jobs auto` -> a number of lanes (`auto_lanes`); 1 under torchrun, whose processes are the lanes."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 1
    lanes = auto_lanes(len(_jobs(args, profile)[3]))
    print(f"prsr train: --jobs auto: {lanes} training(s) at once, {threads_per_job(lanes)} thread(s) each")
    return lanes


def run(args) -> int:
    profile = load_profile(args.profile, overrides=args.set)
    if getattr(args, "jobs", 1) == "auto":
        args.jobs = _resolve_auto_jobs(args, profile)
    if getattr(args, "jobs", 1) != 1:
        return _run_side_by_side(args, profile)
    _, seeds, names, jobs = _jobs(args, profile)
    unit = "run" if len(seeds) > 1 else "method"
    info = dist_utils.setup()
    start = time.perf_counter()
    try:
        for i, (seed, name) in enumerate(jobs):
            if len(jobs) > 1 and info.is_main:
                done = time.perf_counter() - start
                eta = (
                    f"~{_fmt_time(done / i * (len(jobs) - i))} left (mean of the finished {unit}s)"
                    if i
                    else f"ETA after the first {unit}"
                )
                what = f"{name} seed {seed}" if len(seeds) > 1 else name
                print(f"prsr train: [{i + 1}/{len(jobs)}] {what}; {_fmt_time(done)} elapsed, {eta}", flush=True)
            train_one(name, args, profile, info, seed=seed)
        if len(jobs) > 1 and info.is_main:
            seeds_note = f" x {len(seeds)} seeds" if len(seeds) > 1 else ""
            print(
                f"prsr train: all {len(names)} methods{seeds_note} trained in {_fmt_time(time.perf_counter() - start)}"
            )
        dist_utils.finish()
    except NonFiniteLossError as exc:
        print(f"prsr train: error: {exc}", file=sys.stderr)
        return 1
    finally:
        dist_utils.cleanup()
    return 0
