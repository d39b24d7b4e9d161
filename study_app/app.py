"""The Streamlit study app: device check -> consent -> instructions -> practice with feedback -> trials ->
completion code and hand-off to the crowd platform.

A screen too small for the pair (a phone) stops at the device check: the page names the study, asks
to rotate the device or enlarge the window (it checks again by itself), and offers the `device`
screen-out (its code and hand-off). The trial component checks the size again before every exposure
(too small: it pauses) and during it (a resize voids the pair; the app then shows a new one).

Run by `prsr study serve --db URL`, which passes the database URL in the `PRSR_STUDY_DB` environment
variable. The rater id comes from the link (`?pid=`, Prolific's `PROLIFIC_PID`, MTurk's `workerId`;
trimmed, compared case-insensitively) or, without one (unless the study requires it), from a resume
token put into the URL and into the browser's local storage, so a refresh, Back or a new tab resumes
the same rater. Every step is a call to `study_app.store`; the browser session holds only which trial
is on screen, so a refresh resumes from the database (and voids the trial that was on screen).

Client identity (slot-claim and admin rate limits): the TCP peer (`st.context.ip_address`), or, with
`PRSR_STUDY_TRUSTED_PROXIES=N` (`serve --trusted-proxies N`), the N-th address from the right of
`X-Forwarded-For` — the one the outermost trusted proxy saw. Entries left of it are client-supplied
and never trusted. Only a salted hash of the address is stored. Local connections (no address) are
not limited.

`?admin=1` opens the admin page (progress, raters with codes and platform ids, CSV export), protected
by the secret in `PRSR_STUDY_ADMIN_SECRET` or Streamlit secrets (`admin_secret`); wrong attempts are
rate-limited per client and logged in the database.

Test hooks: Streamlit widget keys `consent-checkbox`, `continue`, `decline`, `start`, `next`,
`leave-device`, and the containers `completion-code`, `device-refused`, `screenout`, `notice` (class
`st-key-<name>`); the trial's own hooks are in `trial_component`. `PRSR_STUDY_TEST_HOOK=1` replaces the
timed component and the device check by plain buttons and a fixed desktop environment (`AppTest` only).
"""

from __future__ import annotations

import hmac
import json
import logging
import os

import streamlit as st

from study_app import store
from study_app.config import DEFAULT_TEXTS, format_instructions, seconds_text
from study_app.db import open_study
from study_app.env_probe import CHROME_PX, GAP_PX, fits
from study_app.env_probe import make_component as make_env_probe
from study_app.export import progress_table, read_tables, read_voided, study_info
from study_app.handoff import handoff, read_link, redirect_component
from study_app.trial_component import make_component, make_keys_component, trial_data

TEST_HOOK = os.environ.get("PRSR_STUDY_TEST_HOOK") == "1"
TEST_ENV = dict(
    viewport_w=1280, viewport_h=800, device_pixel_ratio=1.0, user_agent="AppTest", refresh_hz=60.0, content_w=704
)

st.set_page_config(page_title="Image study", layout="centered")


@st.cache_resource
def _engine(url: str):
    return open_study(url)


@st.cache_resource
def _trial_component():
    return make_component()


@st.cache_resource
def _keys_component():
    return make_keys_component()


@st.cache_resource
def _env_component():
    return make_env_probe()


@st.cache_resource
def _handoff_component():
    return redirect_component()


def _db_url() -> str:
    url = os.environ.get("PRSR_STUDY_DB", "")
    if not url:
        st.error("No study database configured: start the app with `prsr study serve --db URL`.")
        st.stop()
    return url


def _client(settings: dict) -> str | None:
    """The salted key of this browser's address (see the module docstring for the proxy rule)."""
    address = None
    hops = int(os.environ.get("PRSR_STUDY_TRUSTED_PROXIES", "0") or 0)
    if hops == 0 and st.context.headers.get("X-Forwarded-For") and not st.session_state.get("xff_warned"):
        st.session_state.xff_warned = True
        logging.getLogger("study_app").warning(
            "X-Forwarded-For present but not trusted: start `prsr study serve --trusted-proxies 1` behind a proxy"
        )
    if hops > 0:
        forwarded = [p.strip() for p in (st.context.headers.get("X-Forwarded-For") or "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    if address is None:
        address = st.context.ip_address
    if not isinstance(address, str):  # no client context (AppTest): unknown
        address = None
    salt = settings.get("client_salt") or f"{settings['created_at']}|{settings['seed']}"
    return store.client_key(address, salt)


def _admin_secret() -> str | None:
    secret = os.environ.get("PRSR_STUDY_ADMIN_SECRET")
    if secret:
        return secret
    try:
        return st.secrets.get("admin_secret")
    except Exception:  # no secrets.toml: the admin page stays locked
        return None


def admin_page(url: str, engine, settings: dict) -> None:
    st.title("Study admin")
    ss = st.session_state
    secret = _admin_secret()
    if not secret:
        st.error("The admin page is disabled: set PRSR_STUDY_ADMIN_SECRET (or `admin_secret` in Streamlit secrets).")
        return
    given = st.text_input("Admin secret", type="password", key="admin-secret")
    if not ss.get("admin_ok"):
        if not given:
            return
        if ss.get("admin_checked") != given:  # count each submitted value once, not every rerun
            ss.admin_checked = given
            ok = hmac.compare_digest(given.encode(), secret.encode())
            ss.admin_outcome = store.admin_attempt(engine, _client(settings) or "local", ok)
            ss.admin_ok = ss.admin_outcome == "ok"
        if not ss.admin_ok:
            st.error(
                "Too many wrong attempts from this address; try again later."
                if ss.admin_outcome == "limited"
                else "Wrong secret."
            )
            return
    st.subheader("Progress per method")
    st.dataframe(progress_table(url), hide_index=True)
    r, t = read_tables(url)
    v = read_voided(url)
    st.subheader("Raters")
    st.dataframe(r, hide_index=True)
    st.download_button("raters.csv", r.to_csv(index=False), file_name="raters.csv", mime="text/csv")
    st.download_button("trials.csv", t.to_csv(index=False), file_name="trials.csv", mime="text/csv")
    st.download_button("voided.csv", v.to_csv(index=False), file_name="voided.csv", mime="text/csv")
    info = json.dumps(study_info(url), indent=1, sort_keys=True)
    st.download_button("study.json", info, file_name="study.json", mime="application/json")


def _go(stage: str) -> None:
    st.session_state.stage = stage
    st.rerun()


def _texts(settings: dict) -> dict:
    return {**DEFAULT_TEXTS, **json.loads(settings.get("texts") or "{}")}


def _start_session(engine, settings: dict) -> None:
    """First run of a browser session: read the link; the device check comes next."""
    ss = st.session_state
    ss.trial = None
    ss.feedback = None
    ss.notice = None
    ss.env = None
    ss.link = read_link(st.query_params, settings.get("platform") or "none")
    ss.rater_id, ss.id_source = None, "token"
    if ss.link["preview"]:
        ss.stage = "preview"
        return
    pid = ss.link["pid"]
    if pid is None:
        ss.stage = "bad_link" if settings.get("require_pid") else "device_check"
        return
    try:
        ss.rater_id = store.normalise_participant_id(pid)
    except ValueError:
        ss.stage = "bad_link"
        return
    ss.id_source = "pid"
    ss.stage = "device_check"


def _route(engine) -> None:
    """After the device check: where this rater is (new, resuming, finished, screened out)."""
    ss = st.session_state
    status = store.rater_status(engine, ss.rater_id) if ss.rater_id else None
    if status is None:
        _go("consent")
    ss.rater_id = status["rater_id"]
    if status["status"] == "complete":
        _go("done")
    if status["status"] == "abandoned":
        _go("expired")
    if status["status"] == "screened_out":
        _go("failed_attention")
    # a returning rater resumes where they stopped (and the environment is re-measured)
    store.enrol(engine, ss.rater_id, env=ss.env)
    _go("instructions" if status["answered"] == 0 else "trials")


def _too_small(settings: dict, texts: dict) -> None:
    """The device check failed: say why, keep checking, and offer the `device` screen-out."""
    st.title(texts["title"])
    with st.container(key="device-refused"):
        st.warning(
            f"This study needs a window at least {2 * settings['display_px'] + GAP_PX} pixels wide and "
            f"{settings['display_px'] + CHROME_PX} pixels high, so that both images are shown whole "
            "and at the same size for everyone. Please turn your device sideways, enlarge "
            "the window, or use a computer; this page checks again by itself."
        )
        code = json.loads(settings.get("screenout") or "{}").get("device")
        if code:
            st.markdown(f"If you cannot, return to the platform with the code `{code}`.")
    if st.button("I cannot use a larger screen: return to the platform", key="leave-device"):
        _go("device")
    if texts.get("contact"):
        st.caption(texts["contact"])


def device_page(engine, settings: dict, texts: dict) -> None:
    ss = st.session_state
    if TEST_HOOK:
        ss.env = dict(TEST_ENV)
    else:

        def on_env():
            value = st.session_state.get("env-probe")
            env = value.get("env") if hasattr(value, "get") else None
            if isinstance(env, dict):
                st.session_state.env = env

        result = _env_component()(
            key="env-probe", data=dict(study=settings.get("client_salt") or "", remember=""), on_env_change=on_env
        )
        env = result.get("env") if result is not None else None
        if isinstance(env, dict):
            ss.env = env
    env = ss.env
    if env is None:
        st.info("Checking your screen…")
        return
    if not fits(env, settings["display_px"]):
        _too_small(settings, texts)
        return
    if ss.rater_id is None:  # a bare link: this browser may already hold a resume token
        token = env.get("stored_token") or ""
        try:
            token = store.normalise_participant_id(token) if token else ""
        except ValueError:
            token = ""
        if token and store.rater_status(engine, token) is not None:
            ss.rater_id = token
            st.query_params["pid"] = token
    _route(engine)


def consent_page(engine, settings: dict, texts: dict) -> None:
    ss = st.session_state
    st.title(texts["title"])
    st.markdown(texts["consent"])
    if texts.get("contact"):
        st.caption(texts["contact"])
    agree = st.checkbox("I have read the above and agree to take part.", key="consent-checkbox")
    left, right = st.columns(2)
    if left.button("Continue", type="primary", disabled=not agree, key="continue"):
        if ss.rater_id is None:
            ss.rater_id = store.new_resume_token()
            st.query_params["pid"] = ss.rater_id  # a refresh of this URL resumes the session
        link = ss.link
        ids = dict(
            participant_id=link["pid"] or ss.rater_id,
            study_id=link["study_id"],
            session_id=link["session_id"],
            platform=link["platform"],
        )
        try:
            enrolment = store.enrol(
                engine, ss.rater_id, id_source=ss.id_source, client=_client(settings), ids=ids, env=ss.env
            )
        except store.StudyFull:
            _go("full")
        except store.TooManyClaims:
            _go("limited")
        ss.rater_id = enrolment.rater_id
        _go("instructions")
    if right.button("I do not agree", key="decline"):
        _go("no_consent")


def _remember_token(settings: dict) -> None:
    """Keep an anonymous rater's resume token in local storage (Back to the bare link resumes)."""
    ss = st.session_state
    if ss.id_source == "token" and ss.rater_id and not TEST_HOOK:
        _env_component()(
            key="env-remember",
            data=dict(study=settings.get("client_salt") or "", remember=ss.rater_id),
            on_env_change=lambda: None,
        )


def instructions_page(settings: dict, texts: dict) -> None:
    st.title("Instructions")
    st.markdown(format_instructions(texts["instructions"], settings))
    _remember_token(settings)
    if st.session_state.rater_id and st.session_state.id_source == "token":
        st.caption(f"Your resume code is `{st.session_state.rater_id}` (it is also in this page's address).")
    if st.button("Start the practice", type="primary", key="start"):
        _go("trials")


def _progress(trial: store.Trial) -> None:
    """Practice and counted pairs have their own bars (the counted bar starts at 0 after practice)."""
    if trial.is_practice:
        st.progress(
            trial.trial_index / max(1, trial.n_practice), text=f"Practice {trial.trial_index + 1} of {trial.n_practice}"
        )
    else:
        k = trial.trial_index - trial.n_practice
        st.progress(k / trial.n_test, text=f"Pair {k + 1} of {trial.n_test}")


def _ended(engine, rater_id: str) -> None:
    """The session cannot go on: say why (expired, screened out, or out of date in another window)."""
    status = (store.rater_status(engine, rater_id) or {}).get("status")
    if status == "abandoned":
        _go("expired")
    if status == "screened_out":
        _go("failed_attention")
    if status == "complete":
        _go("done")
    _go("stale")


def _submit(engine, trial: store.Trial, answer: dict) -> None:
    ss = st.session_state
    try:
        result = store.record_answer(
            engine,
            trial.rater_id,
            trial.trial_index,
            trial.attempt,
            answer.get("choice"),
            answer.get("exposure_ms"),
            answer.get("reaction_ms"),
            bool(answer.get("tab_hidden")),
        )
    except ValueError:
        st.error("That answer could not be read; the pair will be shown again.")
        ss.trial = None
        return
    ss.trial = None
    if result.screened_out:
        _go("failed_attention")
    if result.status == "stale":  # voided or ended: this page is out of date
        _ended(engine, trial.rater_id)
    if trial.is_practice and result.status in ("recorded", "duplicate"):
        ss.feedback = (bool(result.correct), trial.real_side, trial.token, result.timed_out)
        _go("feedback")
    _go("done" if result.complete else "trials")


def _issue(engine) -> store.Trial:
    """The trial on screen, or the next one from the database (leaving the page when there is none)."""
    ss = st.session_state
    if ss.trial is None:
        try:
            ss.trial = store.next_trial(engine, ss.rater_id)
        except store.SessionExpired:
            _ended(engine, ss.rater_id)
        if ss.trial is None:
            _go("done")
    return ss.trial


def _hook_buttons(engine, trial: store.Trial) -> None:
    """PRSR_STUDY_TEST_HOOK: plain answer buttons instead of the timed component (AppTest only)."""
    st.caption("test hook: plain answer buttons instead of the timed component")
    left, right = st.columns(2)
    for column, side in ((left, "left"), (right, "right")):
        if column.button(side.title(), key=f"hook-{side}-{trial.token}"):
            _submit(engine, trial, dict(choice=side, exposure_ms=trial.exposure_ms, reaction_ms=0.0, tab_hidden=False))


def trials_page(engine, settings: dict) -> None:
    ss = st.session_state
    trial = _issue(engine)
    _progress(trial)
    if ss.get("notice"):
        with st.container(key="notice"):
            st.info(ss.notice)
        ss.notice = None
    if TEST_HOOK:
        _hook_buttons(engine, trial)
        return
    key = f"trial-{trial.token}"

    def on_exposed():
        state = st.session_state.get(key)
        if hasattr(state, "get") and state.get("exposed") == trial.token:
            st.session_state.exposed = trial.token

    if ss.get("exposed") == trial.token:
        left = right = None  # the exposure is over: the page data no longer carries the pixels
    else:
        left, right = store.trial_images(engine, trial)
    data = trial_data(
        trial.token,
        left,
        right,
        display_px=settings["display_px"],
        exposure_ms=trial.exposure_ms,  # the study's, or this rater's staircase step
        fixation_ms=settings["fixation_ms"],
        practice=trial.is_practice,
        response_window_ms=settings.get("response_window_ms"),
    )
    result = _trial_component()(
        key=key,
        data=data,
        on_answer_change=lambda: None,
        on_exposed_change=on_exposed,
        on_void_change=lambda: None,
    )
    answer = result.get("answer") if result is not None else None
    void = result.get("void") if result is not None else None
    if isinstance(void, dict) and void.get("token") == trial.token:
        # the window changed size during the exposure: void this attempt; the next pair replaces it
        store.void_trial(engine, trial.rater_id, trial.trial_index, trial.attempt, "resize")
        ss.trial = None
        ss.notice = "The window changed size while the pair was shown, so that pair does not count: here is a new one."
        st.rerun()
    if isinstance(answer, dict) and answer.get("token") == trial.token:
        _submit(engine, trial, answer)


def feedback_page(settings: dict) -> None:
    ss = st.session_state
    correct, real_side, token, late = ss.feedback or (False, "left", "", False)
    st.html(f'<div class="prsr-trial" data-testid="trial" data-phase="feedback" data-correct="{int(correct)}"></div>')
    if late:
        window = seconds_text(settings.get("response_window_ms") or 0)
        st.warning(f"Too late: choose within {window} after the images disappear.")
    if correct:
        st.success(f"Correct: the real photograph was on the **{real_side}**.")
    else:
        st.error(f"Not this time: the real photograph was on the **{real_side}**.")
    st.caption("Press Enter or Space, or click the button, for the next pair.")
    pressed = None
    if not TEST_HOOK:
        keys = _keys_component()(key=f"next-keys-{token}", data=dict(token=token), on_pressed_change=lambda: None)
        pressed = keys.get("pressed") if keys is not None else None
    if st.button("Next pair", type="primary", key="next") or (pressed and pressed == token):
        ss.feedback = None
        _go("trials")


def _hand_off(settings: dict, code: str | None, outcome: str, *, auto: bool = True) -> None:
    """Send the participant back to the platform (in the page, after a short pause) and show a link."""
    try:
        target = handoff(settings, st.session_state.get("link") or {}, code, outcome)
    except ValueError as e:  # a turkSubmitTo that is not MTurk's: show the code only
        st.warning(f"Could not return you to the platform automatically ({e}); please enter the code there.")
        return
    if target is None:
        return
    if target["method"] == "get":
        st.link_button("Return to the study platform", target["url"], type="primary")
    else:
        st.caption("Returning you to Mechanical Turk…")
    if auto or target["method"] == "post":
        _handoff_component()(key=f"handoff-{outcome}", data=dict(target, delay_ms=1500))


def done_page(engine, settings: dict, texts: dict) -> None:
    ss = st.session_state
    status = store.rater_status(engine, ss.rater_id) or {}
    code = status.get("completion_code")
    st.title("Thank you!")
    st.progress(1.0, text="Complete")
    st.markdown(texts["debrief"])
    st.markdown("Your completion code is:")
    with st.container(key="completion-code"):
        st.code(code or "(not available)", language=None)
    if texts.get("contact"):
        st.caption(texts["contact"])
    comments = bool(texts.get("comments"))
    if comments and not ss.get("comments_sent"):
        text = st.text_area("Comments (optional)", key="comments", max_chars=4000)
        if st.button("Send comments", key="send-comments") and text.strip():
            store.record_comments(engine, ss.rater_id, text)
            ss.comments_sent = True
            st.rerun()
    _hand_off(settings, code, "complete", auto=not comments or bool(ss.get("comments_sent")))


SCREENOUTS = {
    "no_consent": "You chose not to take part. Thank you for considering it; nothing about you was stored.",
    "failed_attention": "This session ended because several attention-check pairs were answered wrongly.",
    "full": "Thank you for your interest: every place in this study is taken.",
    "expired": "This session expired after a long pause and its place was given to someone else.",
    "bad_link": "This study link is incomplete or its participant id is not valid (1-64 letters, digits or "
    "_ . @ : + -). Please open the study again from the platform's page.",
    "device": "This study needs a larger screen than this device's (a computer, or a tablet turned sideways). "
    "Thank you for your interest; nothing about you was stored.",
}


def screenout_page(settings: dict, texts: dict, reason: str) -> None:
    codes = json.loads(settings.get("screenout") or "{}")
    st.title(texts["title"])
    with st.container(key="screenout"):
        st.warning(SCREENOUTS[reason])
        if codes.get(reason):
            st.markdown(f"Your code for the platform is `{codes[reason]}`.")
    if texts.get("contact"):
        st.caption(texts["contact"])
    _hand_off(settings, codes.get(reason), reason)


def preview_page(settings: dict, texts: dict) -> None:
    st.title(texts["title"])
    st.info("This is a preview. Accept the HIT to take part; no place is reserved before that.")
    st.markdown(format_instructions(texts["instructions"], settings))


def main() -> None:
    url = _db_url()
    engine = _engine(url)
    settings = store.study_settings(engine)
    if st.query_params.get("admin") == "1":
        admin_page(url, engine, settings)
        return
    texts = _texts(settings)
    if "stage" not in st.session_state:
        _start_session(engine, settings)
    stage = st.session_state.stage
    if stage in SCREENOUTS:
        screenout_page(settings, texts, stage)
    elif stage == "limited":
        st.warning("Too many places were taken from this connection recently; no further place is given to it.")
    elif stage == "stale":
        st.warning(
            "This page is out of date: the study continues in another window. Reload this page to continue here."
        )
    elif stage == "preview":
        preview_page(settings, texts)
    elif stage == "device_check":
        device_page(engine, settings, texts)
    elif stage == "consent":
        consent_page(engine, settings, texts)
    elif stage == "instructions":
        instructions_page(settings, texts)
    elif stage == "trials":
        trials_page(engine, settings)
    elif stage == "feedback":
        feedback_page(settings)
    elif stage == "done":
        done_page(engine, settings, texts)


main()
