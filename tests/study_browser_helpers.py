"""Helpers shared by the study's browser tests and `bench/study.py --app`: Debian's Chromium driven by
Playwright (never a downloaded browser), app processes started by `prsr study serve`, and an asyncio
rater that walks a session by the app's test hooks only.

- `start_app(db_url, port, log_path)` starts `prsr study serve` in its own process group and waits for
  Streamlit's health check; `kill_app(proc)` sends SIGKILL to the whole group (a crash: no clean
  shutdown); `stop_app(proc)` ends it politely.
- `Rater` drives one browser page through device check -> consent -> instructions -> trials (practice
  feedback included) -> completion code, answering on the left after `reaction_s`. Its `reload_to`
  moves it to another app process mid-session (the same link, another port), as a load balancer
  would after a replica died.
- `LATENCY_PROBE` (an init script) measures, in the page, the time from a click that asks for the next
  pair (an answer, or "next" after practice feedback) to the first animation frame in which a new
  trial (new token) is in its fixation or exposure phase: `window.__prsrLoad.lat` (ms).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "study_app" / "app.py"

LATENCY_PROBE = """
(() => {
  const S = window.__prsrLoad = {lat: [], lastClick: null, token: null, phase: null};
  document.addEventListener('click', (e) => {
    const hit = e.composedPath().some((el) => el.dataset && (String(el.dataset.testid || '').startsWith('answer-'))
      || (el.classList && el.classList.contains('st-key-next')));
    if (hit) S.lastClick = performance.now();
  }, true);
  let trial = null, scanAt = 0;
  const find = () => {
    const stack = [document];
    while (stack.length) {
      const root = stack.pop();
      const hit = root.querySelector('[data-testid=trial][data-token]');
      if (hit) return hit;
      root.querySelectorAll('*').forEach((el) => { if (el.shadowRoot) stack.push(el.shadowRoot); });
    }
    return null;
  };
  const tick = (ts) => {
    if ((!trial || !trial.isConnected) && ts - scanAt > 30) { trial = find(); scanAt = ts; }
    if (trial && trial.isConnected && trial.dataset.token) {
      const token = trial.dataset.token, phase = trial.dataset.phase;
      S.phase = phase;
      if (token !== S.token && (phase === 'fixation' || phase === 'exposure')) {
        if (S.lastClick !== null) { S.lat.push(ts - S.lastClick); S.lastClick = null; }
        S.token = token;
      }
    } else { S.phase = null; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_browser() -> None:
    """Skip (fail under CI=true) without Debian's Chromium or the playwright package."""
    from conftest import require_or_skip  # noqa: PLC0415  (conftest is importable only under pytest)

    if not (os.path.exists(CHROMIUM) and shutil.which("chromium")):
        require_or_skip(
            "Debian's chromium is not installed; install: sudo apt-get install chromium "
            "(or sudo scripts/install-test-deps.sh)"
        )
    try:
        import playwright.sync_api  # noqa: F401, PLC0415  (optional: the check itself)
    except ImportError:
        require_or_skip("the playwright Python package is missing; install: pip install -e '.[dev]'")


def wait_healthy(proc: subprocess.Popen, port: int, log_path: Path, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"the study app on port {port} did not start: {Path(log_path).read_text()[-2000:]}")
        time.sleep(0.3)


def start_app(db_url: str, port: int, log_path: Path, *, wait: bool = True) -> subprocess.Popen:
    """`prsr study serve --db URL --port PORT` in a new process group (so a kill reaches Streamlit)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PRSR_STUDY_TEST_HOOK", None)
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prsr.cli", "study", "serve", "--db", db_url, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()  # the child holds its own descriptor
    if wait:
        wait_healthy(proc, port, log_path)
    return proc


def kill_app(proc: subprocess.Popen) -> None:
    """kill -9 the app's whole process group (the serve command and its Streamlit child)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        kill_app(proc)


def start_apps(db_url: str, n: int, log_dir: Path, prefix: str = "app") -> tuple[list, list[int], list[Path]]:
    """n `prsr study serve` processes on free ports, started together; (processes, ports, log paths)."""
    ports = [free_port() for _ in range(n)]
    logs = [Path(log_dir) / f"{prefix}{k}.log" for k in range(n)]
    apps = [start_app(db_url, port, log, wait=False) for port, log in zip(ports, logs)]
    try:
        for proc, port, log in zip(apps, ports, logs):
            wait_healthy(proc, port, log)
    except BaseException:
        for proc in apps:
            stop_app(proc)
        raise
    return apps, ports, logs


async def new_rater_page(browser, page_errors: list | None = None):
    """A page in a fresh browser context (no shared storage) with LATENCY_PROBE installed."""
    context = await browser.new_context(viewport={"width": 960, "height": 700})
    page = await context.new_page()
    if page_errors is not None:
        page.on("pageerror", lambda e: page_errors.append(str(e)))
    await page.add_init_script(LATENCY_PROBE)
    return page


async def launch_async(pw):
    return await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


class Rater:
    """One rater in its own browser context, driven by the app's hooks (see the module docstring)."""

    def __init__(self, page, url: str, *, reaction_s=0.15, timeout_s: float = 150.0):
        """`reaction_s`: seconds from the answer buttons appearing to the click (a number, or a
        callable returning one per answer)."""
        self.page, self.url, self.reaction_s, self.timeout_s = page, url, reaction_s, timeout_s
        self.answers = 0  # answer clicks made
        self.reload_to: str | None = None
        self.reloads = 0
        self.errors: list[str] = []  # failed clicks (an element replaced by a rerun mid-click: benign)
        self.exceptions: list[str] = []  # exceptions the app showed in the page (never benign)
        self.done = False
        self.stop = False  # set by a benchmark: return at the next step (no error)

    async def _visible(self, selector: str) -> bool:
        try:
            return await self.page.locator(selector).first.is_visible()
        except Exception:  # navigation or a rerun replaced the element
            return False

    async def _enabled(self, selector: str) -> bool:
        try:
            return await self.page.locator(selector).first.is_enabled(timeout=500)
        except Exception:  # gone between the two looks
            return False

    async def _click(self, selector: str) -> bool:
        from playwright.async_api import Error as PlaywrightError  # noqa: PLC0415  (optional dependency)

        try:
            await self.page.locator(selector).first.click(timeout=3000)
            return True
        except PlaywrightError as e:
            self.errors.append(f"click {selector}: {str(e).splitlines()[0]}")
            return False

    async def phase(self) -> str | None:
        try:
            return await self.page.evaluate("(window.__prsrLoad || {}).phase || null")
        except Exception:
            return None

    async def latencies(self) -> list[float]:
        return await self.page.evaluate("(window.__prsrLoad || {lat: []}).lat")

    async def run(self) -> None:
        await self.page.goto(self.url)
        deadline = time.monotonic() + self.timeout_s
        last_clicked = None
        while time.monotonic() < deadline:
            if self.stop:
                return
            if self.reload_to is not None:
                self.url, self.reload_to = self.reload_to, None
                self.reloads += 1
                await self.page.goto(self.url)
                last_clicked = None
                continue
            if await self._visible(".st-key-completion-code code"):
                self.done = True
                return
            if await self._visible("[data-testid=stException]"):
                try:
                    shown = (await self.page.locator("[data-testid=stException]").first.inner_text(timeout=500))[:300]
                except Exception:
                    shown = "(exception shown)"
                if not self.exceptions or self.exceptions[-1] != shown:
                    self.exceptions.append(shown)
            answer = "[data-testid=trial][data-phase=response] [data-testid=answer-left]"
            if await self._visible(answer):
                await asyncio.sleep(self.reaction_s() if callable(self.reaction_s) else self.reaction_s)
                if await self._visible(answer) and await self._click(answer):
                    self.answers += 1
                    await asyncio.sleep(0.2)  # the component disables its buttons at once; the rerun follows
                continue
            if await self._visible(".st-key-consent-checkbox"):
                box = self.page.locator(".st-key-consent-checkbox input")
                try:
                    if not await box.is_checked(timeout=500):
                        await self._click(".st-key-consent-checkbox label")
                except Exception:
                    pass
            for key in ("next", "continue", "start"):
                selector = f".st-key-{key} button"
                if await self._visible(selector) and await self._enabled(selector):
                    # one click per appearance: a second click on a button still painted while the
                    # rerun runs would be a click on the next page's button
                    again = (
                        last_clicked is None
                        or last_clicked[:2] != (key, self.answers)
                        or time.monotonic() - last_clicked[2] > 3.0
                    )
                    if again and await self._click(selector):
                        last_clicked = (key, self.answers, time.monotonic())
                        await asyncio.sleep(0.2)
                    break
            await asyncio.sleep(0.1)  # polling costs CPU that the app under test would otherwise get
        raise TimeoutError(
            f"rater at {self.url} did not finish in {self.timeout_s:.0f} s "
            f"({self.answers} answers; errors: {self.errors[-3:]})"
        )
