"""Trainings side by side: `prsr train ... --jobs N` runs its (seed, method) trainings as up to N `prsr train`
processes at once, each with 1/N of this process's torch threads (at least one). `--jobs auto` (the default of
`make train-all` and `make demo`) picks N with `auto_lanes`: 2 on a CPU, one per GPU.

Why: on a 2-core CPU, two one-thread trainings side by side do 1.16-1.31x the steps per second of one two-thread
training (docs/performance.md#training-throughput). The weights are those of a run on the job's thread count
(`OMP_NUM_THREADS=1 prsr train ...` on a 2-core CPU with 2 jobs; tested), not those of a 2-thread run.

Jobs start in the order given (seed by seed, the pixel-recursive model first), each when a lane frees up. Each
job's output goes to `<runs-dir>/<dataset>/logs/train-<method>-seed<k>.log`, appended, so a resumed run keeps its
history. With several GPUs (and CUDA_VISIBLE_DEVICES unset) lane k trains on GPU k mod their number.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import torch

Job = Tuple[int, str]  # (seed, method)


def threads_per_job(n_jobs: int, threads: int | None = None) -> int:
    """`threads` (default: torch's current count) split over `n_jobs` lanes, at least 1 each."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"--jobs must be a positive integer, got {n_jobs!r}")
    return max(1, (torch.get_num_threads() if threads is None else threads) // n_jobs)


def auto_lanes(n_jobs: int, threads: int | None = None, n_gpus: int | None = None) -> int:
    """`--jobs auto`: how many of `n_jobs` trainings to run at once. One per GPU where there are GPUs (so one
    at a time on a single GPU, as without `--jobs`); on a CPU two, each on half of `threads` (default: torch's
    count), or one where there is a single thread. Never more than `n_jobs`.

    Why two on a CPU: on 2-core CPUs two one-thread trainings did 1.16-1.31x the steps per second of one
    two-thread training, and a seed's four `quick` trainings finished 1.14-1.19x sooner (docs/performance.md).
    More lanes on CPUs with more cores are not measured."""
    threads = torch.get_num_threads() if threads is None else threads
    if n_gpus is None:
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    lanes = n_gpus if n_gpus > 0 else (2 if threads >= 2 else 1)
    return max(1, min(lanes, n_jobs))


def job_command(args, name: str, seed: int, base_seed: int, n_seeds: int) -> List[str]:
    """The `prsr train` command line of one job: `args`' options for method `name` and seed `seed` alone."""
    cmd = [sys.executable, "-m", "prsr", "train", "--method", name, "--seed", str(base_seed)]
    cmd += ["--seeds", str(n_seeds), "--only-seed", str(seed), "--profile", str(args.profile)]
    cmd += ["--runs-dir", str(args.runs_dir)]
    for flag, value in (("--dataset", args.dataset), ("--data-root", args.data_root), ("--steps", args.steps)):
        if value is not None:
            cmd += [flag, str(value)]
    cmd += ["--resume"] if args.resume else ["--fresh"] if args.fresh else []
    for override in args.set:
        cmd += ["--set", override]
    return cmd


def job_env(threads: int, lane: int) -> Dict[str, str]:
    """The environment of a job on lane `lane`: `threads` OpenMP/MKL threads, unbuffered output, and one GPU
    per lane where there are several and the user did not choose them."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpus > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = str(lane % n_gpus)
    return env


def log_path(log_dir: Path, name: str, seed: int) -> Path:
    """Where the output of training `name` with `seed` goes."""
    return Path(log_dir) / f"train-{name}-seed{seed}.log"


class _Lanes:
    """The running jobs: Popen -> (lane, job, start time)."""

    def __init__(self, n_lanes: int, log_dir: Path, log: Callable[[str], None]):
        self.n_lanes, self.log_dir, self.log = n_lanes, Path(log_dir), log
        self.threads = threads_per_job(n_lanes)
        self.running: Dict[subprocess.Popen, Tuple[int, Job, float]] = {}

    def start(self, job: Job, command: List[str]) -> None:
        lane = min(set(range(self.n_lanes)) - {lane for lane, _, _ in self.running.values()})
        seed, name = job
        path = log_path(self.log_dir, name, seed)
        with open(path, "ab") as out:  # appended: a resumed run keeps its history; the child holds its own handle
            env = job_env(self.threads, lane)
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.running[proc] = (lane, job, time.perf_counter())
        self.log(f"prsr train: lane {lane}: {name} seed {seed} started ({self.threads} thread(s)); log {path}")

    def reap(self) -> List[Job]:
        """Forget the finished jobs; returns those that failed."""
        failed = []
        for proc in [p for p in self.running if p.poll() is not None]:
            lane, (seed, name), t0 = self.running.pop(proc)
            if proc.returncode == 0:
                self.log(
                    f"prsr train: lane {lane}: {name} seed {seed} done in {(time.perf_counter() - t0) / 60:.1f} min"
                )
            else:
                failed.append((seed, name))
                path = log_path(self.log_dir, name, seed)
                self.log(f"prsr train: lane {lane}: {name} seed {seed} FAILED (exit {proc.returncode}); see {path}")
        return failed


def run_jobs(
    jobs: Sequence[Job],
    command: Callable[[str, int], List[str]],
    n_lanes: int,
    log_dir: Path,
    log: Callable[[str], None] = print,
) -> List[Job]:
    """Run `command(name, seed)` for every (seed, name) in `jobs`, at most `n_lanes` at once, each on
    `threads_per_job(n_lanes)` threads; returns the jobs that failed (exit status != 0). After a failure no new
    job starts and the running ones finish (their checkpoints stay, so `--resume` continues every job)."""
    lanes, waiting, failed = _Lanes(n_lanes, log_dir, log), list(jobs), []
    lanes.log_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        while lanes.running or (waiting and not failed):
            while waiting and not failed and len(lanes.running) < n_lanes:
                seed, name = waiting.pop(0)
                lanes.start((seed, name), command(name, seed))
            time.sleep(0.2)
            failed += lanes.reap()
    finally:  # interrupted (Ctrl-C): stop the children too; `--resume` continues from their last checkpoints
        for proc in lanes.running:
            proc.terminate()
            proc.wait()
    done, minutes = len(jobs) - len(failed) - len(waiting), (time.perf_counter() - t0) / 60
    log(f"prsr train: {done} of {len(jobs)} trainings done in {minutes:.1f} min on {n_lanes} lanes")
    return failed
