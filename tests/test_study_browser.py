"""The timed trial in a real browser: headless Debian Chromium driven by Playwright (never a downloaded
browser) completes a test-size session (2 practice + 3 trials) against `streamlit run` of the app.

A probe injected into the page (`add_init_script`, independent of the app's own report) records on
every animation frame whether both images are visible and whether an answer button is clickable. It
checks that the pair is on screen 1000 ms within one frame (~17 ms) and that no answer can be given
during the exposure (buttons hidden and disabled; real mouse clicks on their place are ignored).
The run also takes the README's screenshots: into a temporary folder, or into $PRSR_SCREENSHOTS when set
(`PRSR_SCREENSHOTS=docs/images pytest tests/test_study_browser.py` refreshes the README's copies).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import require_or_skip
from study_app import store
from study_app.builder import init_study
from study_app.db import dispose_engine, get_engine
from study_app.demo import write_demo_predictions
from study_app.export import read_tables

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
APP = Path(__file__).resolve().parents[1] / "study_app" / "app.py"
FRAME_MS = 1000 / 60 + 0.5

# Runs in every document before the page's scripts. The trial lives in an open shadow root (the
# component's style isolation); the probe finds it there and samples it once per animation frame.
PROBE = """
(() => {
  const state = {};
  let trial = null, scanAt = 0;
  const find = () => {
    const stack = [document];
    while (stack.length) {
      const root = stack.pop();
      const hit = root.querySelector('.prsr-trial');
      if (hit) return hit;
      root.querySelectorAll('*').forEach((el) => { if (el.shadowRoot) stack.push(el.shadowRoot); });
    }
    return null;
  };
  const visible = (el) => getComputedStyle(el).visibility === 'visible' && el.offsetWidth > 0;
  const tick = (ts) => {
    if ((!trial || !trial.isConnected) && ts - scanAt > 30) { trial = find(); scanAt = ts; }
    if (trial && trial.isConnected && trial.dataset.token) {
      const token = trial.dataset.token;
      const s = state[token] || (state[token] = {token, shownAt: null, hiddenAt: null, shownFrames: 0,
                                                 clickableWhileShown: false});
      const imgs = Array.from(trial.querySelectorAll('img.prsr-stim'));
      const shown = imgs.length === 2 && imgs.every((im) => visible(im) && im.complete && im.naturalWidth > 0);
      const clickable = Array.from(trial.querySelectorAll('button.prsr-answer')).some((b) => !b.disabled && visible(b));
      if (shown && s.hiddenAt === null) {
        if (s.shownAt === null) s.shownAt = ts;
        s.shownFrames += 1;
        if (clickable) s.clickableWhileShown = true;
      } else if (!shown && s.shownAt !== null && s.hiddenAt === null) {
        s.hiddenAt = ts;
      }
    }
    window.__prsrProbe = Object.values(state);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_study(tmp_path):
    if not (os.path.exists(CHROMIUM) and shutil.which("chromium")):
        require_or_skip("Debian's chromium is not installed; install: sudo apt-get install chromium "
                        "(or sudo scripts/install-test-deps.sh)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require_or_skip("the playwright Python package is missing; install: pip install -e '.[dev]'")
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=16, channels=3, methods=("gan",))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    init_study(folder, url, raters_per_method=2, n_test=3, n_practice=2, n_golden=1, seed=2)
    port = _free_port()
    env = dict(os.environ, PRSR_STUDY_DB=url)
    env.pop("PRSR_STUDY_TEST_HOOK", None)
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--client.toolbarMode", "minimal"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start: {(tmp_path / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}", url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        dispose_engine(url)


@pytest.mark.slow
@pytest.mark.browser
def test_browser_session_exposure_and_no_early_answers(served_study, tmp_path):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    base, url = served_study
    images = Path(os.environ.get("PRSR_SCREENSHOTS") or tmp_path)  # never rewrite tracked files by default
    images.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 960, "height": 640})
            page.add_init_script(PROBE)
            page.goto(f"{base}/?pid=browser-1")
            page.get_by_text("I have read the above").wait_for(timeout=30000)
            page.screenshot(path=str(images / "study_consent.png"))
            page.get_by_text("I have read the above").click()
            page.get_by_role("button", name="Continue").click()
            page.get_by_role("button", name="Start the practice").click()

            early_clicks_blocked = 0
            for k in range(5):
                page.wait_for_function(
                    "n => (window.__prsrProbe || []).filter(s => s.shownAt !== null).length >= n", arg=k + 1,
                    timeout=30000)
                left = page.locator("button.prsr-answer[data-side=left]")
                right = page.locator("button.prsr-answer[data-side=right]")
                # during the exposure: a real mouse click where the Right button will appear ...
                box = right.evaluate("b => { const r = b.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }")
                page.mouse.click(box[0] + box[2] / 2, box[1] + box[3] / 2)
                # ... and Playwright's own click, which must find nothing clickable
                try:
                    right.click(timeout=150)
                except PlaywrightError:
                    early_clicks_blocked += 1
                if k == 0:
                    page.wait_for_timeout(150)
                    page.screenshot(path=str(images / "study_trial.png"))
                left.wait_for(state="visible", timeout=5000)
                left.click()
                if k < 2:  # practice: feedback, then the next pair
                    page.get_by_role("button", name="Next pair").click()
            page.get_by_text("Your completion code is").wait_for(timeout=30000)
            page.locator('[data-testid="stCode"] code').wait_for(timeout=30000)
            page.wait_for_timeout(300)  # let the code block finish painting for the screenshot
            page.screenshot(path=str(images / "study_complete.png"))
            probe = page.evaluate("window.__prsrProbe")
            shown_code = page.locator('[data-testid="stCode"] code').inner_text().strip()
        finally:
            browser.close()

    assert early_clicks_blocked == 5
    measured = [s for s in probe if s["shownAt"] is not None]
    assert len(measured) == 5 and all(s["hiddenAt"] is not None for s in measured)
    assert not any(s["clickableWhileShown"] for s in measured)
    # the first trial was screenshotted during its exposure (which can stall a frame): timing from the rest
    durations = [s["hiddenAt"] - s["shownAt"] for s in measured[1:]]
    print("probe: pair on screen (ms)", [round(d, 1) for d in durations])
    assert all(abs(d - 1000.0) <= FRAME_MS for d in durations), durations
    raters, trials = read_tables(url)
    assert raters.status.tolist() == ["complete"]
    assert shown_code == store.rater_status(get_engine(url), "browser-1")["completion_code"]
    assert trials.trial_index.tolist() == [0, 1, 2, 3, 4]
    assert trials.choice.tolist() == ["left"] * 5  # the clicks on Right during exposures never counted
    assert ((trials.exposure_ms - 1000.0).abs() <= FRAME_MS).all(), trials.exposure_ms.tolist()
    assert (trials.reaction_ms > 0).all() and not trials.tab_hidden.any()
    for name in ("study_consent.png", "study_trial.png", "study_complete.png"):
        assert (images / name).stat().st_size > 5000
