"""The timed 2AFC trial as an `st.components.v2` component (inline HTML/CSS/JS, no build step).

In the browser, per trial: both images are decoded (`img.decode()`) before anything is shown; a
fixation cross is shown for `fixation_ms`; then the pair is made visible inside a
`requestAnimationFrame` callback and hidden in the first later frame whose timestamp is within half a
frame of `exposure_ms` (so a 1000 ms exposure at 60 Hz is 60 frames); only then do the two answer
buttons become visible and enabled. The answer is sent once as the trigger value `answer`:
`{token, choice: "left"|"right", exposure_ms (hide-frame minus show-frame rAF timestamps),
reaction_ms (click time minus hide-frame time), tab_hidden (the page was hidden at any moment)}`.
The images are drawn at `display_px` CSS pixels with `image-rendering: pixelated` (nearest neighbour).
Nothing is timed on the server.
"""

from __future__ import annotations

import base64

HTML = """
<div class="prsr-trial">
  <div class="prsr-question">Which image, would you guess, is from a camera?</div>
  <div class="prsr-stage">
    <img class="prsr-stim" data-side="left" alt="left image">
    <div class="prsr-cross" hidden>+</div>
    <img class="prsr-stim" data-side="right" alt="right image">
  </div>
  <div class="prsr-answers">
    <button class="prsr-answer" data-side="left" disabled>Left</button>
    <button class="prsr-answer" data-side="right" disabled>Right</button>
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
.prsr-stim { width: var(--prsr-px); height: var(--prsr-px); image-rendering: pixelated; visibility: hidden; }
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
  const { data, setTriggerValue, parentElement } = component;
  const root = parentElement.querySelector(".prsr-trial");
  if (!root || !data) return;
  // a re-render of the same trial (any unrelated rerun) must not restart the timer
  if (root.dataset.token === data.token) return root._prsrCleanup;
  root.dataset.token = data.token;
  root.style.setProperty("--prsr-px", data.display_px + "px");

  const stims = root.querySelectorAll("img.prsr-stim");
  const cross = root.querySelector(".prsr-cross");
  const buttons = root.querySelectorAll("button.prsr-answer");
  const status = root.querySelector(".prsr-status");
  let cancelled = false;
  let tabHidden = document.hidden;
  const onVisibility = () => { if (document.hidden) tabHidden = true; };
  document.addEventListener("visibilitychange", onVisibility);

  const showPair = (on) => stims.forEach((im) => { im.style.visibility = on ? "visible" : "hidden"; });
  const enableButtons = (on) => buttons.forEach((b) => { b.disabled = !on; b.style.visibility = on ? "visible" : "hidden"; });
  showPair(false);
  enableButtons(false);
  stims[0].src = data.left;
  stims[1].src = data.right;

  let tShow = null, tHide = null, answered = false;
  buttons.forEach((b) => {
    b.onclick = (ev) => {
      if (answered || tHide === null || b.disabled) return;  // never an answer before the pair is hidden
      answered = true;
      buttons.forEach((x) => { x.disabled = true; });
      status.textContent = "Saving…";
      setTriggerValue("answer", {
        token: data.token,
        choice: b.dataset.side,
        exposure_ms: tHide - tShow,
        reaction_ms: Math.max(0, performance.now() - tHide),
        tab_hidden: tabHidden,
      });
    };
  });

  Promise.all(Array.from(stims).map((im) => im.decode())).then(() => {
    if (cancelled) return;
    status.textContent = "";
    cross.hidden = false;
    let tCross = null, last = null, period = 1000 / 60;
    const frame = (ts) => {
      if (cancelled) return;
      if (last !== null && ts > last) period = Math.min(period, ts - last);  // the display's frame period
      last = ts;
      if (tCross === null) { tCross = ts; requestAnimationFrame(frame); return; }
      if (tShow === null) {
        if (ts - tCross >= data.fixation_ms - period / 2) {
          cross.hidden = true;
          showPair(true);   // painted in this frame
          tShow = ts;
        }
        requestAnimationFrame(frame);
        return;
      }
      if (ts - tShow >= data.exposure_ms - period / 2) {
        showPair(false);
        tHide = ts;
        enableButtons(true);
        status.textContent = data.practice ? "Practice: choose the real photo." : "";
        return;
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }).catch((err) => { status.textContent = "Could not load the images: " + err; });

  root._prsrCleanup = () => {
    cancelled = true;
    document.removeEventListener("visibilitychange", onVisibility);
  };
  return root._prsrCleanup;
}
"""


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def trial_data(token: str, left_png: bytes, right_png: bytes, *, display_px: int, exposure_ms: int,
               fixation_ms: int, practice: bool) -> dict:
    """The JSON-serialisable `data` the component receives for one trial."""
    return dict(token=token, left=data_url(left_png), right=data_url(right_png), display_px=int(display_px),
                exposure_ms=int(exposure_ms), fixation_ms=int(fixation_ms), practice=bool(practice))


def make_component():
    """Register the component with Streamlit and return its mount function."""
    import streamlit as st

    return st.components.v2.component("prsr_trial", html=HTML, css=CSS, js=JS)
