"""50 simulated raters in parallel threads, with returning logins, double submissions, refreshes (voids)
and stale answers, on SQLite and PostgreSQL: exactly the expected trials are stored, none lost or
duplicated, and methods stay balanced within one rater."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from study_app import store
from study_app.builder import init_study
from study_app.db import get_engine
from study_app.demo import write_demo_predictions
from study_app.export import read_tables
from study_app.schema import voided_trials

N_RATERS = 50
METHODS = ("resnet_l2", "gan", "pixel_recursive_t1.0")
PER_RATER = 2 + 6  # practice + counted trials


@pytest.mark.slow
def test_fifty_concurrent_raters(db_url, tmp_path):
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=24, methods=METHODS)
    init_study(folder, db_url, raters_per_method=20, n_test=6, n_practice=2, n_golden=1, seed=9)
    engine = get_engine(db_url)
    barrier = threading.Barrier(N_RATERS)
    counts = Counter()
    lock = threading.Lock()

    def rater(k: int) -> None:
        rng = random.Random(k)
        pid = f"c{k:03d}"
        local = Counter()
        barrier.wait()
        store.enrol(engine, pid)
        assert store.enrol(engine, pid).resumed  # a returning login never gets a second slot
        while (t := store.next_trial(engine, pid)) is not None:
            if rng.random() < 0.2:  # a refresh while the pair is on screen
                old, t = t, store.next_trial(engine, pid)
                local["refresh"] += 1
                assert (
                    store.record_answer(engine, pid, old.trial_index, old.attempt, "left", 1000, 300, False).status
                    == "stale"
                )
            choice = rng.choice(store.SIDES)
            sends = 2 if rng.random() < 0.3 else 1  # a double click
            for _ in range(sends):
                local[store.record_answer(engine, pid, t.trial_index, t.attempt, choice, 1000, 300, False).status] += 1
        with lock:
            counts.update(local)

    with ThreadPoolExecutor(N_RATERS) as pool:
        for f in [pool.submit(rater, k) for k in range(N_RATERS)]:
            f.result()

    raters, trials = read_tables(db_url)
    assert len(raters) == N_RATERS and (raters.status == "complete").all()
    per_method = Counter(raters.method)
    assert set(per_method) == set(METHODS) and max(per_method.values()) - min(per_method.values()) <= 1
    assert len(trials) == N_RATERS * PER_RATER == counts["recorded"]
    assert not trials.duplicated(["rater_id", "trial_index"]).any()
    assert all(sorted(g) == list(range(PER_RATER)) for _, g in trials.groupby("rater_id").trial_index)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(voided_trials)).scalar_one() == counts["refresh"] > 0
    assert counts["duplicate"] > 0 and counts["stale"] == 0  # stale sends were asserted inline
