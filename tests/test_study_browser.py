"""The timed trial in a real browser: headless Debian Chromium driven by Playwright (never a downloaded
browser) completes a test-size session (2 practice + 3 trials) against `streamlit run` of the app.

A probe injected into the page (`add_init_script`, independent of the app's own report) records on
every animation frame whether both images are visible and whether an answer button is clickable. It
checks that the pair is on screen 1000 ms within one frame (~17 ms) and that no answer can be given
during the exposure (buttons hidden and disabled; real mouse clicks on their place are ignored).
The run also takes the screenshots in docs/study.md: into a temporary folder, or into $PRSR_SCREENSHOTS when set
(`PRSR_SCREENSHOTS=docs/images pytest tests/test_study_browser.py` refreshes the copies in docs/images).
"""

from __future__ import annotations

import base64
import http.server
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from study_browser_helpers import APP, CHROMIUM, CHROMIUM_ARGS, free_port, require_browser, wait_healthy

from study_app import store
from study_app.builder import decode_png, init_study
from study_app.db import dispose_engine, get_engine
from study_app.demo import write_demo_predictions
from study_app.export import read_tables, read_voided
from study_app.schema import images
from study_app.staircase import StaircaseRule, exposures_for

FRAME_MS = 1000 / 60 + 0.5
# the staircase of the integrity sessions: starting mid-grid, the first counted answer moves it whichever it is
MID_START = StaircaseRule(start_ms=501)
EXPOSURE_MS = 2500  # the third test's exposure: time enough to resize the window during it
WINDOW_MS = 4000  # the response window of the first session: long enough for a prompt click on a busy machine

# Runs in every document before the page's scripts. The trial lives in an open shadow root (the
# component's style isolation); the probe finds it there by its test hook and samples it once per
# animation frame: whether both canvases hold pixels, whether an answer is clickable, the canvases'
# attributes during the exposure, and a snapshot of the whole page (shadow roots included) in the
# first frame of the response phase.
PROBE = """
(() => {
  const state = {};
  let trial = null, scanAt = 0;
  const roots = () => {
    const out = [], stack = [document];
    while (stack.length) {
      const root = stack.pop();
      out.push(root);
      root.querySelectorAll('*').forEach((el) => { if (el.shadowRoot) stack.push(el.shadowRoot); });
    }
    return out;
  };
  const find = () => {
    for (const root of roots()) {
      const hit = root.querySelector('[data-testid=trial][data-token]');
      if (hit) return hit;
    }
    return null;
  };
  const drawn = (c) => {
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
    return false;
  };
  const visible = (el) => getComputedStyle(el).visibility === 'visible' && el.offsetWidth > 0;
  const attrs = (el) => Array.from(el.attributes).filter((a) => a.name !== 'data-side')
    .map((a) => a.name + '=' + a.value).sort().join(' ') + ' ' + el.width + 'x' + el.height;
  const tick = (ts) => {
    if ((!trial || !trial.isConnected) && ts - scanAt > 30) { trial = find(); scanAt = ts; }
    if (trial && trial.isConnected && trial.dataset.token) {
      const token = trial.dataset.token;
      const s = state[token] || (state[token] = {token, shownAt: null, hiddenAt: null, shownFrames: 0,
        clickableWhileShown: false, attrs: null, blankAfter: null, snapshot: null, phases: []});
      const phase = trial.dataset.phase;
      if (s.phases[s.phases.length - 1] !== phase) s.phases.push(phase);
      const cs = Array.from(trial.querySelectorAll('canvas'));
      const shown = cs.length === 2 && cs.every((c) => visible(c) && drawn(c));
      const clickable = Array.from(trial.querySelectorAll('[data-testid^=answer-]'))
        .some((b) => !b.disabled && visible(b));
      if (shown && s.hiddenAt === null) {
        if (s.shownAt === null) { s.shownAt = ts; s.attrs = cs.map(attrs); }
        s.shownFrames += 1;
        if (clickable) s.clickableWhileShown = true;
      } else if (!shown && s.shownAt !== null && s.hiddenAt === null) {
        s.hiddenAt = ts;
      }
      if (phase === 'response' && s.snapshot === null) {
        s.blankAfter = cs.length === 2 && cs.every((c) => !drawn(c));
        s.snapshot = roots().map((r) => (r === document ? document.documentElement.outerHTML : r.innerHTML))
          .join('\\n');
      }
    }
    window.__prsrProbe = Object.values(state);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


@pytest.fixture
def serve_study(tmp_path):
    """serve_study(folder, **init_study kwargs) -> (base URL, db URL): a study served by `streamlit run`."""
    require_browser()
    started = []

    def serve(folder, **kwargs):
        url = f"sqlite:///{tmp_path / f'study{len(started)}.db'}"
        init_study(folder, url, **kwargs)
        port = free_port()
        env = dict(os.environ, PRSR_STUDY_DB=url)
        env.pop("PRSR_STUDY_TEST_HOOK", None)
        log_path = tmp_path / f"streamlit{len(started)}.log"
        log = open(log_path, "w")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(APP),
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--client.toolbarMode",
                "minimal",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append((proc, log, url))
        wait_healthy(proc, port, log_path, timeout=60)
        return f"http://127.0.0.1:{port}", url

    try:
        yield serve
    finally:
        for proc, log, url in started:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            dispose_engine(url)


@pytest.fixture
def completion_server():
    """A tiny HTTP server on 127.0.0.1 standing in for the platform's completion URL; yields
    (base URL, list of request paths it received)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            body = b"<html><body data-testid='platform'>completed</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _launch(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def _consent_and_start(page) -> None:
    """Consent and instructions, by the app's hooks only."""
    page.locator(".st-key-consent-checkbox").wait_for(timeout=30000)
    page.locator(".st-key-consent-checkbox label").click()
    page.locator(".st-key-continue button").click()
    page.locator(".st-key-start button").click()


def _shown(page, n: int, timeout: int = 30000) -> None:
    """Wait until the probe has seen the pairs of n trials (attempts) on screen."""
    page.wait_for_function(
        "n => (window.__prsrProbe || []).filter(s => s.shownAt !== null).length >= n", arg=n, timeout=timeout
    )


def _answer_all(
    page, n_practice: int, n_test: int, side: str = "left", on_exposure=None, on_feedback=None, before_answer=None
) -> None:
    """Answer every pair on `side` once its answer buttons appear; leave each practice feedback (by
    `on_feedback(k)` when given, else by clicking Next pair). `on_exposure(k)` runs once the k-th pair
    is on screen and may return how many extra pairs (replacements of voided ones) to wait for;
    `before_answer(k)` runs once the answer buttons are visible."""
    extra = 0
    for k in range(n_practice + n_test):
        _shown(page, k + 1 + extra)
        if on_exposure is not None:
            extra += on_exposure(k) or 0
        button = page.locator(f"[data-testid=trial][data-phase=response] [data-testid=answer-{side}]")
        button.wait_for(state="visible", timeout=30000)
        if before_answer is not None:
            before_answer(k)
        button.click()
        if k < n_practice:
            page.locator("[data-testid=trial][data-phase=feedback]").wait_for(state="attached", timeout=30000)
            if on_feedback is not None:
                on_feedback(k)
            else:
                page.locator(".st-key-next button").click()


@pytest.mark.slow
@pytest.mark.browser
def test_browser_session_exposure_and_no_early_answers(serve_study, tmp_path):
    from playwright.sync_api import Error as PlaywrightError  # noqa: PLC0415  (optional: skipped without it)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=16, channels=3, methods=("gan",))
    base, url = serve_study(
        folder,
        raters_per_method=2,
        n_test=3,
        n_practice=2,
        n_golden=1,
        seed=2,
        crowd=dict(response_window_ms=WINDOW_MS),
    )
    images = Path(os.environ.get("PRSR_SCREENSHOTS") or tmp_path)  # never rewrite tracked files by default
    images.mkdir(parents=True, exist_ok=True)
    early_clicks_blocked = 0
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": 960, "height": 640})
            page.add_init_script(PROBE)
            page.goto(f"{base}/?pid=browser-1")
            page.locator(".st-key-consent-checkbox").wait_for(timeout=30000)
            page.screenshot(path=str(images / "study_consent.png"))
            _consent_and_start(page)

            def during_exposure(k):
                nonlocal early_clicks_blocked
                right = page.locator("[data-testid=answer-right]")
                # during the exposure: a real mouse click where the Right button will appear ...
                box = right.evaluate(
                    "b => { const r = b.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }"
                )
                page.mouse.click(box[0] + box[2] / 2, box[1] + box[3] / 2)
                page.keyboard.press("ArrowRight")  # ... the answer key ...
                # ... and Playwright's own click, which must find nothing clickable
                try:
                    right.click(timeout=150)
                except PlaywrightError:
                    early_clicks_blocked += 1
                if k == 0:
                    page.wait_for_timeout(150)
                    page.screenshot(path=str(images / "study_trial.png"))

            def late_on_the_fourth(k):
                if k == 3:  # wait until the page says the window has passed, then answer: a timeout
                    page.locator("[data-testid=trial][data-late='1']").wait_for(state="attached", timeout=30000)

            def next_by_keyboard(k):  # Enter after the first practice pair, Space after the second
                page.locator("[data-testid=next-keys][data-ready='1']").wait_for(state="attached", timeout=30000)
                page.keyboard.press("Enter" if k == 0 else " ")

            _answer_all(
                page, 2, 3, on_exposure=during_exposure, on_feedback=next_by_keyboard, before_answer=late_on_the_fourth
            )
            code_box = page.locator(".st-key-completion-code code")
            code_box.wait_for(timeout=30000)
            page.wait_for_timeout(300)  # let the code block finish painting for the screenshot
            page.screenshot(path=str(images / "study_complete.png"))
            probe = page.evaluate("window.__prsrProbe.map(s => ({...s, snapshot: null}))")
            shown_code = code_box.inner_text().strip()
        finally:
            browser.close()

    assert early_clicks_blocked == 5
    measured = [s for s in probe if s["shownAt"] is not None]
    assert len(measured) == 5 and all(s["hiddenAt"] is not None for s in measured)
    assert not any(s["clickableWhileShown"] for s in measured)
    assert all(s["phases"][:3] == ["fixation", "exposure", "response"] for s in measured), [
        s["phases"] for s in measured
    ]
    # the first trial was screenshotted during its exposure (which can stall a frame): timing from the rest
    durations = [s["hiddenAt"] - s["shownAt"] for s in measured[1:]]
    print("probe: pair on screen (ms)", [round(d, 1) for d in durations])
    assert all(abs(d - 1000.0) <= FRAME_MS for d in durations), durations
    raters, trials = read_tables(url)
    assert raters.status.tolist() == ["complete"]
    assert shown_code == store.rater_status(get_engine(url), "browser-1")["completion_code"]
    assert trials.trial_index.tolist() == [0, 1, 2, 3, 4]
    assert trials.choice.tolist() == ["left"] * 5  # clicks and keys on Right during exposures never counted
    assert ((trials.exposure_ms - 1000.0).abs() <= FRAME_MS).all(), trials.exposure_ms.tolist()
    assert (trials.reaction_ms > 0).all() and not trials.tab_hidden.any()
    # the response window's rule: reaction_ms (erase to click) > response_window_ms is a timeout
    print("reaction times (ms)", trials.reaction_ms.tolist())
    assert trials.timed_out.tolist() == (trials.reaction_ms > WINDOW_MS).tolist() == [False, False, False, True, False]
    assert trials.reaction_ms.map(repr).str.fullmatch(r"\d+(\.\d)?").all()  # rounded to 0.1 ms
    for name in ("study_consent.png", "study_trial.png", "study_complete.png"):
        assert (images / name).stat().st_size > 5000


def _leaky_predictions(folder: Path, n: int = 24, seed: int = 7) -> Path:
    """Predictions that reproduce the PNG-size leak: a sharp, grainy ground truth and smooth outputs
    (box blurs of it, as ResNet-L2's and the GAN's outputs are on the quick profile)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    hr = np.empty((n, 3, 32, 32), np.uint8)
    for k in range(n):
        a, b = rng.uniform(-1, 1, 2)
        img = 128 + 60 * (a * xx + b * yy) + rng.normal(0, 30, (3, 32, 32))
        hr[k] = np.clip(np.round(img), 0, 255).astype(np.uint8)

    def blur(x: np.ndarray, r: int) -> np.ndarray:
        pad = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (r, r), (r, r)), mode="edge")
        out = sum(pad[:, :, i : i + 32, j : j + 32] for i in range(2 * r + 1) for j in range(2 * r + 1))
        return np.clip(np.round(out / (2 * r + 1) ** 2), 0, 255).astype(np.uint8)

    lr = np.round(hr.reshape(n, 3, 8, 4, 8, 4).mean(axis=(3, 5))).astype(np.uint8)
    ids = np.array([f"img{k:04d}" for k in range(n)])
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "truth.npz", lr=lr, hr=hr, ids=ids)
    np.savez(folder / "resnet_l2.npz", sr=blur(hr, 2), ids=ids)
    np.savez(folder / "gan.npz", sr=blur(hr, 1), ids=ids)
    return folder


_DATA_RE = {k: re.compile(rb'"' + k.encode() + rb'":\s*"([^"]*)"') for k in ("left", "right", "token")}


def _component_payloads(frames: list[bytes]) -> dict[str, list[tuple[str, str]]]:
    """{trial token: [(left, right), ...]} of every trial-component data the server sent, in order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for frame in frames:
        found = {k: rx.findall(frame) for k, rx in _DATA_RE.items()}
        if not found["left"] or not (len(found["left"]) == len(found["right"]) == len(found["token"])):
            continue
        for left, right, token in zip(found["left"], found["right"], found["token"]):
            out.setdefault(token.decode(), []).append((left.decode(), right.decode()))
    return out


def _wait_for_blank(page, frames: list[bytes], timeout_s: float = 20.0) -> None:
    """Wait until the server's latest data for the trial on screen is blank ('', ''): the rerun that drops the
    pixels once the exposure ends. A click that lands before it would move the page on in the same run, and
    Streamlit drops a run's unsent messages when the next run starts, so the blank data would never be sent
    (the component is replaced all the same); waiting keeps what this test checks, that the server blanks."""
    deadline = time.monotonic() + timeout_s
    while True:
        payloads = _component_payloads(frames)
        latest = list(payloads)[-1] if payloads else None
        if latest is not None and payloads[latest][-1] == ("", ""):
            return
        assert time.monotonic() < deadline, f"{latest}: no blank component data {timeout_s:.0f} s after the exposure"
        page.wait_for_timeout(50)  # lets Playwright deliver the frames received meanwhile


@pytest.mark.slow
@pytest.mark.browser
def test_browser_stimuli_reveal_nothing_but_pixels(serve_study, tmp_path):
    """Two whole sessions (ResNet-L2, then the GAN; 2 practice + 6 pairs each) against predictions that
    leak through PNG size. The old scheme (two PNG data URLs) would give the real side away; the
    pixels the browser now receives have the same length and attributes on both sides, are the
    right pixels, and are gone from the page, the canvases and the component data once the exposure
    ends. The study is a HYPE-time staircase one: each pair is shown for its own step of the rule, as
    the browser measures it and the database records it."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415  (optional: skipped without it)

    folder = _leaky_predictions(tmp_path / "runs" / "leaky" / "predictions")
    base, url = serve_study(
        folder,
        methods=["resnet_l2", "gan"],
        raters_per_method=1,
        n_test=6,
        n_practice=2,
        n_golden=1,
        seed=3,
        staircase=MID_START,
    )
    frames: list[bytes] = []
    probes = []
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            for pid in ("integrity-1", "integrity-2"):
                context = browser.new_context(viewport={"width": 960, "height": 700})
                page = context.new_page()
                page.add_init_script(PROBE)
                page.on(
                    "websocket",
                    lambda ws: ws.on(
                        "framereceived", lambda p: frames.append(p if isinstance(p, bytes) else p.encode())
                    ),
                )
                page.goto(f"{base}/?pid={pid}")
                _consent_and_start(page)
                _answer_all(page, 2, 6, before_answer=lambda k, page=page: _wait_for_blank(page, frames))
                page.locator(".st-key-completion-code code").wait_for(timeout=30000)
                probes += page.evaluate("window.__prsrProbe")
                context.close()
        finally:
            browser.close()

    raters, trials = read_tables(url)
    assert sorted(raters.method) == ["gan", "resnet_l2"] and (raters.status == "complete").all()
    assert len(trials) == 16
    with get_engine(url).connect() as conn:
        pngs = {(k, i): png for k, i, png in conn.execute(select(images.c.kind, images.c.image_id, images.c.png))}
    payloads = _component_payloads(frames)
    by_token = {s["token"]: s for s in probes}
    old_right = new_right = 0
    old_method = []  # the old rule on pairs against the method (golden pairs are grainy, not smooth)
    for t in trials.itertuples():
        token = f"{t.rater_id}|{t.trial_index}|{t.attempt}"
        other = "golden" if t.is_golden else t.method
        real_png, fake_png = pngs[("truth", t.image_id)], pngs[(other, t.image_id)]
        # the old scheme: "the larger PNG data URL is the real photograph"
        old_guess = t.real_side if len(real_png) > len(fake_png) else ("left" if t.real_side == "right" else "right")
        old_right += old_guess == t.real_side
        if not t.is_golden:
            old_method.append(old_guess == t.real_side)
        sent = payloads[token]
        left, right = sent[0]
        assert len(left) == len(right) == 5464  # 32x32 RGBA, base64
        # the same rule on the new payloads can only see a tie (ties guess left)
        new_guess = "left" if len(left) >= len(right) else "right"
        new_right += new_guess == t.real_side
        real = decode_png(real_png)
        shown = {"left": left, "right": right}[t.real_side]
        pixels = np.frombuffer(base64.b64decode(shown), np.uint8).reshape(32, 32, 4)
        assert np.array_equal(pixels[:, :, :3], real) and (pixels[:, :, 3] == 255).all()
        assert sent[-1] == ("", ""), f"{token}: the pixels stayed in the component data after the exposure"
        s = by_token[token]
        assert s["attrs"][0] == s["attrs"][1], s["attrs"]
        assert s["blankAfter"] is True
        for payload in (left, right):
            assert payload[2000:2100] not in s["snapshot"] and payload not in s["snapshot"]
    old_acc, new_acc = old_right / len(trials), new_right / len(trials)
    share_left = float((trials.real_side == "left").mean())
    print(
        f"integrity: old PNG-length rule right {old_acc:.3f} of all pairs, {np.mean(old_method):.3f} of the "
        f"{len(old_method)} method pairs; new payload-length rule right {new_acc:.3f} "
        f"(= share of real-on-left {share_left:.3f}); {len(trials)} trials"
    )
    assert np.mean(old_method) >= 0.9  # the leak is reproduced ...
    assert new_acc == share_left and abs(new_acc - 0.5) <= 0.125  # ... and the new payload says nothing
    _check_staircase(trials, by_token)


def _check_staircase(trials: pd.DataFrame, by_token: dict) -> None:
    """Each pair was issued at its staircase step (practice at the start, golden at the longest, counted pairs
    by the rule over the rater's earlier answers) and shown for that long, as the page and the database say."""
    rule = MID_START
    for _, mine in trials.groupby("rater_id"):
        mine = mine.sort_values("trial_index")
        counted = mine[~mine.is_practice & ~mine.is_golden]
        expected = exposures_for(rule, (counted.choice == counted.real_side).tolist())[:-1]
        assert counted.target_exposure_ms.tolist() == expected
        assert (mine[mine.is_practice].target_exposure_ms == rule.start_ms).all()
        assert (mine[mine.is_golden & ~mine.is_practice].target_exposure_ms == rule.grid_ms[-1]).all()
    assert trials.target_exposure_ms.nunique() > 1, "every pair at one exposure: the staircase never moved"
    assert ((trials.exposure_ms - trials.target_exposure_ms).abs() <= FRAME_MS).all()
    on_screen = []
    for t in trials.itertuples():
        s = by_token[f"{t.rater_id}|{t.trial_index}|{t.attempt}"]
        on_screen.append(s["hiddenAt"] - s["shownAt"])
    print("staircase: target vs on screen (ms)", list(zip(trials.target_exposure_ms, [round(d) for d in on_screen])))
    assert (np.abs(np.array(on_screen) - trials.target_exposure_ms.to_numpy()) <= FRAME_MS).mean() >= 0.9


def _phase(page) -> str | None:
    return page.evaluate(
        "() => { const p = window.__prsrProbe || []; const s = p[p.length - 1]; "
        "return s ? s.phases[s.phases.length - 1] : null; }"
    )


@pytest.mark.slow
@pytest.mark.browser
def test_browser_prolific_handoff_resizes_return_and_phone(serve_study, completion_server, tmp_path):
    """A Prolific link runs to completion and lands on the completion URL with the rater's code; the
    export has the ids, times, environment and code; the same PID (other case) later gets the same
    code and no slot; a 390x844 phone gets the title, the `device` screen-out code and its hand-off,
    and takes no slot. In the session: the window shrunk to phone size between two pairs pauses the
    next pair (never drawn while too small) until it is enlarged; a resize during an exposure erases
    the pair at once, voids it (reason `resize`) and a new pair replaces it."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415  (optional: the test skips without it)

    done_base, seen = completion_server
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=16, channels=3, methods=("gan",))
    base, url = serve_study(
        folder,
        raters_per_method=2,
        n_test=3,
        n_practice=2,
        n_golden=1,
        seed=4,
        exposure_ms=EXPOSURE_MS,  # time enough to resize the window during an exposure on a busy machine
        crowd=dict(
            platform="prolific",
            completion_url=done_base + "/done?cc={code}",
            require_pid=True,
            screenout={"device": "CDEVICE"},
        ),
    )
    link = f"{base}/?PROLIFIC_PID=5f0c0ffeeABC&STUDY_ID=study-77&SESSION_ID=sess-1"
    desk = {"width": 1024, "height": 768}
    paused = {}
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            context = browser.new_context(viewport=desk)
            page = context.new_page()
            page.add_init_script(PROBE)
            page.goto(link)
            _consent_and_start(page)

            def shrink_between_pairs(k):
                if k != 0:
                    page.locator(".st-key-next button").click()
                    return
                page.set_viewport_size({"width": 390, "height": 844})  # the phone turned back to portrait
                page.locator(".st-key-next button").click()
                page.locator("[data-testid=trial][data-phase=paused]").wait_for(state="attached", timeout=30000)
                page.wait_for_timeout(1500)  # stays paused: no cross, no pair
                paused["phase"] = _phase(page)
                paused["shown"] = page.evaluate("(window.__prsrProbe || []).filter(s => s.shownAt !== null).length")
                page.set_viewport_size(desk)

            def resize_during_exposure(k):
                if k != 2:
                    return 0
                page.locator("[data-testid=trial][data-phase=exposure]").wait_for(state="attached", timeout=30000)
                page.set_viewport_size({"width": 1000, "height": 760})
                page.locator("[data-testid=trial][data-phase=voided]").wait_for(state="attached", timeout=30000)
                page.locator(".st-key-notice").wait_for(timeout=30000)
                return 1  # the replacement pair is one more pair on screen

            def keep_probe(k):  # before the last answer: the hand-off then leaves the page (and its probe)
                if k == 4:
                    probe.extend(page.evaluate("window.__prsrProbe.map(s => ({...s, snapshot: null}))"))

            probe = []
            _answer_all(
                page,
                2,
                3,
                on_exposure=resize_during_exposure,
                on_feedback=shrink_between_pairs,
                before_answer=keep_probe,
            )
            page.wait_for_url(done_base + "/done?cc=*", timeout=30000)
            first_landing = page.url
            context.close()

            context = browser.new_context(viewport=desk)
            page = context.new_page()
            page.goto(link.replace("5f0c0ffeeABC", "5F0C0FFEEabc").replace("sess-1", "sess-2"))
            # the completion page shows the code, then (1.5 s later) hands off to the platform again
            page.wait_for_url(done_base + "/done?cc=*", timeout=30000)
            second_landing = page.url
            context.close()

            context = browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True
            )
            page = context.new_page()
            page.goto(f"{base}/?PROLIFIC_PID=phone-user&STUDY_ID=study-77&SESSION_ID=sess-3")
            refused = page.locator(".st-key-device-refused")
            refused.wait_for(timeout=30000)
            phone_text = refused.inner_text()
            phone_title = page.locator("h1").count()
            consent_on_phone = page.locator(".st-key-consent-checkbox").count()
            page.locator(".st-key-leave-device button").click()
            page.wait_for_url(done_base + "/done?cc=CDEVICE", timeout=30000)
            context.close()
        finally:
            browser.close()

    raters, trials = read_tables(url)
    assert len(raters) == 1  # neither the return visit nor the phone took a slot
    r = raters.iloc[0]
    assert (r.rater_id, r.participant_id, r.study_id, r.session_id) == (
        "5f0c0ffeeabc",
        "5f0c0ffeeABC",
        "study-77",
        "sess-1",
    )
    assert r.status == "complete" and len(r.completion_code) == 8
    assert first_landing == second_landing == f"{done_base}/done?cc={r.completion_code}"
    assert seen.count(f"/done?cc={r.completion_code}") == 2
    assert (r.viewport_w, r.viewport_h, r.device_pixel_ratio) == (1024, 768, 1.0)
    assert "Chrome" in r.user_agent and 20 <= r.refresh_hz <= 300
    enrolled, completed = pd.Timestamp(r.enrolled_at), pd.Timestamp(r.completed_at)
    assert str(enrolled.tz) == "UTC" and enrolled < completed
    shown, answered = pd.to_datetime(trials.shown_at), pd.to_datetime(trials.answered_at)
    assert (shown < answered).all() and (shown >= enrolled).all()
    assert answered.max() <= completed
    # between pairs: the second practice pair waited, paused, while the window was phone-sized
    assert paused == {"phase": "paused", "shown": 1}
    by_token = {s["token"]: s for s in probe}
    second = by_token["5f0c0ffeeabc|1|0"]
    assert second["phases"][:4] == ["paused", "fixation", "exposure", "response"], second["phases"]
    assert second["hiddenAt"] - second["shownAt"] == pytest.approx(EXPOSURE_MS, abs=FRAME_MS)
    # during the exposure: the pair was erased at once, voided, and replaced by attempt 1
    cut = by_token["5f0c0ffeeabc|2|0"]
    assert cut["phases"][-1] == "voided" and cut["hiddenAt"] - cut["shownAt"] < EXPOSURE_MS - FRAME_MS
    assert trials.attempt.tolist() == [0, 0, 1, 0, 0]
    voided = read_voided(url)
    assert voided[["trial_index", "attempt", "reason"]].values.tolist() == [[2, 0, "resize"]]
    assert voided.image_id.iloc[0] != trials.image_id.iloc[2]  # a new image: the pool has spares
    # the phone: the study's title, why, the device screen-out code, and the hand-off with it
    assert phone_title == 1 and "CDEVICE" in phone_text and consent_on_phone == 0
    assert seen.count("/done?cc=CDEVICE") == 1
