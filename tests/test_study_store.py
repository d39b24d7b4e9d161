"""The study store (enrolment, balancing, golden placement, resume, voiding, idempotent answers, export),
on SQLite always and on a throw-away PostgreSQL server (conftest's `postgres_db_url`)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from prsr.cli import main as prsr_main
from study_app import db as study_db
from study_app import store
from study_app.builder import build_plan, decode_png, golden_images, init_study
from study_app.db import dispose_engine, get_engine
from study_app.demo import write_demo_predictions
from study_app.export import (
    RATER_COLUMNS,
    TRIAL_COLUMNS,
    VOIDED_COLUMNS,
    read_images,
    read_tables,
    read_voided,
    study_info,
    write_csvs,
    write_export,
)
from study_app.schema import rate_events, slots, trials, voided_trials

METHODS = ["resnet_l2", "gan", "pixel_recursive_t1.0"]


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    return write_demo_predictions(tmp_path_factory.mktemp("runs") / "toy" / "predictions", n=40, channels=3)


def small_study(predictions, url, **kw):
    args = dict(raters_per_method=3, n_test=9, n_practice=2, n_golden=3, seed=5)
    args.update(kw)
    init_study(predictions, url, **args)
    return get_engine(url)


def answer_all(engine, pid, choice="left", now=None):
    n = 0
    while (t := store.next_trial(engine, pid, now=now)) is not None:
        assert (
            store.record_answer(engine, pid, t.trial_index, t.attempt, choice, 1000.0, 400.0, False, now=now).status
            == "recorded"
        )
        n += 1
    return n


# ---- the plan (no database) -------------------------------------------------------------------------


def test_plan_spreads_images_evenly_and_places_golden_in_blocks():
    pool = [f"i{k}" for k in range(23)]
    slot_rows, items = build_plan(["a", "b"], pool, raters_per_method=7, n_practice=3, n_test=10, n_golden=2, seed=1)
    assert [s["method"] for s in slot_rows][:4] == ["a", "b", "a", "b"]  # interleaved for even filling
    by_slot: dict[int, list[dict]] = {}
    for it in items:
        by_slot.setdefault(it["slot_id"], []).append(it)
    for s, its in by_slot.items():
        its.sort(key=lambda it: it["position"])
        assert len({it["image_id"] for it in its}) == 13  # distinct images within a rater
        assert [it["is_practice"] for it in its] == [True] * 3 + [False] * 10
        golden = [it["position"] - 3 for it in its if it["is_golden"]]
        assert len(golden) == 2 and 0 <= golden[0] <= 4 and 5 <= golden[1] <= 9  # one per block of 5
        sides = Counter(it["real_side"] for it in its if not it["is_practice"])
        assert sides == Counter(left=5, right=5)
    for method in ("a", "b"):
        use = Counter(it["image_id"] for it in items if slot_rows[it["slot_id"] - 1]["method"] == method)
        counts = [use.get(i, 0) for i in pool]
        assert sum(counts) == 7 * 13 and max(counts) - min(counts) <= 1  # 91 uses over 23 images: 3 or 4


def test_plan_refuses_a_pool_smaller_than_a_session():
    with pytest.raises(ValueError, match="needs 13 distinct images"):
        build_plan(["a"], [f"i{k}" for k in range(12)], 2, 3, 10, 2, 0)


def test_golden_image_is_noisy_bicubic_of_the_input():
    lr = np.full((2, 1, 8, 8), 100, np.uint8)
    g = golden_images(lr, seed=0).astype(float)
    # bicubic of a constant image is the constant; the noise has SD 48 levels (clipping is rare at 100)
    assert abs(g.mean() - 100) < 5 and 40 < g.std() < 52


# ---- the store on SQLite and PostgreSQL -------------------------------------------------------------


def test_enrolment_fills_methods_evenly_and_refuses_when_full(predictions, db_url):
    engine = small_study(predictions, db_url, methods=METHODS)
    got = [store.enrol(engine, f"p{k}") for k in range(7)]
    assert [e.method for e in got] == METHODS * 2 + METHODS[:1]
    assert all(not e.resumed and e.status == "in_progress" for e in got)
    for k in range(7, 9):
        store.enrol(engine, f"p{k}")
    assert Counter(store.rater_status(engine, f"p{k}")["method"] for k in range(9)) == Counter({m: 3 for m in METHODS})
    with pytest.raises(store.StudyFull):
        store.enrol(engine, "p9")


def test_pairs_show_truth_and_output_of_the_same_input(predictions, db_url):
    engine = small_study(predictions, db_url, methods=["gan"])
    store.enrol(engine, "rater-1")
    truth = np.load(predictions / "truth.npz")
    gan = np.load(predictions / "gan.npz")
    hr = dict(zip(truth["ids"].tolist(), truth["hr"]))
    sr = dict(zip(gan["ids"].tolist(), gan["sr"]))  # stored in another order than truth.npz
    seen_golden = False
    while (t := store.next_trial(engine, "rater-1")) is not None:
        left, right = (decode_png(p) for p in store.trial_pngs(engine, t))
        real, other = (left, right) if t.real_side == "left" else (right, left)
        np.testing.assert_array_equal(real, hr[t.image_id].transpose(1, 2, 0))
        if t.is_golden:
            seen_golden = True
            assert np.abs(other.astype(int) - real.astype(int)).mean() > 20  # the degraded image
        else:
            np.testing.assert_array_equal(other, sr[t.image_id].transpose(1, 2, 0))
        store.record_answer(engine, "rater-1", t.trial_index, t.attempt, "right", 1000.0, 300.0, False)
    assert seen_golden
    pairs = read_images(db_url, "gan", ["img0003"])
    np.testing.assert_array_equal(pairs["img0003"][0], hr["img0003"].transpose(1, 2, 0))
    np.testing.assert_array_equal(pairs["img0003"][1], sr["img0003"].transpose(1, 2, 0))


def test_resume_returns_to_the_same_slot_and_trial(predictions, db_url):
    engine = small_study(predictions, db_url, methods=METHODS)
    first = store.enrol(engine, "alice")
    for _ in range(3):
        t = store.next_trial(engine, "alice")
        store.record_answer(engine, "alice", t.trial_index, t.attempt, "left", 1000.0, 500.0, False)
    again = store.enrol(engine, "alice")
    assert again.resumed and again.method == first.method
    assert store.next_trial(engine, "alice").trial_index == 3
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(slots).where(slots.c.status != "free")).scalar_one() == 1
    assert answer_all(engine, "alice") == 11 - 3
    done = store.enrol(engine, "alice")
    assert done.status == "complete" and done.completion_code and done.resumed


def test_refresh_voids_the_shown_trial_and_replaces_it(predictions, db_url):
    engine = small_study(predictions, db_url, methods=METHODS)
    store.enrol(engine, "bob")
    shown = store.next_trial(engine, "bob")
    again = store.next_trial(engine, "bob")  # a refresh: the shown trial was never answered
    assert (again.trial_index, again.attempt) == (shown.trial_index, shown.attempt + 1)
    assert again.image_id != shown.image_id
    assert (
        store.record_answer(engine, "bob", shown.trial_index, shown.attempt, "left", 1000, 500, False).status == "stale"
    )
    assert (
        store.record_answer(engine, "bob", again.trial_index, again.attempt, "left", 1000, 500, False).status
        == "recorded"
    )
    with engine.connect() as conn:
        v = conn.execute(select(voided_trials)).mappings().all()
    assert len(v) == 1 and v[0]["image_id"] == shown.image_id and v[0]["answered_at"] is None
    _, t = read_tables(db_url)
    assert len(t) == 1 and t.loc[0, "image_id"] == again.image_id


def test_answers_are_idempotent(predictions, db_url):
    engine = small_study(predictions, db_url, methods=METHODS)
    store.enrol(engine, "carol")
    t = store.next_trial(engine, "carol")
    first = store.record_answer(engine, "carol", t.trial_index, t.attempt, t.real_side, 1000.2, 640.0, False)
    second = store.record_answer(engine, "carol", t.trial_index, t.attempt, "left", 999.0, 1.0, True)
    assert (first.status, first.correct) == ("recorded", True)
    assert (second.status, second.correct) == ("duplicate", True)  # the first answer stands
    assert store.record_answer(engine, "carol", 5, 0, "left", 1000, 1, False).status == "stale"  # not issued
    with engine.connect() as conn:
        rows = conn.execute(select(trials).where(trials.c.answered_at.is_not(None))).mappings().all()
    assert len(rows) == 1 and rows[0]["reaction_ms"] == 640.0 and rows[0]["tab_hidden"] is False


def test_abandoned_slot_is_reclaimed_and_never_given_twice(predictions, db_url):
    engine = small_study(predictions, db_url, methods=["gan"], raters_per_method=1, abandon_after_s=60)
    t0 = store.utcnow()
    store.enrol(engine, "dan", now=t0)
    store.next_trial(engine, "dan", now=t0)
    with pytest.raises(store.StudyFull):
        store.enrol(engine, "erin", now=t0 + timedelta(seconds=30))
    erin = store.enrol(engine, "erin", now=t0 + timedelta(seconds=61))
    assert erin.method == "gan" and not erin.resumed
    dan = store.enrol(engine, "dan", now=t0 + timedelta(seconds=62))
    assert dan.status == "abandoned" and dan.resumed
    with pytest.raises(store.SessionExpired):
        store.next_trial(engine, "dan")
    r, _ = read_tables(db_url)
    assert dict(zip(r.rater_id, r.status)) == {"dan": "abandoned", "erin": "in_progress"}


# The columns each export file had before its latest additions, in order: new columns only ever go after these
# (docs/study-settings.md), so a script that reads an older export by position keeps working.
EARLIER_TRIAL_COLUMNS = (
    "rater_id method image_id trial_index attempt is_practice is_golden real_side choice chose_model exposure_ms "
    "reaction_ms tab_hidden shown_at answered_at timed_out"
).split()
EARLIER_RATER_COLUMNS = (
    "rater_id method status golden_correct golden_total participant_id study_id session_id completion_code "
    "enrolled_at completed_at viewport_w viewport_h device_pixel_ratio user_agent refresh_hz comments"
).split()
EARLIER_VOIDED_COLUMNS = (
    "rater_id method image_id trial_index attempt is_practice is_golden real_side issued_at voided_at reason"
)


def test_export_columns_keep_their_positions():
    for now, before in [
        (TRIAL_COLUMNS, EARLIER_TRIAL_COLUMNS),
        (RATER_COLUMNS, EARLIER_RATER_COLUMNS),
        (VOIDED_COLUMNS, EARLIER_VOIDED_COLUMNS.split()),
    ]:
        assert now[: len(before)] == before


def test_export_columns_and_values(predictions, db_url, tmp_path):
    engine = small_study(predictions, db_url, methods=["gan", "resnet_l2"])
    store.enrol(engine, "r1")  # gan
    store.enrol(engine, "r2")  # resnet_l2
    answer_all(engine, "r1", choice="left")
    t = store.next_trial(engine, "r2")
    store.record_answer(engine, "r2", t.trial_index, t.attempt, "right", 1001.0, 350.0, True)
    r, tr = read_tables(db_url)
    assert list(r.columns) == RATER_COLUMNS and list(tr.columns) == TRIAL_COLUMNS
    assert len(tr) == 11 + 1
    mine = tr[tr.rater_id == "r1"]
    assert mine.trial_index.tolist() == list(range(11)) and mine.is_practice.sum() == 2 and mine.is_golden.sum() == 3
    assert (mine.chose_model == (mine.real_side == "right")).all()  # always answered "left"
    golden = mine[mine.is_golden]
    row = r.set_index("rater_id").loc["r1"]
    assert row.status == "complete" and row.golden_total == 3
    assert row.golden_correct == int((golden.real_side == "left").sum())
    assert r.set_index("rater_id").loc["r2", "status"] == "in_progress"
    assert bool(tr[tr.rater_id == "r2"].tab_hidden.iloc[0])
    info = study_info(db_url)
    assert info["simulated"] is False and info["methods"] == ["gan", "resnet_l2"]
    assert (info["n_test_trials"], info["n_practice"], info["n_golden"], info["dataset"]) == (9, 2, 3, "toy")
    rp, tp, vp = write_csvs(db_url, tmp_path / "out")
    assert rp.read_text().splitlines()[0] == ",".join(RATER_COLUMNS)
    assert len(tp.read_text().splitlines()) == 1 + 12


def test_init_refuses_an_existing_study(predictions, db_url):
    small_study(predictions, db_url, methods=["gan"])
    store.enrol(get_engine(db_url), "keep-me")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        small_study(predictions, db_url, methods=["gan"])
    assert store.rater_status(get_engine(db_url), "keep-me") is not None


@pytest.mark.parametrize("bad", ["", "a" * 65, "x y", "../etc/passwd", "'; DROP TABLE raters; --", "é", None, 7])
def test_participant_ids_are_validated(bad):
    with pytest.raises(ValueError, match="invalid participant id"):
        store.validate_participant_id(bad)


def test_answer_values_are_validated(predictions, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = small_study(predictions, url, methods=["gan"])
    store.enrol(engine, "v")
    t = store.next_trial(engine, "v")
    for kwargs, msg in (
        (dict(choice="middle"), "choice"),
        (dict(exposure_ms=float("nan")), "exposure_ms"),
        (dict(reaction_ms=-1), "reaction_ms"),
        (dict(trial_index="1"), "trial_index"),
    ):
        args = dict(
            trial_index=t.trial_index,
            attempt=t.attempt,
            choice="left",
            exposure_ms=1000.0,
            reaction_ms=10.0,
            tab_hidden=False,
        )
        args.update(kwargs)
        with pytest.raises(ValueError, match=msg):
            store.record_answer(engine, "v", **args)
    dispose_engine(url)


def test_default_methods_are_the_paper_study_rows_present(tmp_path):
    folder = write_demo_predictions(tmp_path / "p", n=12, methods=("bicubic", "gan", "resnet_l2"))
    url = f"sqlite:///{tmp_path / 's.db'}"
    init_study(folder, url, raters_per_method=1, n_test=4, n_practice=1, n_golden=1)
    assert study_info(url)["methods"] == ["resnet_l2", "gan"]
    dispose_engine(url)


# ---- crowd readiness: one person one slot, rate limits, export, upgrade ------------------------------


def test_ids_are_case_insensitive_and_claims_per_client_are_limited(predictions, db_url):
    engine = small_study(
        predictions,
        db_url,
        methods=["gan"],
        raters_per_method=6,
        crowd=dict(max_claims_per_client=2, claim_window_min=10),
    )
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    first = store.enrol(engine, "CaseTest", client="c1", now=t0)
    again = store.enrol(engine, "  casetest ", client="c1", now=t0)
    assert (first.rater_id, again.rater_id, again.resumed) == ("casetest", "casetest", True)
    assert store.rater_status(engine, "CASETEST")["participant_id"] == "CaseTest"
    store.enrol(engine, "second", client="c1", now=t0)
    with pytest.raises(store.TooManyClaims):
        store.enrol(engine, "third", client="c1", now=t0 + timedelta(minutes=5))
    assert store.rater_status(engine, "third") is None  # the refused claim took nothing
    assert store.enrol(engine, "casetest", client="c1", now=t0 + timedelta(minutes=5)).resumed  # resuming is free
    store.enrol(engine, "other-client", client="c2", now=t0 + timedelta(minutes=5))
    store.enrol(engine, "third", client="c1", now=t0 + timedelta(minutes=11))  # the window has passed
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(slots).where(slots.c.status == "taken")).scalar_one() == 4


def test_admin_attempts_are_limited_and_logged(predictions, db_url):
    engine = small_study(predictions, db_url, methods=["gan"])
    outcomes = [store.admin_attempt(engine, "c9", correct=False) for _ in range(store.ADMIN_MAX_FAILURES)]
    assert outcomes == ["wrong"] * store.ADMIN_MAX_FAILURES
    assert store.admin_attempt(engine, "c9", correct=True) == "limited"  # even the right secret, for now
    assert store.admin_attempt(engine, "c8", correct=True) == "ok"
    later = store.utcnow() + timedelta(seconds=store.ADMIN_WINDOW_S + 1)
    assert store.admin_attempt(engine, "c9", correct=True, now=later) == "ok"
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(rate_events).where(rate_events.c.kind == "admin")
            ).scalar_one()
            == store.ADMIN_MAX_FAILURES + 3
        )


def test_export_has_attempts_times_voids_ids_environment_and_study_code(predictions, db_url, tmp_path):
    engine = small_study(predictions, db_url, methods=["gan"], crowd=dict(completion_code="STUDYCODE1"))
    env = dict(viewport_w=1280, viewport_h=720, device_pixel_ratio=2, user_agent="UA", refresh_hz=59.9)
    store.enrol(engine, "P1", ids=dict(study_id="S", session_id="X", platform="prolific"), env=env)
    store.next_trial(engine, "p1")  # shown, then the page is reloaded: answer_all's first call voids it
    answer_all(engine, "p1")
    rp, tp, vp = write_csvs(db_url, tmp_path / "out")
    r, t, v = pd.read_csv(rp), pd.read_csv(tp), pd.read_csv(vp)
    assert list(r.columns) == RATER_COLUMNS and list(t.columns) == TRIAL_COLUMNS and list(v.columns) == VOIDED_COLUMNS
    row = r.iloc[0]
    assert (row.participant_id, row.study_id, row.session_id, row.completion_code) == ("P1", "S", "X", "STUDYCODE1")
    assert (row.viewport_w, row.viewport_h, row.device_pixel_ratio, row.user_agent, row.refresh_hz) == (
        1280,
        720,
        2.0,
        "UA",
        59.9,
    )
    assert t.attempt.tolist() == [1] + [0] * 10
    assert len(v) == 1 and v.trial_index[0] == 0 and v.attempt[0] == 0
    for col in ("shown_at", "answered_at"):
        assert t[col].str.endswith("+00:00").all()
    assert (pd.to_datetime(t.shown_at) <= pd.to_datetime(t.answered_at)).all()
    assert pd.Timestamp(row.enrolled_at) <= pd.Timestamp(row.completed_at)


def test_attention_screen_out_frees_the_slot(predictions, db_url):
    engine = small_study(predictions, db_url, methods=["gan"], crowd=dict(attention_max_misses=0))
    store.enrol(engine, "inattentive")
    while (t := store.next_trial(engine, "inattentive")) is not None:
        wrong = "right" if t.real_side == "left" else "left"
        res = store.record_answer(
            engine, "inattentive", t.trial_index, t.attempt, wrong if t.is_golden else t.real_side, 1000.0, 300.0, False
        )
        if res.screened_out:
            break
    assert res.screened_out and t.is_golden
    assert store.rater_status(engine, "inattentive")["status"] == "screened_out"
    with pytest.raises(store.SessionExpired):
        store.next_trial(engine, "inattentive")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(slots).where(slots.c.status == "free")).scalar_one() == 3


def test_an_older_database_is_upgraded_additively(predictions, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = small_study(predictions, url, methods=["gan"])
    store.enrol(engine, "kept")
    answer_all(engine, "kept")
    code = store.rater_status(engine, "kept")["completion_code"]
    dispose_engine(url)
    con = sqlite3.connect(tmp_path / "old.db")  # make it look like a database of the previous release
    for table, col in (
        ("raters", "viewport_w"),
        ("raters", "participant_id"),
        ("trials", "shown_at"),
        ("study", "platform"),
        ("study", "texts"),
        ("study", "response_window_ms"),
        ("trials", "timed_out"),
        ("voided_trials", "reason"),
    ):
        con.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
    con.execute("DROP TABLE rate_events")
    con.commit()
    con.close()
    study_db._CHECKED.discard(url)
    r, t = read_tables(url)  # opening upgrades it
    assert r.rater_id.tolist() == ["kept"] and r.status.tolist() == ["complete"] and len(t) == 11
    assert r.participant_id.isna().all() and t.shown_at.isna().all()  # unknown for old rows, not invented
    assert not t.timed_out.any() and study_info(url)["response_window_ms"] is None  # no window: no timeouts
    assert store.rater_status(get_engine(url), "kept")["completion_code"] == code
    store.enrol(get_engine(url), "new-one", client="c")  # the new features work on the upgraded database
    dispose_engine(url)


# ---- issue: phones, comments and settings in the export, timeouts, small pilots ----------------------


def test_export_has_comments_settings_rounded_times_and_timeouts(predictions, db_url, tmp_path):
    """raters.csv carries the comments, study.json the settings (display, exposure, golden count, the
    attention rule, the response window), times are rounded to 0.1 ms, and an answer after the
    response window is stored as a timeout by the rule reaction_ms > response_window_ms."""
    engine = small_study(
        predictions,
        db_url,
        methods=["gan"],
        display_px=160,
        crowd=dict(attention_max_misses=1, response_window_ms=1500, texts=dict(comments=True)),
    )
    store.enrol(engine, "c1")
    reactions = iter([1500.0, 1500.04, 242.1999999999998] + [400.0] * 8)  # at, just over, within the window
    late = []
    while (t := store.next_trial(engine, "c1")) is not None:
        choice = t.real_side if t.is_golden else "left"  # golden pairs right: no screen-out
        res = store.record_answer(engine, "c1", t.trial_index, t.attempt, choice, 1000.0000001, next(reactions), False)
        late.append(res.timed_out)
    store.record_comments(engine, "c1", "the images were tiny, but fine")
    paths = write_export(db_url, tmp_path / "out")
    assert sorted(paths) == ["preregistration.md", "raters.csv", "study.json", "trials.csv", "voided.csv"]
    r, t = pd.read_csv(paths["raters.csv"]), pd.read_csv(paths["trials.csv"])
    assert r.comments.tolist() == ["the images were tiny, but fine"] and list(r.columns) == RATER_COLUMNS
    assert late == [False, True, False] + [False] * 8 and t.timed_out.tolist() == late
    assert t.reaction_ms.tolist()[:3] == [1500.0, 1500.0, 242.2] and (t.exposure_ms == 1000.0).all()
    assert "1500.04" not in paths["trials.csv"].read_text() and ".0000001" not in paths["trials.csv"].read_text()
    info = json.loads(paths["study.json"].read_text())
    assert (info["display_px"], info["exposure_ms"], info["n_golden"], info["fixation_ms"]) == (160, 1000, 3, 500)
    assert (info["attention_max_misses"], info["response_window_ms"], info["texts"]["comments"]) == (1, 1500, True)
    assert "client_salt" not in info and info["methods"] == ["gan"]


def test_a_timed_out_golden_answer_is_no_attention_miss(predictions, db_url):
    engine = small_study(
        predictions, db_url, methods=["gan"], crowd=dict(attention_max_misses=0, response_window_ms=500)
    )
    store.enrol(engine, "slow")
    while (t := store.next_trial(engine, "slow")) is not None:
        wrong = "right" if t.real_side == "left" else "left"
        # every golden pair answered wrongly but too late (600 ms > 500 ms): not a miss, no screen-out
        res = store.record_answer(
            engine, "slow", t.trial_index, t.attempt, wrong, 1000.0, 600.0 if t.is_golden else 1.0, False
        )
        assert not res.screened_out and res.timed_out == t.is_golden
    assert store.rater_status(engine, "slow")["status"] == "complete"


def test_a_resize_voids_the_open_attempt_with_its_reason(predictions, db_url):
    engine = small_study(predictions, db_url, methods=["gan"])
    store.enrol(engine, "r")
    first = store.next_trial(engine, "r")
    assert store.void_trial(engine, "r", first.trial_index, first.attempt, "resize")
    assert not store.void_trial(engine, "r", first.trial_index, first.attempt, "resize")  # repeated: no-op
    again = store.next_trial(engine, "r")  # the replacement is issued fresh, not voided a second time
    assert (again.trial_index, again.attempt) == (0, 1) and again.image_id != first.image_id
    assert store.record_answer(engine, "r", 0, 0, "left", 1000.0, 300.0, False).status == "stale"
    assert store.record_answer(engine, "r", 0, 1, "left", 1000.0, 300.0, False).status == "recorded"
    v = read_voided(db_url)
    assert list(v.columns) == VOIDED_COLUMNS and v[["trial_index", "attempt", "reason"]].values.tolist() == [
        [0, 0, "resize"]
    ]
    with pytest.raises(ValueError, match="reason"):
        store.void_trial(engine, "r", 1, 0, "boredom")


def test_replacements_repeat_the_voided_image_only_when_the_rater_has_seen_every_image(tmp_path):
    """The replacement rule as the code keeps it (docs/study-settings.md): an unseen image while one is
    left, else the voided image itself."""
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=6, methods=("gan",))
    url = f"sqlite:///{tmp_path / 'pilot.db'}"
    summary = init_study(folder, url, raters_per_method=1, n_test=4, n_practice=1, n_golden=1, seed=1)
    assert (summary["images"], summary["spare_images"]) == (6, 1)
    engine = get_engine(url)
    store.enrol(engine, "p")
    planned = {t["image_id"] for t in store_trials(engine, "p")}  # 5 of the 6 images
    shown = store.next_trial(engine, "p")
    fresh = store.next_trial(engine, "p")  # a reload: the one image not in the plan replaces it
    assert len(planned) == 5 and fresh.image_id not in planned and fresh.image_id != shown.image_id
    again = store.next_trial(engine, "p")  # another reload: every image seen, so the voided image again
    assert again.image_id == fresh.image_id and again.attempt == 2
    dispose_engine(url)


def store_trials(engine, rater_id: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(trials).where(trials.c.rater_id == rater_id)).mappings()]


def test_init_with_too_few_images_names_the_options_and_leaves_no_file(tmp_path, capsys):
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=16, methods=("gan",))
    db = tmp_path / "study.db"
    assert prsr_main(["study", "init", "--predictions", str(folder), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "16 images" in err and "55 distinct images" in err
    for option in ("--n-practice", "--n-trials", "--n-golden"):
        assert option in err
    assert not db.exists() and list(tmp_path.iterdir()) == [tmp_path / "runs"]  # no file, no -wal / -shm
    # the suggested values work
    suggested = err.split("`prsr study init ... ")[1].split("`")[0].split()
    assert prsr_main(["study", "init", "--predictions", str(folder), "--db", str(db), *suggested]) == 0
    info = study_info(str(db))
    assert info["n_practice"] + info["n_test_trials"] <= 16 and info["n_golden"] >= 1
    dispose_engine(f"sqlite:///{db}")
