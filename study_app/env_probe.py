"""The device check as an `st.components.v2` component: measures the browser before consent.

Sent once on mount and again after a window resize (trigger value `env`): `viewport_w`, `viewport_h`
(CSS px, `innerWidth` / `innerHeight`), `device_pixel_ratio`, `user_agent`, `refresh_hz` (the median
`requestAnimationFrame` interval over 30 frames, inverted), `content_w` (the width, in CSS px, of the
column the trial will be drawn in) and `stored_token` (the resume token this browser kept in local
storage, "" if none). With `data.remember` set, that token is stored first (so Back to the bare link,
or a new tab, resumes the same rater instead of claiming a second slot).

`fits(env, display_px)` is the check the app applies: the pair (two images and the 48 px gap) must
fit the content column, and the trial (pair, question, buttons) the window's height.
"""

from __future__ import annotations

HTML = '<div class="prsr-env" data-testid="device-check" style="width: 100%"></div>'

JS = """
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const el = parentElement.querySelector(".prsr-env");
  if (!el) return;
  const key = "prsr-study-token:" + (data && data.study || "");
  try { if (data && data.remember) localStorage.setItem(key, data.remember); } catch (e) { /* storage off */ }
  if (el.dataset.started) return el._cleanup;
  el.dataset.started = "1";
  let hz = null, timer = null;
  const send = () => {
    let stored = "";
    try { stored = localStorage.getItem(key) || ""; } catch (e) { /* storage off */ }
    setTriggerValue("env", {
      viewport_w: window.innerWidth, viewport_h: window.innerHeight,
      device_pixel_ratio: window.devicePixelRatio || 1, user_agent: navigator.userAgent || "",
      refresh_hz: hz, content_w: Math.floor(el.getBoundingClientRect().width),  // a block: the column's width
      stored_token: stored,
    });
  };
  const stamps = [];
  const frame = (ts) => {
    stamps.push(ts);
    if (stamps.length < 31) { requestAnimationFrame(frame); return; }
    const d = stamps.slice(1).map((t, i) => t - stamps[i]).sort((a, b) => a - b);
    const median = d[Math.floor(d.length / 2)];
    hz = median > 0 ? Math.round(10000 / median) / 10 : null;
    send();
  };
  requestAnimationFrame(frame);
  const onResize = () => { clearTimeout(timer); timer = setTimeout(() => { if (hz !== null) send(); }, 300); };
  window.addEventListener("resize", onResize);
  el._cleanup = () => { window.removeEventListener("resize", onResize); clearTimeout(timer); };
  return el._cleanup;
}
"""

GAP_PX = 48  # between the two images (trial_component's CSS)
CHROME_PX = 160  # question, buttons and margins above and below the pair


def fits(env: dict, display_px: int) -> bool:
    """True when both images are shown whole: 2 * display_px + GAP_PX <= the content width, and the
    trial's height (display_px + CHROME_PX) <= the window height."""
    try:
        width = float(env.get("content_w") or env.get("viewport_w") or 0)
        height = float(env.get("viewport_h") or 0)
    except (TypeError, ValueError):
        return False
    return width >= 2 * display_px + GAP_PX and height >= display_px + CHROME_PX


def make_component():
    import streamlit as st  # noqa: PLC0415  (only the app registers components; `fits` is used without streamlit)

    return st.components.v2.component("prsr_env", html=HTML, js=JS)
