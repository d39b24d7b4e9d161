"""Several study app processes on one database.

- Two processes upgrading the same older database at once: the upgrade runs under a lock, so the
  columns are added exactly once and neither fails (SQLite and PostgreSQL).
- rate_events is pruned in the transactions that write it.
- The fault test: a throw-away PostgreSQL, two `prsr study serve` processes on two ports and 6 headless
  Chromium raters (3 per port). Mid-session one app process is killed with SIGKILL and its raters
  reload their link on the other port; later PostgreSQL is restarted (`pg_ctl restart -m fast`) under
  the running app. From the export: every rater finishes, every (rater, trial index) is answered
  exactly once, every trial that was on screen in the killed process is voided and replaced (a new
  attempt on another image), and no slot is held twice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select, text
from study_browser_helpers import (
    Rater,
    kill_app,
    launch_async,
    new_rater_page,
    require_browser,
    start_apps,
    stop_app,
)

from study_app import store
from study_app.builder import init_study
from study_app.db import dispose_engine, get_engine, open_study
from study_app.demo import write_demo_predictions
from study_app.export import write_csvs
from study_app.schema import rate_events, raters, slots, trials, upgrade


def _old_database(tmp_path, url):
    """A study made by this version, then set back to an older schema: two columns and a table gone."""
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=12, channels=1, methods=("gan",))
    init_study(folder, url, raters_per_method=2, n_test=3, n_practice=1, n_golden=1, seed=0)
    with get_engine(url).begin() as conn:
        conn.execute(text("ALTER TABLE raters DROP COLUMN comments"))
        conn.execute(text("ALTER TABLE trials DROP COLUMN shown_at"))
        conn.execute(text("DROP TABLE rate_events"))
    dispose_engine(url)


def test_two_processes_upgrade_an_old_database_at_once(tmp_path, db_url):
    _old_database(tmp_path, db_url)
    engine = get_engine(db_url)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def upgrader():
        barrier.wait()
        try:
            results.append(upgrade(engine))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=upgrader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(results, key=len) == [[], ["raters.comments", "trials.shown_at"]]
    store.enrol(engine, "after-upgrade", client="c1")  # rate_events is back and works
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rate_events)).scalar_one() == 1


def test_rate_events_are_pruned_in_the_same_transaction(tmp_path, db_url):
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=12, channels=1, methods=("gan",))
    init_study(folder, db_url, raters_per_method=6, n_test=3, n_practice=1, n_golden=1, seed=0)
    engine = open_study(db_url)
    t0 = store.utcnow()
    store.enrol(engine, "p1", client="c1", now=t0)
    store.admin_attempt(engine, "c2", correct=False, now=t0)
    later = t0 + timedelta(seconds=store.RATE_EVENTS_KEEP_S + 60)
    store.admin_attempt(engine, "c3", correct=True, now=later)  # prunes old admin events only
    with engine.connect() as conn:
        kinds = sorted(k for (k,) in conn.execute(select(rate_events.c.kind)))
    assert kinds == ["admin", "claim"]
    store.enrol(engine, "p2", client="c4", now=later)  # now the old claim goes too
    with engine.connect() as conn:
        left = sorted((k, key) for k, key in conn.execute(select(rate_events.c.kind, rate_events.c.client_key)))
    assert left == [("admin", "c3"), ("claim", "c4")]


@pytest.mark.postgres
def test_the_store_carries_on_after_a_database_restart(tmp_path, postgres_server):
    """Pooled connections die with a restart: the next operations ping, reconnect and succeed."""
    url = postgres_server.create_database()
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=12, channels=1, methods=("gan",))
    init_study(folder, url, raters_per_method=2, n_test=3, n_practice=1, n_golden=1, seed=0)
    engine = open_study(url)
    try:
        store.enrol(engine, "p1")
        first = store.next_trial(engine, "p1")
        postgres_server.restart()
        assert (
            store.record_answer(engine, "p1", first.trial_index, first.attempt, "left", 1000.0, 300.0, False).status
            == "recorded"
        )
        second = store.next_trial(engine, "p1")
        assert (second.trial_index, second.attempt) == (first.trial_index + 1, 0)  # nothing voided
        assert store.rater_status(engine, "p1")["answered"] == 1
    finally:
        dispose_engine(url)


# ---- the fault test --------------------------------------------------------------------------------

N_RATERS, N_PRACTICE, N_TEST = 6, 1, 7


def _interrupted(url: str, rater_ids: list[str]) -> set[tuple[str, int, int]]:
    """(rater, trial index, attempt) of every trial issued to these raters and not answered."""
    with get_engine(url).connect() as conn:
        rows = conn.execute(
            select(trials.c.rater_id, trials.c.trial_index, trials.c.attempt).where(
                trials.c.rater_id.in_(rater_ids), trials.c.issued_at.is_not(None), trials.c.answered_at.is_(None)
            )
        ).all()
    return {tuple(r) for r in rows}


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.postgres
def test_two_app_processes_survive_a_killed_process_and_a_database_restart(tmp_path, postgres_server):
    from playwright.async_api import async_playwright  # noqa: PLC0415  (optional: skipped without it)

    require_browser()
    started = time.monotonic()
    url = postgres_server.create_database()
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=32, channels=3, methods=("gan",))
    init_study(
        folder,
        url,
        raters_per_method=N_RATERS,
        n_test=N_TEST,
        n_practice=N_PRACTICE,
        n_golden=1,
        seed=5,
        crowd=dict(max_claims_per_client=0),
    )
    events: dict[str, float] = {}
    interrupted: set = set()
    apps, ports, _ = start_apps(url, 2, tmp_path)
    try:

        async def main():
            async with async_playwright() as pw:
                browser = await launch_async(pw)
                try:
                    pages = [await new_rater_page(browser) for _ in range(N_RATERS)]
                    crew = [
                        Rater(pages[k], f"http://127.0.0.1:{ports[k % 2]}/?pid=replica-{k}", timeout_s=300)
                        for k in range(N_RATERS)
                    ]
                    tasks = [asyncio.create_task(r.run()) for r in crew]
                    on_a = [r for k, r in enumerate(crew) if k % 2 == 0]

                    async def until(cond, what, timeout=150):
                        end = time.monotonic() + timeout
                        while not await cond():
                            failed = [t for t in tasks if t.done() and t.exception() is not None]
                            if failed:
                                raise failed[0].exception()
                            if time.monotonic() > end:
                                raise TimeoutError(f"waiting for {what}: answers {[r.answers for r in crew]}")
                            await asyncio.sleep(0.05)

                    # kill app A while its raters are inside a trial (after their practice and two pairs)
                    async def a_mid_trial():
                        if min(r.answers for r in on_a) < 3:
                            return False
                        phases = [await r.phase() for r in on_a]
                        return all(p in ("fixation", "exposure", "response") for p in phases)

                    await until(a_mid_trial, "app A's raters mid-trial")
                    kill_app(apps[0])
                    events["killed"] = time.time()
                    interrupted.update(_interrupted(url, [f"replica-{k}" for k in range(0, N_RATERS, 2)]))
                    for r in on_a:
                        r.reload_to = r.url.replace(f":{ports[0]}/", f":{ports[1]}/")

                    async def two_more():
                        return all(r.answers >= 5 for r in crew)

                    await until(two_more, "two more answers each after the kill")
                    await asyncio.to_thread(postgres_server.restart)
                    events["pg_restarted"] = time.time()
                    await asyncio.wait_for(asyncio.gather(*tasks), timeout=240)
                    return crew
                finally:
                    await browser.close()

        crew = asyncio.run(main())
    finally:
        for proc in apps:
            stop_app(proc)
        dispose_engine(url)
    elapsed = time.monotonic() - started

    out = tmp_path / "export"
    write_csvs(url, out)
    r = pd.read_csv(out / "raters.csv")
    t = pd.read_csv(out / "trials.csv")
    v = pd.read_csv(out / "voided.csv")
    n = N_PRACTICE + N_TEST
    print(
        f"replicas: {elapsed:.0f} s; interrupted {sorted(interrupted)}; "
        f"voided {sorted(zip(v.rater_id, v.trial_index, v.attempt))}; "
        f"reloads {[c.reloads for c in crew]}; click errors {[len(c.errors) for c in crew]}"
    )
    assert [c.exceptions for c in crew] == [[]] * N_RATERS  # the app never showed an error to a rater
    assert all(c.done for c in crew) and [c.reloads for c in crew] == [1, 0] * (N_RATERS // 2)
    assert sorted(r.rater_id) == [f"replica-{k}" for k in range(N_RATERS)] and (r.status == "complete").all()
    # every (rater, trial index) answered exactly once: nothing lost, nothing duplicated
    assert len(t) == N_RATERS * n and not t.duplicated(["rater_id", "trial_index"]).any()
    assert (t.groupby("rater_id").trial_index.apply(sorted).map(list) == [list(range(n))] * N_RATERS).all()
    assert t.choice.notna().all() and (t.choice == "left").all()
    # the trials on screen in the killed process: voided, and replaced by a later attempt on another image
    assert len(interrupted) >= 1
    final = t.set_index(["rater_id", "trial_index"])
    voided = {(row.rater_id, row.trial_index, row.attempt): row.image_id for row in v.itertuples()}
    for rid, idx, attempt in interrupted:
        assert (rid, idx, attempt) in voided, (rid, idx, attempt)
        assert (
            final.loc[(rid, idx), "attempt"] > attempt
            and final.loc[(rid, idx), "image_id"] != voided[(rid, idx, attempt)]
        )
    # every voided attempt was replaced (none is the final answer of its trial)
    for rid, idx, attempt in voided:
        assert final.loc[(rid, idx), "attempt"] > attempt
    # answers were recorded after the database restart: the app reconnected
    answered = pd.to_datetime(t.answered_at, utc=True)
    assert (answered > pd.Timestamp(events["pg_restarted"], unit="s", tz="UTC")).sum() >= 1
    # no slot held twice: one slot per rater, one rater per slot
    engine = get_engine(url)
    with engine.connect() as conn:
        held = conn.execute(
            select(slots.c.slot_id, slots.c.rater_id, slots.c.status).where(slots.c.rater_id.is_not(None))
        ).all()
        rater_slots = dict(conn.execute(select(raters.c.rater_id, raters.c.slot_id)).all())
    dispose_engine(url)
    assert len(held) == N_RATERS and len({s for s, _, _ in held}) == len({rid for _, rid, _ in held}) == N_RATERS
    assert all(status == "complete" and rater_slots[rid] == s for s, rid, status in held)
