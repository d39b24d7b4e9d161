"""The timed 2AFC trial as an `st.components.v2` component (inline HTML/CSS/JS, no build step).

Stimulus secrecy: each image reaches the browser as its raw pixels — 32x32 RGBA uint8 (grey images
expanded to RGBA), base64 — so the two payloads of a pair have exactly the same length and form
whatever the image content (a PNG's size gives away smooth, generated images). They are drawn with
`putImageData` into two identical 32x32 canvases shown at `display_px` CSS pixels with
`image-rendering: pixelated` (nearest neighbour). When the exposure ends the canvases are reset
(cleared and re-sized, dropping their bitmaps), the component's copies of the pixels are dropped,
and the state value `exposed` (the trial token) tells the app to re-render the component WITHOUT the
pixels, so they leave the page's component data too.

Timing, per trial: the pixels are decoded before anything is shown; a fixation cross is shown for
`fixation_ms`; the pair is drawn inside a `requestAnimationFrame` callback and erased in the first
later frame whose timestamp is within half a frame of `exposure_ms` (a 1000 ms exposure at 60 Hz is
60 frames); only then do the two answer buttons become visible and enabled, and the keys ←/F and →/J
answer too. The answer is sent once as the trigger value `answer`: `{token, choice: "left"|"right",
exposure_ms (erase-frame minus draw-frame rAF timestamps), reaction_ms (answer time minus erase
time), tab_hidden (the page was hidden at any moment)}`. Nothing is timed on the server.

Screen size, checked in every frame before the exposure with the device check's rule (`min_width` of
the trial's column, `min_height` of the window): while it does not fit, the trial waits in the phase
`paused` (no cross, no pixels; a message asks to rotate the device back or enlarge the window) and
starts its fixation again once it fits. During the exposure, any change of the window's size erases
the pair at once (phase `voided`) and sends the trigger value `void`: `{token, reason: "resize"}`;
the app voids that attempt and shows a new pair.

Response window (`response_window_ms` > 0): when it has passed after the erase, the root gets
`data-late="1"` and the page says the pair will not count; the answer is still sent as usual and the
server records it as a timeout (reaction_ms > response_window_ms).

Test hooks: the root element `.prsr-trial` carries `data-testid="trial"` and `data-phase` =
`paused` | `fixation` | `exposure` | `response` | `voided`; the buttons carry
`data-testid="answer-left"` / `"answer-right"`. `KEYS_JS` is a second component, placed on the
practice feedback page, that sends the trigger value `pressed` on Enter or Space (so "Next pair"
takes the keyboard).
"""

from __future__ import annotations

import base64

import numpy as np

from .env_probe import CHROME_PX, GAP_PX

HTML = """
<div class="prsr-trial" data-testid="trial" data-phase="fixation">
  <div class="prsr-question">Which image, would you guess, is from a camera?</div>
  <div class="prsr-stage">
    <canvas class="prsr-stim" data-side="left" width="32" height="32"></canvas>
    <div class="prsr-cross" hidden>+</div>
    <canvas class="prsr-stim" data-side="right" width="32" height="32"></canvas>
  </div>
  <div class="prsr-answers">
    <button class="prsr-answer" data-side="left" data-testid="answer-left" disabled>Left</button>
    <button class="prsr-answer" data-side="right" data-testid="answer-right" disabled>Right</button>
  </div>
  <div class="prsr-status">Loading images…</div>
</div>
"""

CSS = """
.prsr-trial { --prsr-px: 192px; display: flex; flex-direction: column; align-items: center; gap: 14px;
  padding: 8px 0; font-family: var(--st-font, sans-serif); color: var(--st-text-color, #222); }
.prsr-question { font-size: 1.1rem; }
.prsr-stage { position: relative; display: flex; gap: 48px; justify-content: center; align-items: center;
  height: var(--prsr-px); }
.prsr-stim { width: var(--prsr-px); height: var(--prsr-px); image-rendering: pixelated; }
.prsr-cross { position: absolute; left: 50%; top: 50%; transform: translate(-50%, -50%);
  font-size: 48px; line-height: 1; user-select: none; }
.prsr-answers { display: flex; gap: 48px; }
.prsr-answer { width: var(--prsr-px); padding: 10px 0; font-size: 1rem; border-radius: 6px; cursor: pointer;
  border: 1px solid #888; background: #f4f4f4; visibility: hidden; }
.prsr-answer:enabled:hover { background: #e4e4ff; }
.prsr-status { min-height: 1.4em; font-size: 0.9rem; opacity: 0.75; }
"""

JS = """
export default function (component) {
  const { data, setTriggerValue, setStateValue, parentElement } = component;
  const root = parentElement.querySelector(".prsr-trial");
  if (!root || !data) return;
  // a re-render of the same trial (any unrelated rerun, or the re-render without pixels after the
  // exposure) must not restart the timer
  if (root.dataset.token === data.token) return root._prsrCleanup;
  root.dataset.token = data.token;
  root.dataset.phase = "fixation";
  delete root.dataset.late;
  root.style.setProperty("--prsr-px", data.display_px + "px");

  const canvases = root.querySelectorAll("canvas.prsr-stim");
  const cross = root.querySelector(".prsr-cross");
  const buttons = root.querySelectorAll("button.prsr-answer");
  const status = root.querySelector(".prsr-status");
  let cancelled = false;
  let tabHidden = document.hidden;
  const onVisibility = () => { if (document.hidden) tabHidden = true; };
  document.addEventListener("visibilitychange", onVisibility);

  // erase: reset each canvas (assigning its size drops the bitmap) and forget every copy of the pixels
  const erase = () => canvases.forEach((c) => { c.width = 32; c.height = 32; });
  const enableButtons = (on) => buttons.forEach((b) => {
    b.disabled = !on;
    b.style.visibility = on ? "visible" : "hidden";
  });
  erase();
  enableButtons(false);
  const decode = (b64) => {
    if (typeof b64 !== "string" || b64.length === 0) return null;
    const bin = atob(b64);
    if (bin.length !== 32 * 32 * 4) return null;
    const px = new Uint8ClampedArray(bin.length);
    for (let i = 0; i < bin.length; i++) px[i] = bin.charCodeAt(i);
    return new ImageData(px, 32, 32);
  };
  let pixels = [decode(data.left), decode(data.right)];
  // drop the component's own references to the payload (the app re-renders without it as well)
  try { data.left = ""; data.right = ""; } catch (e) { /* frozen props: the re-render replaces them */ }
  if (!pixels[0] || !pixels[1]) {
    status.textContent = "This pair could not be shown; please reload the page.";
    return;
  }

  let tShow = null, tHide = null, answered = false, lateTimer = null, voided = false, size = null;
  const answer = (side) => {
    if (answered || tHide === null) return;  // never an answer before the pair is erased
    answered = true;
    clearTimeout(lateTimer);
    buttons.forEach((x) => { x.disabled = true; });
    document.removeEventListener("keydown", onKey);
    status.textContent = "Saving…";
    setTriggerValue("answer", {
      token: data.token,
      choice: side,
      exposure_ms: tHide - tShow,
      reaction_ms: Math.max(0, performance.now() - tHide),
      tab_hidden: tabHidden,
    });
  };
  const KEYS = { ArrowLeft: "left", f: "left", F: "left", ArrowRight: "right", j: "right", J: "right" };
  const onKey = (ev) => {
    if (tHide === null || answered || !(ev.key in KEYS) || ev.repeat) return;
    ev.preventDefault();
    answer(KEYS[ev.key]);
  };
  document.addEventListener("keydown", onKey);
  buttons.forEach((b) => { b.onclick = () => { if (!b.disabled) answer(b.dataset.side); }; });

  // the device check's rule: the pair fits the trial's column, the trial the window's height
  const fits = () => root.clientWidth >= data.min_width && window.innerHeight >= data.min_height;
  const windowSize = () => window.innerWidth + "x" + window.innerHeight;
  const pause = () => {
    root.dataset.phase = "paused";
    cross.hidden = true;
    status.textContent = "The window is too small to show the pair whole: please turn your device back or "
      + "enlarge the window. The pair starts when it fits.";
  };
  const voidPair = () => {  // the window changed size while the pair was shown: erase it, ask for a new one
    voided = true;
    erase();
    pixels = null;
    root.dataset.phase = "voided";
    status.textContent = "The window changed size while the pair was shown; a new pair follows.";
    setTriggerValue("void", { token: data.token, reason: "resize" });
  };

  status.textContent = "";
  if (!fits()) pause();  // in the same task as the mount: a page never sees a fixation it cannot fit
  let tCross = null, last = null, period = 1000 / 60;
  const frame = (ts) => {
    if (cancelled || voided) return;
    if (last !== null && ts > last) period = Math.min(period, ts - last);  // the display's frame period
    last = ts;
    if (tShow === null && !fits()) {  // before the exposure: wait (paused) until the pair fits
      if (root.dataset.phase !== "paused") pause();
      tCross = null;
      requestAnimationFrame(frame);
      return;
    }
    if (tCross === null) {
      root.dataset.phase = "fixation";
      status.textContent = "";
      cross.hidden = false;
      tCross = ts;
      requestAnimationFrame(frame);
      return;
    }
    if (tShow === null) {
      if (ts - tCross >= data.fixation_ms - period / 2) {
        cross.hidden = true;
        canvases[0].getContext("2d").putImageData(pixels[0], 0, 0);  // painted in this frame
        canvases[1].getContext("2d").putImageData(pixels[1], 0, 0);
        root.dataset.phase = "exposure";
        tShow = ts;
        size = windowSize();
      }
      requestAnimationFrame(frame);
      return;
    }
    if (windowSize() !== size) { voidPair(); return; }
    if (ts - tShow >= data.exposure_ms - period / 2) {
      erase();
      pixels = null;
      tHide = ts;
      root.dataset.phase = "response";
      enableButtons(true);
      status.textContent = data.practice ? "Practice: choose the real photo." : "";
      if (setStateValue) setStateValue("exposed", data.token);  // the app drops the pixels from the page data
      if (data.response_window_ms > 0) {
        lateTimer = setTimeout(() => {
          if (answered) return;
          root.dataset.late = "1";
          status.textContent = "Too late for this pair: choose to go on (this answer will not count).";
        }, data.response_window_ms);
      }
      return;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);

  root._prsrCleanup = () => {
    cancelled = true;
    clearTimeout(lateTimer);
    erase();
    pixels = null;
    document.removeEventListener("visibilitychange", onVisibility);
    document.removeEventListener("keydown", onKey);
  };
  return root._prsrCleanup;
}
"""

KEYS_HTML = '<div class="prsr-keys" data-testid="next-keys"></div>'

KEYS_JS = """
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const el = parentElement.querySelector(".prsr-keys");
  if (!el || !data) return;
  if (el.dataset.token === data.token) return el._prsrCleanup;
  el.dataset.token = data.token;
  if (el._prsrCleanup) el._prsrCleanup();
  const onKey = (ev) => {
    if (ev.repeat || !(ev.key === "Enter" || ev.key === " ")) return;
    const t = ev.composedPath()[0];
    // a focused button, field or link handles its own Enter / Space
    if (t && t.closest && t.closest("button, input, textarea, select, a, [contenteditable]")) return;
    ev.preventDefault();
    document.removeEventListener("keydown", onKey);
    setTriggerValue("pressed", data.token);
  };
  document.addEventListener("keydown", onKey);
  el.dataset.ready = "1";  // test hook: the keys are listened to from now on
  el._prsrCleanup = () => document.removeEventListener("keydown", onKey);
  return el._prsrCleanup;
}
"""

STIM_BYTES = 32 * 32 * 4  # RGBA


def rgba_payload(img: np.ndarray) -> str:
    """base64 of the raw RGBA pixels of a uint8 image [32, 32, C] (C = 1 grey or 3 RGB; alpha 255).

    The length is the same (5,464 characters) for every image, so it carries nothing about content."""
    if img.dtype != np.uint8 or img.shape[:2] != (32, 32) or img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"expected a uint8 image [32, 32, 1 or 3], got {img.dtype} {img.shape}")
    rgb = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
    rgba = np.concatenate([rgb, np.full((32, 32, 1), 255, np.uint8)], axis=2)
    return base64.b64encode(np.ascontiguousarray(rgba).tobytes()).decode("ascii")


def trial_data(
    token: str,
    left: np.ndarray | None,
    right: np.ndarray | None,
    *,
    display_px: int,
    exposure_ms: int,
    fixation_ms: int,
    practice: bool,
    response_window_ms: int | None = None,
) -> dict:
    """The JSON-serialisable `data` the component receives for one trial. `left` / `right`: uint8
    images [32, 32, C]; None for both once the exposure has ended (the re-render without pixels).
    `min_width` / `min_height` (CSS px) follow `env_probe.fits`; `response_window_ms` 0: no window."""
    if (left is None) != (right is None):
        raise ValueError("give both images of a pair or neither")
    return dict(
        token=token,
        left="" if left is None else rgba_payload(left),
        right="" if right is None else rgba_payload(right),
        display_px=int(display_px),
        exposure_ms=int(exposure_ms),
        fixation_ms=int(fixation_ms),
        practice=bool(practice),
        response_window_ms=int(response_window_ms or 0),
        min_width=2 * int(display_px) + GAP_PX,
        min_height=int(display_px) + CHROME_PX,
    )


def make_component():
    """Register the component with Streamlit and return its mount function."""
    import streamlit as st  # noqa: PLC0415  (only the app registers components; tests use the payload alone)

    return st.components.v2.component("prsr_trial", html=HTML, css=CSS, js=JS)


def make_keys_component():
    """Register the Enter/Space component of the practice feedback page; returns its mount function."""
    import streamlit as st  # noqa: PLC0415  (as above)

    return st.components.v2.component("prsr_next_keys", html=KEYS_HTML, js=KEYS_JS)
