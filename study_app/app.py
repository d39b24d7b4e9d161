"""The Streamlit study app: consent -> instructions -> practice with feedback -> trials -> completion code.

Run by `prsr study serve --db URL`, which passes the database URL in the `PRSR_STUDY_DB` environment
variable. The rater id comes from `?pid=` (validated: 1-64 of A-Z a-z 0-9 _ . @ : + -) or, without
one, from a generated resume token that is put into the URL so a refresh resumes. Every step is a
call to `study_app.store`; the browser session holds only which trial is on screen, so a refresh
resumes from the database (and voids the trial that was on screen).

`?admin=1` opens the admin page (progress per method, CSV export), protected by the secret in
`PRSR_STUDY_ADMIN_SECRET` or Streamlit secrets (`admin_secret`).

`PRSR_STUDY_TEST_HOOK=1` replaces the timed component by two plain buttons (for `AppTest` only).
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from study_app import store
from study_app.db import open_study
from study_app.export import progress_table, read_tables
from study_app.trial_component import make_component, trial_data

TEST_HOOK = os.environ.get("PRSR_STUDY_TEST_HOOK") == "1"

st.set_page_config(page_title="Image study", layout="centered")


@st.cache_resource
def _engine(url: str):
    return open_study(url)


@st.cache_resource
def _trial_component():
    return make_component()


def _db_url() -> str:
    url = os.environ.get("PRSR_STUDY_DB", "")
    if not url:
        st.error("No study database configured: start the app with `prsr study serve --db URL`.")
        st.stop()
    return url


def _admin_secret() -> str | None:
    secret = os.environ.get("PRSR_STUDY_ADMIN_SECRET")
    if secret:
        return secret
    try:
        return st.secrets.get("admin_secret")
    except Exception:  # no secrets.toml: the admin page stays locked
        return None


def admin_page(url: str) -> None:
    st.title("Study admin")
    secret = _admin_secret()
    if not secret:
        st.error("The admin page is disabled: set PRSR_STUDY_ADMIN_SECRET (or `admin_secret` in Streamlit secrets).")
        return
    given = st.text_input("Admin secret", type="password")
    if not given or not hmac.compare_digest(given.encode(), secret.encode()):
        if given:
            st.error("Wrong secret.")
        return
    st.subheader("Progress per method")
    st.dataframe(progress_table(url), hide_index=True)
    r, t = read_tables(url)
    st.download_button("raters.csv", r.to_csv(index=False), file_name="raters.csv", mime="text/csv")
    st.download_button("trials.csv", t.to_csv(index=False), file_name="trials.csv", mime="text/csv")


def _go(stage: str) -> None:
    st.session_state.stage = stage
    st.rerun()


def _start_session(engine) -> None:
    """First run of a browser session: find the rater id and where they are."""
    ss = st.session_state
    ss.trial = None
    ss.feedback = None
    pid = st.query_params.get("pid")
    if pid is None:
        ss.rater_id, ss.id_source, ss.stage = None, "token", "consent"
        return
    try:
        ss.rater_id = store.validate_participant_id(pid)
    except ValueError:
        ss.stage = "bad_id"
        return
    ss.id_source = "pid"
    status = store.rater_status(engine, ss.rater_id)
    if status is None:
        ss.stage = "consent"
    elif status["status"] == "complete":
        ss.stage = "done"
    elif status["status"] == "abandoned":
        ss.stage = "expired"
    else:  # a returning rater resumes where they stopped
        store.enrol(engine, ss.rater_id)  # refreshes last_seen
        ss.stage = "instructions" if status["answered"] == 0 else "trials"


def consent_page(engine) -> None:
    st.title("Which image is from a camera?")
    st.markdown(
        "This study is about how realistic computer-generated images look. You will see pairs of small "
        "images, each pair for one second, and decide which one is a real photograph. It takes about "
        "five minutes. Participation is voluntary; we store only your answers, their timing and your "
        "participant id, and you may stop at any time."
    )
    agree = st.checkbox("I have read the above and agree to take part.")
    if st.button("Continue", type="primary", disabled=not agree):
        ss = st.session_state
        if ss.rater_id is None:
            ss.rater_id = store.new_resume_token()
            st.query_params["pid"] = ss.rater_id  # a refresh of this URL resumes the session
        try:
            store.enrol(engine, ss.rater_id, id_source=ss.id_source)
        except store.StudyFull:
            _go("full")
        _go("instructions")


def instructions_page(settings: dict) -> None:
    st.title("Instructions")
    st.markdown(
        f"""
- A **+** appears in the middle of the screen: look at it.
- Two images then appear side by side for **one second** and disappear. One is a real photograph,
  the other was made by a computer.
- Then click **Left** or **Right**: *which image, would you guess, is from a camera?* Take your time
  to answer; only the images are time-limited.
- First come **{settings['n_practice']} practice pairs** where we tell you the right answer, then
  **{settings['n_test_trials']} pairs** that count. Some pairs are easy checks of attention.
- Please keep this tab in front and do not reload the page during a pair.
"""
    )
    if st.session_state.rater_id and st.session_state.id_source == "token":
        st.caption(f"Your resume code is `{st.session_state.rater_id}` (it is also in this page's address).")
    if st.button("Start the practice", type="primary"):
        _go("trials")


def _progress(trial: store.Trial) -> None:
    done = trial.trial_index
    total = trial.n_practice + trial.n_test
    if trial.is_practice:
        label = f"Practice {trial.trial_index + 1} of {trial.n_practice}"
    else:
        label = f"Pair {trial.trial_index - trial.n_practice + 1} of {trial.n_test}"
    st.progress(done / total, text=label)


def _submit(engine, trial: store.Trial, answer: dict) -> None:
    ss = st.session_state
    try:
        result = store.record_answer(
            engine, trial.rater_id, trial.trial_index, trial.attempt, answer.get("choice"),
            answer.get("exposure_ms"), answer.get("reaction_ms"), bool(answer.get("tab_hidden")),
        )
    except ValueError:
        st.error("That answer could not be read; the pair will be shown again.")
        ss.trial = None
        return
    ss.trial = None
    if result.status == "stale":  # the trial was voided: this page is out of date (another tab or a reload)
        _go("stale")
    if trial.is_practice and result.status in ("recorded", "duplicate"):
        ss.feedback = (bool(result.correct), trial.real_side)
        _go("feedback")
    _go("done" if result.complete else "trials")


def trials_page(engine, settings: dict) -> None:
    ss = st.session_state
    if ss.trial is None:
        try:
            ss.trial = store.next_trial(engine, ss.rater_id)
        except store.SessionExpired:
            _go("expired")
        if ss.trial is None:
            _go("done")
    trial: store.Trial = ss.trial
    _progress(trial)
    if TEST_HOOK:
        st.caption("test hook: plain answer buttons instead of the timed component")
        left, right = st.columns(2)
        if left.button("Left", key=f"hook-left-{trial.token}"):
            _submit(engine, trial, dict(choice="left", exposure_ms=1000.0, reaction_ms=0.0, tab_hidden=False))
        if right.button("Right", key=f"hook-right-{trial.token}"):
            _submit(engine, trial, dict(choice="right", exposure_ms=1000.0, reaction_ms=0.0, tab_hidden=False))
        return
    left_png, right_png = store.trial_pngs(engine, trial)
    data = trial_data(trial.token, left_png, right_png, display_px=settings["display_px"],
                      exposure_ms=settings["exposure_ms"], fixation_ms=settings["fixation_ms"],
                      practice=trial.is_practice)
    result = _trial_component()(key=f"trial-{trial.token}", data=data, on_answer_change=lambda: None)
    answer = result.get("answer") if result is not None else None
    if isinstance(answer, dict) and answer.get("token") == trial.token:
        _submit(engine, trial, answer)


def feedback_page() -> None:
    correct, real_side = st.session_state.feedback or (False, "left")
    if correct:
        st.success(f"Correct: the real photograph was on the **{real_side}**.")
    else:
        st.error(f"Not this time: the real photograph was on the **{real_side}**.")
    if st.button("Next pair", type="primary"):
        st.session_state.feedback = None
        _go("trials")


def done_page(engine) -> None:
    status = store.rater_status(engine, st.session_state.rater_id) or {}
    st.title("Thank you!")
    st.progress(1.0, text="Complete")
    st.markdown("You have finished the study. Your completion code is:")
    st.code(status.get("completion_code") or "(not available)", language=None)


def main() -> None:
    url = _db_url()
    engine = _engine(url)
    if st.query_params.get("admin") == "1":
        admin_page(url)
        return
    settings = store.study_settings(engine)
    if "stage" not in st.session_state:
        _start_session(engine)
    stage = st.session_state.stage
    if stage == "bad_id":
        st.error("The participant id in this link is not valid (1-64 letters, digits or _ . @ : + -).")
    elif stage == "full":
        st.info("Thank you for your interest: every place in this study is taken.")
    elif stage == "expired":
        st.warning("This session expired after a long pause and its place was given to someone else.")
    elif stage == "stale":
        st.warning("This page is out of date: the study continues in another window. "
                   "Reload this page to continue here.")
    elif stage == "consent":
        consent_page(engine)
    elif stage == "instructions":
        instructions_page(settings)
    elif stage == "trials":
        trials_page(engine, settings)
    elif stage == "feedback":
        feedback_page()
    elif stage == "done":
        done_page(engine)


main()
