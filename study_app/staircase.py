"""HYPE-time exposures: a per-rater staircase on the exposure of each pair (`prsr study init --exposure staircase`).

HYPE_time (Zhou et al., NeurIPS 2019) adapts how long each pair is shown to the rater's answers and reports
the exposure at which a method's images can no longer be told from real ones. The rule here is Levitt's
transformed up-down staircase (Levitt 1971, J. Acoust. Soc. Am. 49:467): after `down` consecutive correct
answers (the real image chosen) the next exposure is one grid step shorter, after each wrong answer one step
longer; until the first wrong answer every correct one shortens it (`fast_start`, so that a rater far below
the start reaches the threshold region within a few pairs rather than 3 per step). With 3-down/1-up the
staircase settles where P(correct) = 0.5 ** (1/3) = 0.794, the rater's *threshold*: a method whose images
need a longer look to be told apart has the higher threshold.

Which trials move it: a rater's counted, non-golden trials answered within the response window (a late
answer says nothing about the exposure), in trial order. Practice pairs are shown at the start exposure and
golden (attention) pairs at the longest one: an attention check should test attention, not eyesight.

Estimate per rater (`rater_threshold_ms`): the geometric mean of the exposures of the trials from the
`discard_reversals`-th reversal on (the run-in from the start is left out); a rater whose staircase turned
fewer times (pinned at an end of the grid) gets the geometric mean of the second half of the trials. The
defaults (start at the longest exposure, fast start, 4 reversals left out, 10 steps per decade) were chosen
on simulated raters (`python -m analysis.validate_thresholds`, docs/plan-run-report.md): estimating from the
reversal exposures instead, or starting at 501 ms, came out 4-10 % low and covered the true threshold less
often. Thresholds near either end of the grid are censored there: choose a grid that brackets them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

#: 11 exposures from 100 to 1000 ms, equal steps on a log scale (10 per decade, ~26 % apart)
DEFAULT_GRID_MS = tuple(int(round(100 * 10 ** (k / 10))) for k in range(11))
MODES = ("fixed", "staircase")


@dataclass(frozen=True)
class StaircaseRule:
    """The staircase of one study (stored as JSON in the `study` row)."""

    grid_ms: tuple[int, ...] = field(default=DEFAULT_GRID_MS)  # ascending exposures, ms
    start_ms: int = 1000  # the first counted pair's exposure (and the practice pairs'); must be on the grid
    down: int = 3  # consecutive correct answers that shorten the exposure by one step
    up: int = 1  # wrong answers that lengthen it by one step
    discard_reversals: int = 4  # a rater's estimate starts at this reversal (the run-in before it is left out)
    fast_start: bool = True  # 1-down until the first wrong answer, then `down`-down (reaches the threshold sooner)
    fast_step: int = 1  # grid steps per move before the first wrong answer (with fast_start)

    def __post_init__(self):
        grid = tuple(int(g) for g in self.grid_ms)
        object.__setattr__(self, "grid_ms", grid)
        if len(grid) < 2 or any(b <= a for a, b in zip(grid, grid[1:])) or grid[0] < 1:
            raise ValueError(f"staircase grid_ms must be >= 2 ascending positive ms values, got {list(grid)}")
        if self.start_ms not in grid:
            raise ValueError(f"staircase start_ms {self.start_ms} is not on the grid {list(grid)}")
        if self.down < 1 or self.up < 1 or self.discard_reversals < 0 or self.fast_step < 1:
            raise ValueError(f"staircase down/up must be >= 1 and discard_reversals >= 0, got {asdict(self)}")

    @property
    def target_p_correct(self) -> float:
        """The P(correct) a 1-up staircase converges to (Levitt): p ** down = 0.5; NaN for up > 1."""
        return 0.5 ** (1.0 / self.down) if self.up == 1 else float("nan")

    def to_json(self) -> dict:
        return dict(asdict(self), grid_ms=list(self.grid_ms))

    @classmethod
    def from_json(cls, d: dict | None) -> "StaircaseRule":
        return cls(**{**(d or {}), "grid_ms": tuple((d or {}).get("grid_ms", DEFAULT_GRID_MS))})


def exposures_for(rule: StaircaseRule, outcomes: Sequence[bool]) -> list[int]:
    """The exposure (ms) of each staircase trial given the outcomes before it; len(outcomes) + 1 values,
    the last being the next trial's. `outcomes`: correct (True) / wrong of the counted non-golden trials."""
    idx = rule.grid_ms.index(rule.start_ms)
    top = len(rule.grid_ms) - 1
    run_correct = run_wrong = 0
    fast = rule.fast_start
    out = [rule.grid_ms[idx]]
    for correct in outcomes:
        if correct:
            run_correct, run_wrong = run_correct + 1, 0
            if fast or run_correct == rule.down:
                idx, run_correct = max(idx - (rule.fast_step if fast else 1), 0), 0
        else:
            run_wrong, run_correct = run_wrong + 1, 0
            if run_wrong == rule.up:
                idx, run_wrong = min(idx + (rule.fast_step if fast else 1), top), 0
            fast = False
        out.append(rule.grid_ms[idx])
    return out


def reversal_indices(exposures_ms: Sequence[float]) -> list[int]:
    """Indices i where the staircase turned: the step from trial i to i + 1 goes the other way than the
    previous move (a step down after steps up, or the reverse), in order."""
    out, direction = [], 0
    for i, (prev, cur) in enumerate(zip(exposures_ms, exposures_ms[1:])):
        if cur == prev:
            continue
        step = 1 if cur > prev else -1
        if direction and step != direction:
            out.append(i)
        direction = step
    return out


def rater_threshold_ms(rule: StaircaseRule, exposures_ms: Sequence[float]) -> float:
    """One rater's threshold (ms) from the exposures their staircase trials were shown at, in order: the
    geometric mean of the exposures from the `discard_reversals`-th reversal on (the second half of the
    trials when the staircase turned fewer times); NaN for no trials."""
    if not len(exposures_ms):
        return float("nan")
    turns = reversal_indices(exposures_ms)
    k = rule.discard_reversals
    start = (turns[k - 1] if k else 0) if len(turns) >= k else len(exposures_ms) // 2
    kept = exposures_ms[start:]
    return math.exp(sum(math.log(x) for x in kept) / len(kept))


def exposure_text(rule: StaircaseRule) -> str:
    """How the instructions describe the exposure: 'between 0.1 and 1 second'."""
    lo, hi = rule.grid_ms[0] / 1000, rule.grid_ms[-1] / 1000
    return f"between {lo:g} and {hi:g} second{'s' if hi != 1 else ''}"
