"""A study's texts and crowd-platform settings: defaults, the YAML file given to `prsr study init --config`,
and the checks on completion URLs and codes.

The YAML file may hold any of these keys (everything else is an error, so a typo is not ignored):

```yaml
texts:
  title: Which image is from a camera?
  consent: |                 # Markdown shown above the consent checkbox
    ...
  instructions: |            # Markdown; {n_practice}, {n_test_trials}, {exposure_s} are filled in
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
attention_max_misses: 1       # end the session after more failed golden questions; omit: never
max_claims_per_client: 5      # slot claims per client address per claim_window_min; 0: no limit
claim_window_min: 60
```

Command-line options of `init` override the file.
"""

from __future__ import annotations

import re
from pathlib import Path

PLATFORMS = ("none", "prolific", "mturk")
SCREENOUT_REASONS = ("no_consent", "failed_attention", "full", "expired", "bad_link")
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
        "- Two images then appear side by side for **{exposure_s:g} second(s)** and disappear. One is a real "
        "photograph, the other was made by a computer.\n"
        "- Then click **Left** or **Right** (or press ← / → or F / J): *which image, would you guess, is from "
        "a camera?* Take your time to answer; only the images are time-limited.\n"
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
}


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
        import yaml

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
        texts["instructions"].format(n_practice=10, n_test_trials=45, exposure_s=1.0)
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(
            f"{path}: texts.instructions may use only {{n_practice}}, {{n_test_trials}}, "
            f"{{exposure_s}} (literal braces doubled): {e}"
        ) from None
    out = {k: v for k, v in cfg.items() if k != "texts"}
    out["texts"] = texts
    screenout = out.get("screenout") or {}
    if not isinstance(screenout, dict) or set(screenout) - set(SCREENOUT_REASONS):
        raise ValueError(f"{path}: `screenout` may hold codes for {list(SCREENOUT_REASONS)}, got {screenout!r:.200}")
    out["screenout"] = {k: check_code(str(v), f"screenout.{k}") for k, v in screenout.items()}
    return out
