"""The app's page flow with `streamlit.testing.v1.AppTest`: consent -> instructions -> practice with
feedback -> trials -> completion code, answering through the test-only hook (PRSR_STUDY_TEST_HOOK=1),
plus resume-with-void after a refresh, the admin page's secret, and the CLI round trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

import study_app
from prsr.cli import main as prsr_main
from study_app import store
from study_app.builder import init_study
from study_app.config import load_config
from study_app.db import dispose_engine, get_engine
from study_app.demo import write_demo_predictions
from study_app.export import read_tables, study_info
from study_app.handoff import completion_target, handoff, mturk_submit_url, read_link
from study_app.schema import trials, voided_trials

APP = str(Path(study_app.__file__).with_name("app.py"))


@pytest.fixture
def study_url(tmp_path, monkeypatch):
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=16, methods=("gan",))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    init_study(folder, url, raters_per_method=2, n_test=3, n_practice=2, n_golden=1, seed=3)
    monkeypatch.setenv("PRSR_STUDY_DB", url)
    monkeypatch.setenv("PRSR_STUDY_TEST_HOOK", "1")
    yield url
    dispose_engine(url)


def _session(pid: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["pid"] = pid
    return at.run()


HOOKS = {"Continue": "continue", "Start the practice": "start", "Next pair": "next"}


def _click(at: AppTest, label: str) -> AppTest:
    """Click the button with the widget key of `label` (the app's test hooks), or the test-hook
    answer button labelled `label` (Left / Right)."""
    if label in HOOKS:
        return at.button(key=HOOKS[label]).click().run()
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return matches[0].click().run()


def _current(url: str, pid: str) -> dict:
    with get_engine(url).connect() as conn:
        return dict(
            conn.execute(
                select(trials).where(
                    trials.c.rater_id == pid, trials.c.issued_at.is_not(None), trials.c.answered_at.is_(None)
                )
            )
            .mappings()
            .one()
        )


def test_page_flow_consent_practice_trials_completion(study_url):
    at = _session("worker-17")
    assert not at.exception
    assert "camera" in at.title[0].value
    assert at.button(key="continue").disabled  # no consent yet
    at.checkbox(key="consent-checkbox").check().run()
    at = _click(at, "Continue")
    assert at.title[0].value == "Instructions"
    assert store.rater_status(get_engine(study_url), "worker-17")["method"] == "gan"
    at = _click(at, "Start the practice")

    # first practice trial; then a refresh (a new browser session with the same pid)
    shown = _current(study_url, "worker-17")
    assert at.get("progress")[0].proto.text == "Practice 1 of 2"
    at = _click(at, "Left")
    assert (at.success if shown["real_side"] == "left" else at.error)[0].value.count(shown["real_side"]) == 1
    at = _click(at, "Next pair")
    shown2 = _current(study_url, "worker-17")
    assert shown2["trial_index"] == 1

    at2 = _session("worker-17")  # refresh during practice trial 2: resumes and voids it
    replaced = _current(study_url, "worker-17")
    assert (replaced["trial_index"], replaced["attempt"]) == (1, 1) and replaced["image_id"] != shown2["image_id"]
    at = _click(at, "Right")  # the old session answers the voided trial: ignored (stale)
    assert _current(study_url, "worker-17")["attempt"] == 1
    assert "out of date" in at.warning[0].value
    at2 = _click(at2, "Right")
    at2 = _click(at2, "Next pair")
    for k in range(3):
        assert at2.get("progress")[0].proto.text == f"Pair {k + 1} of 3"
        at2 = _click(at2, "Left")
    assert not at2.exception
    assert at2.title[0].value == "Thank you!"
    code = at2.code[0].value
    status = store.rater_status(get_engine(study_url), "worker-17")
    assert status["status"] == "complete" and code == status["completion_code"] and len(code) == 8
    _, t = read_tables(study_url)
    assert t.trial_index.tolist() == [0, 1, 2, 3, 4]
    assert t.choice.tolist() == ["left", "right", "left", "left", "left"]
    with get_engine(study_url).connect() as conn:
        assert len(conn.execute(select(voided_trials)).all()) == 1

    again = _session("worker-17")  # a completed rater returning sees the code, gets no new slot
    assert again.title[0].value == "Thank you!" and again.code[0].value == code


def test_resume_token_and_invalid_pid(study_url):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.checkbox(key="consent-checkbox").check().run()
    at = _click(at, "Continue")
    token = at.query_params["pid"]
    token = token[0] if isinstance(token, list) else token
    assert store.rater_status(get_engine(study_url), token)["id_source"] == "token"
    bad = _session("../../etc/passwd")
    assert "not valid" in bad.warning[0].value
    assert len(read_tables(study_url)[0]) == 1


def test_admin_page_needs_the_secret(study_url, monkeypatch):
    monkeypatch.setenv("PRSR_STUDY_ADMIN_SECRET", "s3cret")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["admin"] = "1"
    at.run()
    assert not at.dataframe
    at.text_input[0].input("wrong").run()
    assert at.error and not at.dataframe
    at.text_input[0].input("s3cret").run()
    table = at.dataframe[0].value
    assert table.method.tolist() == ["gan"] and table.slots.tolist() == [2]
    downloads = [b.label for b in at.get("download_button")]
    assert downloads == ["raters.csv", "trials.csv", "voided.csv", "study.json"]  # the settings too
    assert "comments" in at.dataframe[1].value.columns  # the raters table carries the comments


def test_cli_init_simulate_export(tmp_path, capsys):
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=20, methods=("gan", "resnet_l2"))
    db = tmp_path / "sim.db"
    assert (
        prsr_main(
            [
                "study",
                "init",
                "--predictions",
                str(folder),
                "--db",
                str(db),
                "--raters-per-method",
                "12",
                "--n-trials",
                "10",
                "--n-practice",
                "2",
                "--n-golden",
                "2",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert prsr_main(["study", "init", "--predictions", str(folder), "--db", str(db)]) == 2  # refuses
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (
        prsr_main(
            [
                "study",
                "simulate",
                "--db",
                str(db),
                "--raters",
                "20",
                "--fool-rate",
                "gan=0.4",
                "--rater-sd",
                "0",
                "--image-sd",
                "0",
                "--golden-fail-rate",
                "0.25",
                "--abandon-rate",
                "0.2",
                "--seed",
                "4",
            ]
        )
        == 0
    )
    assert prsr_main(["study", "export", "--db", str(db), "--out", str(tmp_path / "out")]) == 0
    r = pd.read_csv(tmp_path / "out" / "raters.csv")
    t = pd.read_csv(tmp_path / "out" / "trials.csv")
    info = study_info(str(db))
    assert info["simulated"] is True and info["true_fool_rates"] == {"resnet_l2": 0.04, "gan": 0.4}
    assert len(r) == 20 and (r.status == "abandoned").sum() + (r.status == "complete").sum() == 20
    complete = r[r.status == "complete"]
    per_method = complete.method.value_counts()  # abandoned slots were refilled: completes stay balanced
    assert len(per_method) == 2 and per_method.max() - per_method.min() <= 1
    t = t[t.rater_id.isin(complete.rater_id)]
    assert (t.groupby("rater_id").size() == 12).all()
    # inattentive raters fail a golden question (by construction); attentive raters never do
    assert ((complete.golden_correct < complete.golden_total).sum()) >= 1
    kept = complete[complete.golden_correct == complete.golden_total]
    counted = t[t.rater_id.isin(kept.rater_id) & ~t.is_practice & ~t.is_golden]
    gan = counted[counted.method == "gan"].chose_model
    # no rater or image variation: a binomial with p = 0.4; 5 SE is a loose but real check
    se = (0.4 * 0.6 / len(gan)) ** 0.5
    assert abs(gan.mean() - 0.4) < 5 * se
    dispose_engine(str(db))


def _crowd_study(tmp_path, monkeypatch, crowd) -> str:
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=16, methods=("gan",))
    url = f"sqlite:///{tmp_path / 'crowd.db'}"
    init_study(folder, url, raters_per_method=2, n_test=3, n_practice=2, n_golden=1, seed=3, crowd=crowd)
    monkeypatch.setenv("PRSR_STUDY_DB", url)
    monkeypatch.setenv("PRSR_STUDY_TEST_HOOK", "1")
    return url


def test_texts_from_yaml_screenouts_and_mturk_preview(tmp_path, monkeypatch):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(
        "texts:\n  title: Zebra study\n  consent: Consent text from the file.\n"
        "  contact: 'Ethics: board 42'\n"
        "platform: mturk\nrequire_pid: true\nscreenout:\n  no_consent: NOCONS1\n  bad_link: BADLINK1\n"
    )
    url = _crowd_study(tmp_path, monkeypatch, load_config(cfg))
    preview = AppTest.from_file(APP, default_timeout=60)
    for k, v in dict(
        assignmentId="ASSIGNMENT_ID_NOT_AVAILABLE",
        hitId="H1",
        workerId="",
        turkSubmitTo="https://workersandbox.mturk.com",
    ).items():
        preview.query_params[k] = v
    preview.run()
    assert preview.title[0].value == "Zebra study" and "preview" in preview.info[0].value
    assert not preview.checkbox  # no consent, no slot while previewing
    bare = AppTest.from_file(APP, default_timeout=60).run()  # require_pid: a link without workerId is refused
    assert "BADLINK1" in bare.markdown[0].value
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in dict(
        assignmentId="A1", hitId="H1", workerId="W1", turkSubmitTo="https://workersandbox.mturk.com"
    ).items():
        at.query_params[k] = v
    at.run()
    assert "Consent text from the file." in at.markdown[0].value and "board 42" in at.caption[0].value
    at = at.button(key="decline").click().run()
    assert "NOCONS1" in at.markdown[0].value
    assert len(read_tables(url)[0]) == 0  # neither took a slot
    with pytest.raises(ValueError, match="unknown keys"):
        cfg.write_text("platfrom: prolific\n")
        load_config(cfg)


def test_prolific_ids_are_recorded_and_a_returning_pid_gets_its_code(tmp_path, monkeypatch):
    url = _crowd_study(
        tmp_path,
        monkeypatch,
        dict(
            platform="prolific",
            completion_code="C0MPLETE",
            completion_url="https://app.prolific.com/submissions/complete?cc={code}",
        ),
    )
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in dict(PROLIFIC_PID="AbC123", STUDY_ID="st1", SESSION_ID="se1").items():
        at.query_params[k] = v
    at.run()
    at.checkbox(key="consent-checkbox").check().run()
    at = _click(at, "Continue")
    at = _click(at, "Start the practice")
    for k in range(5):
        at = _click(at, "Left")
        if k < 2:
            at = _click(at, "Next pair")
    assert at.title[0].value == "Thank you!" and at.code[0].value == "C0MPLETE"
    r, t = read_tables(url)
    assert (r.rater_id[0], r.participant_id[0], r.study_id[0], r.session_id[0]) == ("abc123", "AbC123", "st1", "se1")
    assert r.user_agent[0] == "AppTest" and r.viewport_w[0] == 1280 and t.answered_at.notna().all()
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["PROLIFIC_PID"] = " abc123 "
    again.run()
    assert again.code[0].value == "C0MPLETE" and len(read_tables(url)[0]) == 1


def test_handoff_targets():
    assert (
        completion_target("https://app.prolific.com/submissions/complete?cc={code}", "AB 1")
        == "https://app.prolific.com/submissions/complete?cc=AB%201"
    )
    assert mturk_submit_url("https://www.mturk.com") == "https://www.mturk.com/mturk/externalSubmit"
    with pytest.raises(ValueError, match="not one of MTurk"):
        mturk_submit_url("https://evil.example/")  # never an open redirect
    link = read_link(
        {"workerId": "W", "assignmentId": "A9", "hitId": "H", "turkSubmitTo": "https://www.mturk.com"}, "mturk"
    )
    assert (link["pid"], link["study_id"], link["session_id"], link["preview"]) == ("W", "H", "A9", False)
    target = handoff({"platform": "mturk"}, link, "CODE", "complete")
    assert target == dict(
        url="https://www.mturk.com/mturk/externalSubmit",
        method="post",
        fields=dict(assignmentId="A9", code="CODE", outcome="complete"),
    )
    assert handoff({"platform": "none"}, {}, "CODE", "complete") is None


def test_admin_secret_attempts_are_rate_limited(study_url, monkeypatch):
    monkeypatch.setenv("PRSR_STUDY_ADMIN_SECRET", "s3cret")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["admin"] = "1"
    at.run()
    for k in range(store.ADMIN_MAX_FAILURES):
        at.text_input(key="admin-secret").input(f"guess{k}").run()
        assert "Wrong secret" in at.error[0].value
    at.text_input(key="admin-secret").input("s3cret").run()
    assert not at.exception, at.exception
    assert "Too many wrong attempts" in at.error[0].value and not at.dataframe


def test_instructions_name_the_window_and_comments_reach_the_export(tmp_path, monkeypatch):
    """With a response window the instructions say so ("1 second", never "second(s)"); the comments
    box on the completion page stores its text, and `prsr study export` has it in raters.csv."""
    crowd = load_config(None)
    crowd["texts"]["comments"] = True
    crowd["response_window_ms"] = 1500
    url = _crowd_study(tmp_path, monkeypatch, crowd)
    at = _session("commenter")
    at.checkbox(key="consent-checkbox").check().run()
    at = _click(at, "Continue")
    text = at.markdown[0].value
    assert "**1 second**" in text and "within **1.5 seconds** after the images disappear" in text
    assert "second(s)" not in text and "Take your time" not in text
    at = _click(at, "Start the practice")
    for k in range(5):
        at = _click(at, "Left")
        if k < 2:
            at = _click(at, "Next pair")
    assert at.title[0].value == "Thank you!"
    at.text_area(key="comments").input("Pairs were small; fine otherwise.").run()
    at = at.button(key="send-comments").click().run()
    assert not at.exception
    assert prsr_main(["study", "export", "--db", url, "--out", str(tmp_path / "out")]) == 0
    r = pd.read_csv(tmp_path / "out" / "raters.csv")
    assert r.comments.tolist() == ["Pairs were small; fine otherwise."]
    settings = (tmp_path / "out" / "study.json").read_text()
    assert '"response_window_ms": 1500' in settings and '"display_px": 192' in settings
