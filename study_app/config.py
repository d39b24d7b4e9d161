"""A study's texts and crowd-platform settings: defaults, the YAML file given to `prsr study init --config`,
and the checks on completion URLs and codes.

The YAML file may hold any of these keys (everything else is an error, so a typo is not ignored):

```yaml
texts:
  title: Which image is from a camera?
  consent: |                 # Markdown shown above the consent checkbox
    ...
  instructions: |   # Markdown; {n_practice} {n_test_trials} {exposure_s} {exposure} {response_rule} are filled in
    ...
  debrief: |                 # Markdown on the completion page
    ...
  contact: "Contact: ... Ethics approval: ..."   # shown on the consent and completion pages
  comments: true             # an optional comments box on the completion page
platform: prolific            # none | prolific | mturk
completion_url: https://app.prolific.com/submissions/complete?cc={code}
completion_code: C1ABCDEF     # one study-wide code; omit (or "per-rater") for one random code per rater
require_pid: true
screenout:                    # code per screen-out reason (redirected with completion_url)
  no_consent: CNOCONS
  failed_attention: CATTN
  full: CFULL
  expired: CEXP
  bad_link: CBADLINK
  device: CDEVICE             # the screen is too small for the pair (a phone)
attention_max_misses: 1       # end the session after more failed golden questions; omit: never
response_window_ms: 1000      # a choice later than this after the pair is erased is a timeout; omit: no window
max_claims_per_client: 5      # slot claims per client address per claim_window_min; 0: no limit
claim_window_min: 60
```

Command-line options of `init` override the file. `docs/study-settings.md` holds a complete example
with every key explained (a test loads it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .staircase import StaircaseRule, exposure_text

PLATFORMS = ("none", "prolific", "mturk")
SCREENOUT_REASONS = ("no_consent", "failed_attention", "full", "expired", "bad_link", "device")
PROLIFIC_COMPLETION_URL = "https://app.prolific.com/submissions/complete?cc={code}"
_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

DEFAULT_TEXTS = {
    "title": "Which image is from a camera?",
    "consent": (
        "This study is about how realistic computer-generated images look. You will see pairs of small "
        "images, each pair for one second, and decide which one is a real photograph. It takes about "
        "five minutes. Participation is voluntary; we store only your answers, their timing, your "
        "participant id and your screen's size and refresh rate, and you may stop at any time."
    ),
    "instructions": (
        "- A **+** appears in the middle of the screen: look at it.\n"
        "- Two images then appear side by side for **{exposure}** and disappear. One is a real "
        "photograph, the other was made by a computer.\n"
        "- Then click **Left** or **Right** (or press ← / → or F / J): *which image, would you guess, is from "
        "a camera?* {response_rule}\n"
        "- First come **{n_practice} practice pairs** where we tell you the right answer, then "
        "**{n_test_trials} pairs** that count. Some pairs are easy checks of attention.\n"
        "- Please keep this tab in front and do not reload the page during a pair.\n"
    ),
    "debrief": (
        "You have finished the study. Half of the images you saw were real photographs; the others were "
        "made by a super-resolution model from an 8x8-pixel version of the same photograph."
    ),
    "contact": "",
    "comments": False,
}

_KEYS = {
    "texts",
    "platform",
    "completion_url",
    "completion_code",
    "require_pid",
    "screenout",
    "attention_max_misses",
    "max_claims_per_client",
    "claim_window_min",
    "response_window_ms",
}
PLACEHOLDERS = ("n_practice", "n_test_trials", "exposure_s", "exposure", "response_rule")


def seconds_text(ms: float) -> str:
    """A duration in words: 1000 -> "1 second", 1500 -> "1.5 seconds", 250 -> "0.25 seconds"."""
    s = ms / 1000
    return f"{s:g} second" + ("" if s == 1 else "s")


def response_rule(response_window_ms: int | None) -> str:
    """The instructions' sentence on answer time: none without a response window."""
    if not response_window_ms:
        return "Take your time to answer; only the images are time-limited."
    return (
        f"Answer within **{seconds_text(response_window_ms)}** after the images disappear; "
        "a later answer is recorded as too late and does not count."
    )


def format_instructions(text: str, settings: dict) -> str:
    """The instructions with their placeholders filled from the study row `settings`."""
    exposure_ms = settings["exposure_ms"]
    exposure = seconds_text(exposure_ms)
    if settings.get("exposure_mode") == "staircase":  # HYPE-time: the exposure adapts (study_app.staircase)
        exposure = exposure_text(StaircaseRule.from_json(json.loads(settings.get("staircase") or "{}")))
        exposure += ", shorter after correct answers and longer after wrong ones"
    return text.format(
        n_practice=settings["n_practice"],
        n_test_trials=settings["n_test_trials"],
        exposure_s=exposure_ms / 1000,
        exposure=exposure,
        response_rule=response_rule(settings.get("response_window_ms")),
    )


def check_completion_url(url: str | None, where: str = "--completion-url") -> str | None:
    """`url` if it is an http(s) URL containing the `{code}` placeholder (or None); ValueError otherwise."""
    if url is None:
        return None
    if not isinstance(url, str) or not re.match(r"^https?://[^\s{}]+", url) or url.count("{code}") != 1:
        raise ValueError(
            f"{where} {url!r}: expected an http(s) URL with one {{code}} placeholder, e.g. {PROLIFIC_COMPLETION_URL}"
        )
    return url


def check_code(code: str | None, where: str) -> str | None:
    if code is None:
        return None
    if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        raise ValueError(f"{where} {code!r}: expected 1-64 characters of A-Z a-z 0-9 _ -")
    return code


def load_config(path: str | Path | None) -> dict:
    """The study config: DEFAULT_TEXTS merged with the YAML file's `texts`, plus its other keys (checked)."""
    cfg: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"study config {path} does not exist")
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(cfg, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        unknown = set(cfg) - _KEYS
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed {sorted(_KEYS)}")
    texts = dict(DEFAULT_TEXTS)
    given = cfg.get("texts") or {}
    if not isinstance(given, dict) or set(given) - set(DEFAULT_TEXTS):
        raise ValueError(f"{path}: `texts` may hold {sorted(DEFAULT_TEXTS)}, got {given!r:.200}")
    for k, v in given.items():
        if k == "comments":
            texts[k] = bool(v)
        elif not isinstance(v, str):
            raise ValueError(f"{path}: texts.{k} must be text, got {type(v).__name__}")
        else:
            texts[k] = v
    try:
        format_instructions(texts["instructions"], dict(n_practice=10, n_test_trials=45, exposure_ms=1000))
    except (KeyError, IndexError, ValueError) as e:
        allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        raise ValueError(f"{path}: texts.instructions may use only {allowed} (literal braces doubled): {e}") from None
    out = {k: v for k, v in cfg.items() if k != "texts"}
    out["texts"] = texts
    screenout = out.get("screenout") or {}
    if not isinstance(screenout, dict) or set(screenout) - set(SCREENOUT_REASONS):
        raise ValueError(f"{path}: `screenout` may hold codes for {list(SCREENOUT_REASONS)}, got {screenout!r:.200}")
    out["screenout"] = {k: check_code(str(v), f"screenout.{k}") for k, v in screenout.items()}
    return out
