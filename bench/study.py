"""Latency of recording a trial with 50 raters answering concurrently, as fast as the store allows.

Each of 50 threads enrols one rater and loops `next_trial` -> `record_answer` with no pause; the
time of every `record_answer` call (one committed transaction) is collected. Runs on a SQLite file
(WAL) and on a throw-away PostgreSQL 15 server (like the tests' fixture). Goal: p95 < 50 ms.

With 50 closed-loop clients and no pause, latency is queueing: about clients / throughput (Little's
law), so on a small shared CPU it measures the machine as much as the store. The paced run has every
rater answer once per `--pace-ms` (a real rater needs at least the 0.5 s fixation + 1 s exposure +
a reaction), which is the load a real study puts on the store.

    .venv/bin/python bench/study.py [--raters 50] [--trials 30] [--pace-ms 1500] [--paced-trials 8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from study_app import store
from study_app.builder import init_study
from study_app.db import dispose_engine, get_engine
from study_app.demo import write_demo_predictions
from study_app.pgserver import ThrowawayPostgres


def run(url: str, folder: Path, n_raters: int, n_trials: int, pace_ms: float = 0.0) -> dict:
    init_study(folder, url, methods=["resnet_l2", "gan"], raters_per_method=(n_raters + 1) // 2,
               n_test=n_trials - 2, n_practice=2, n_golden=2, seed=0)
    engine = get_engine(url)
    barrier = threading.Barrier(n_raters)
    record_ms: list[float] = []
    issue_ms: list[float] = []
    lock = threading.Lock()

    def rater(k: int) -> None:
        pid = f"bench{k:03d}"
        store.enrol(engine, pid)
        mine_r, mine_i = [], []
        barrier.wait()
        while True:
            t0 = time.perf_counter()
            t = store.next_trial(engine, pid)
            mine_i.append((time.perf_counter() - t0) * 1e3)
            if t is None:
                break
            t0 = time.perf_counter()
            store.record_answer(engine, pid, t.trial_index, t.attempt, "left", 1000.0, 400.0, False)
            mine_r.append((time.perf_counter() - t0) * 1e3)
            if pace_ms:
                time.sleep(pace_ms / 1e3 * (0.8 + 0.4 * (hash((pid, t.trial_index)) % 1000) / 1000))
        with lock:
            record_ms.extend(mine_r)
            issue_ms.extend(mine_i)

    start = time.perf_counter()
    with ThreadPoolExecutor(n_raters) as pool:
        for f in [pool.submit(rater, k) for k in range(n_raters)]:
            f.result()
    wall = time.perf_counter() - start
    dispose_engine(url)
    r = np.array(record_ms)
    return dict(n=len(r), p50=np.percentile(r, 50), p95=np.percentile(r, 95), max=r.max(),
                issue_p95=np.percentile(issue_ms, 95), per_s=len(r) / wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raters", type=int, default=50)
    ap.add_argument("--trials", type=int, default=30, help="trials per rater (2 practice included)")
    ap.add_argument("--pace-ms", type=float, default=1500.0, help="mean time between a rater's answers (paced run)")
    ap.add_argument("--paced-trials", type=int, default=8)
    args = ap.parse_args()
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_demo_predictions(Path(tmp) / "runs" / "bench" / "predictions", n=64, methods=("resnet_l2", "gan"))
        with ThrowawayPostgres() as pg:
            for mode, trials, pace in (("no pause", args.trials, 0.0), (f"paced {args.pace_ms:g} ms", args.paced_trials, args.pace_ms)):
                results[("SQLite (WAL)", mode)] = run(f"sqlite:///{tmp}/bench-{pace:g}.db", folder, args.raters, trials, pace)
                results[("PostgreSQL 15", mode)] = run(pg.create_database(), folder, args.raters, trials, pace)
    print(f"record_answer latency, {args.raters} raters answering concurrently")
    print(f"{'store':<14} {'load':<14} {'answers':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'answers/s':>10} "
          f"{'next_trial p95 ms':>18}")
    for (name, mode), r in results.items():
        print(f"{name:<14} {mode:<14} {r['n']:>8} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['max']:>8.1f} {r['per_s']:>10.0f} "
              f"{r['issue_p95']:>18.1f}")
    print(f"goal: p95 < 50 ms; load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
