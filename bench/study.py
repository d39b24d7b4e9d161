"""Latency of recording a trial with 50 raters answering concurrently, as fast as the store allows.

Each of 50 threads enrols one rater and loops `next_trial` -> `record_answer` with no pause; the
time of every `record_answer` call (one committed transaction) is collected. Runs on a SQLite file
(WAL) and on a throw-away PostgreSQL 15 server (like the tests' fixture). Goal: p95 < 50 ms.

With 50 closed-loop clients and no pause, latency is queueing: about clients / throughput (Little's
law), so on a small shared CPU it measures the machine as much as the store. The paced run has every
rater answer once per `--pace-ms` (a real rater needs at least the 0.5 s fixation + 1 s exposure +
a reaction), which is the load a real study puts on the store.

    .venv/bin/python bench/study.py [--raters 50] [--trials 30] [--pace-ms 1500] [--paced-trials 8]

`--app` measures the whole app instead: N `prsr study serve` processes on one throw-away PostgreSQL,
driven by headless Chromium raters (Playwright, one browser, a context per rater, spread round-robin
over the processes) through the real protocol: fixation 500 ms, exposure 1000 ms, then a click after a
reaction time drawn uniformly from --reaction-ms (so about one answer per 1.7-2 s, like a quick
person). For each process count it reports answers/s recorded in the database, p50/p95 of the time
from a click to the next pair on screen (measured in the page: click to the first animation frame of
the new trial's fixation), the app processes' CPU time per answer, and errors (tracebacks in the app logs,
page errors, exceptions shown in the page, raters stalled > 15 s).

    .venv/bin/python bench/study.py --app --processes 1 2 --raters 8 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from study_app import store
from study_app.builder import init_study
from study_app.db import dispose_engine, get_engine
from study_app.demo import write_demo_predictions
from study_app.pgserver import ThrowawayPostgres
from study_app.schema import trials


def run(url: str, folder: Path, n_raters: int, n_trials: int, pace_ms: float = 0.0) -> dict:
    init_study(
        folder,
        url,
        methods=["resnet_l2", "gan"],
        raters_per_method=(n_raters + 1) // 2,
        n_test=n_trials - 2,
        n_practice=2,
        n_golden=2,
        seed=0,
    )
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
    return dict(
        n=len(r),
        p50=np.percentile(r, 50),
        p95=np.percentile(r, 95),
        max=r.max(),
        issue_p95=np.percentile(issue_ms, 95),
        per_s=len(r) / wall,
    )


def _group_cpu_s(pgids: set[int]) -> float:
    """CPU seconds (user + system) used so far by every live process in these process groups."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:  # fields after the name: state ppid pgrp ...; utime, stime at 11, 12
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_app(
    pg: ThrowawayPostgres,
    folder: Path,
    logs: Path,
    n_proc: int,
    n_raters: int,
    seconds: float,
    reaction_ms: tuple[float, float],
) -> dict:
    """One configuration of the `--app` mode (see the module docstring)."""

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the browser driver the tests use
    # playwright is a dev extra and the helpers live in tests/ (on sys.path only from the line above)
    from playwright.async_api import async_playwright  # noqa: PLC0415
    from study_browser_helpers import Rater, launch_async, new_rater_page, start_apps, stop_app  # noqa: PLC0415

    url = pg.create_database()
    n_test = int(seconds / 1.5) + 20  # more pairs than anyone can answer in the time
    init_study(
        folder,
        url,
        methods=["gan"],
        raters_per_method=n_raters,
        n_test=n_test,
        n_practice=1,
        n_golden=2,
        seed=0,
        crowd=dict(max_claims_per_client=0),
    )
    rng = random.Random(0)
    lo, hi = reaction_ms
    page_errors: list[str] = []
    apps, ports, app_logs = start_apps(url, n_proc, logs, prefix=f"app{n_proc}-")
    try:

        async def main():
            async with async_playwright() as pw:
                browser = await launch_async(pw)
                try:
                    crew = []
                    for k in range(n_raters):
                        page = await new_rater_page(browser, page_errors)
                        crew.append(
                            Rater(
                                page,
                                f"http://127.0.0.1:{ports[k % n_proc]}/?pid=load-{k}",
                                reaction_s=lambda: rng.uniform(lo, hi) / 1e3,
                                timeout_s=seconds + 300,
                            )
                        )
                    tasks = [asyncio.create_task(r.run()) for r in crew]
                    while min(r.answers for r in crew) < 2:  # warm-up: everyone past consent and practice
                        for t in tasks:
                            if t.done():
                                t.result()
                        await asyncio.sleep(0.1)
                    for r in crew:
                        await r.page.evaluate("window.__prsrLoad.lat = []")
                    t0 = store.utcnow()
                    cpu0 = _group_cpu_s({p.pid for p in apps})
                    seen = [(r.answers, time.monotonic()) for r in crew]
                    stalls = 0
                    end = time.monotonic() + seconds
                    while time.monotonic() < end:
                        await asyncio.sleep(1.0)
                        for k, r in enumerate(crew):
                            if r.answers != seen[k][0]:
                                seen[k] = (r.answers, time.monotonic())
                            elif time.monotonic() - seen[k][1] > 15:
                                stalls += 1
                                seen[k] = (r.answers, time.monotonic())
                    t1 = store.utcnow()
                    cpu1 = _group_cpu_s({p.pid for p in apps})
                    lat = [x for r in crew for x in await r.latencies()]
                    for r in crew:
                        r.stop = True
                    await asyncio.gather(*tasks, return_exceptions=True)
                    shown = sum(len(r.exceptions) for r in crew)
                    return t0, t1, lat, stalls + shown, cpu1 - cpu0
                finally:
                    await browser.close()

        t0, t1, lat, stalls, cpu_s = asyncio.run(main())
    finally:
        for proc in apps:
            stop_app(proc)
    engine = get_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count()).select_from(trials).where(trials.c.answered_at >= t0, trials.c.answered_at < t1)
        ).scalar_one()
    dispose_engine(url)
    tracebacks = sum(log.read_text(errors="replace").count("Traceback") for log in app_logs)
    lat = np.array(lat)
    window = (t1 - t0).total_seconds()
    return dict(
        answers=n,
        per_s=n / window,
        p50=np.percentile(lat, 50),
        p95=np.percentile(lat, 95),
        n_lat=len(lat),
        cpu_ms=1e3 * cpu_s / max(n, 1),
        errors=tracebacks + len(page_errors) + stalls,
        detail=f"{tracebacks} tracebacks, {len(page_errors)} page errors, {stalls} stalls or shown exceptions",
    )


def main_app(args) -> None:
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
        "(machine shared with other jobs)"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_demo_predictions(Path(tmp) / "runs" / "bench" / "predictions", n=256, methods=("gan",))
        with ThrowawayPostgres() as pg:
            for n_proc in args.processes:
                r = run_app(pg, folder, Path(tmp), n_proc, args.raters, args.seconds, tuple(args.reaction_ms))
                r["load"] = os.getloadavg()[0]
                rows.append((n_proc, r))
                print(f"  {n_proc} process(es): {r['answers']} answers, {r['detail']}; load average {r['load']:.2f}")
    print(
        f"the study app, {args.raters} browser raters for {args.seconds:g} s per configuration "
        f"(reaction {args.reaction_ms[0]:g}-{args.reaction_ms[1]:g} ms after the 500 ms fixation + 1000 ms exposure)"
    )
    print(
        f"{'processes':>9} {'answers':>8} {'answers/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7} "
        f"{'app CPU ms/answer':>18} {'load 1 min':>11}"
    )
    for n_proc, r in rows:
        print(
            f"{n_proc:>9} {r['answers']:>8} {r['per_s']:>10.2f} {r['p50']:>8.0f} {r['p95']:>8.0f} {r['errors']:>7} "
            f"{r['cpu_ms']:>18.0f} {r['load']:>11.2f}"
        )
    print(
        "app CPU ms/answer: CPU time of the app processes (serve + Streamlit) in the window / answers; "
        "1000 / it is the answers/s one fully used core could serve"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", action="store_true", help="drive the app processes with browsers (see the docstring)")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="--app: app process counts to run")
    ap.add_argument("--seconds", type=float, default=60.0, help="--app: measured time per configuration")
    ap.add_argument(
        "--reaction-ms",
        type=float,
        nargs=2,
        default=[150.0, 450.0],
        metavar=("LO", "HI"),
        help="--app: reaction time range of the browser raters",
    )
    ap.add_argument("--raters", type=int, default=50)
    ap.add_argument("--trials", type=int, default=30, help="trials per rater (2 practice included)")
    ap.add_argument("--pace-ms", type=float, default=1500.0, help="mean time between a rater's answers (paced run)")
    ap.add_argument("--paced-trials", type=int, default=8)
    args = ap.parse_args()
    if args.app:
        return main_app(args)
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_demo_predictions(
            Path(tmp) / "runs" / "bench" / "predictions", n=64, methods=("resnet_l2", "gan")
        )
        with ThrowawayPostgres() as pg:
            for mode, trials, pace in (
                ("no pause", args.trials, 0.0),
                (f"paced {args.pace_ms:g} ms", args.paced_trials, args.pace_ms),
            ):
                results[("SQLite (WAL)", mode)] = run(
                    f"sqlite:///{tmp}/bench-{pace:g}.db", folder, args.raters, trials, pace
                )
                results[("PostgreSQL 15", mode)] = run(pg.create_database(), folder, args.raters, trials, pace)
    print(f"record_answer latency, {args.raters} raters answering concurrently")
    print(
        f"{'store':<14} {'load':<14} {'answers':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'answers/s':>10} "
        f"{'next_trial p95 ms':>18}"
    )
    for (name, mode), r in results.items():
        print(
            f"{name:<14} {mode:<14} {r['n']:>8} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['max']:>8.1f} {r['per_s']:>10.0f} "
            f"{r['issue_p95']:>18.1f}"
        )
    print(f"goal: p95 < 50 ms; load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
