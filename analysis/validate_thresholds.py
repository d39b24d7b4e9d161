"""Bench: does the HYPE-time threshold analysis recover a simulated rater population's threshold?

    python -m analysis.validate_thresholds [--studies 500] [--raters 20] [--trials 40] [--threshold-ms 200 400 700]

Each simulated study: `--raters` raters per method, each answering `--trials` counted staircase pairs
(`study_app.staircase`, the default rule) by the simulator's answer model (`study_app.fool_model.p_correct_at`,
rater thresholds log-normal around the method's, SD `fool_model.STAIRCASE_THRESHOLD_SD`). The analysis is
`analysis.thresholds` (per-rater reversal estimate, geometric mean over raters, percentile bootstrap). Prints,
per true threshold, the share of studies whose 95 % interval holds it (goal >= 0.90), the mean estimate and
the interval's mean width. Kept out of `make bench` (about a minute on one core at the defaults).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from analysis.thresholds import method_thresholds
from study_app.fool_model import STAIRCASE_THRESHOLD_SD, p_correct_at, psychometric_alpha
from study_app.staircase import StaircaseRule, exposures_for, rater_threshold_ms


def simulate_rater(rule: StaircaseRule, alpha_ms: float, n_trials: int, rng: np.random.Generator) -> list[int]:
    """The exposures (ms) of one simulated rater's staircase trials, in order."""
    outcomes: list[bool] = []
    shown: list[int] = []
    for _ in range(n_trials):
        t = exposures_for(rule, outcomes)[-1]
        shown.append(t)
        outcomes.append(bool(rng.random() < p_correct_at(t, alpha_ms)))
    return shown


def simulate_study(
    rule: StaircaseRule, thresholds_ms: dict, n_raters: int, n_trials: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Per-rater thresholds (`analysis.thresholds.RATER_THRESHOLD_COLUMNS`) of one simulated study."""
    rows = []
    for method, true_ms in thresholds_ms.items():
        alpha = psychometric_alpha(true_ms, rule.target_p_correct)
        for r in range(n_raters):
            rater_alpha = alpha * math.exp(STAIRCASE_THRESHOLD_SD * rng.normal())
            shown = simulate_rater(rule, rater_alpha, n_trials, rng)
            rows.append((method, f"{method}-{r}", n_trials, rater_threshold_ms(rule, shown)))
    return pd.DataFrame(rows, columns=["method", "rater_id", "trials", "threshold_ms"])


def coverage(
    thresholds_ms: dict,
    *,
    studies: int,
    raters: int,
    trials: int,
    n_boot: int = 1000,
    seed: int = 0,
    rule: StaircaseRule | None = None,
) -> pd.DataFrame:
    """One row per method: true_ms, coverage (share of intervals holding it), mean estimate, mean width."""
    rule = rule or StaircaseRule()
    rng = np.random.default_rng(seed)
    hits = {m: [] for m in thresholds_ms}
    est = {m: [] for m in thresholds_ms}
    width = {m: [] for m in thresholds_ms}
    for s in range(studies):
        per_rater = simulate_study(rule, thresholds_ms, raters, trials, rng)
        table = method_thresholds(per_rater, rule, n_boot=n_boot, seed=s).set_index("method")
        for m, true_ms in thresholds_ms.items():
            hits[m].append(table.ci_low[m] <= true_ms <= table.ci_high[m])
            est[m].append(table.threshold_ms[m])
            width[m].append(table.ci_high[m] - table.ci_low[m])
    return pd.DataFrame(
        [
            (m, t, float(np.mean(hits[m])), float(np.mean(est[m])), float(np.mean(width[m])))
            for m, t in thresholds_ms.items()
        ],
        columns=["method", "true_ms", "coverage", "mean_estimate_ms", "mean_width_ms"],
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--studies", type=int, default=500)
    p.add_argument("--raters", type=int, default=20, help="raters per method")
    p.add_argument("--trials", type=int, default=40, help="counted staircase trials per rater (45 with 5 golden)")
    p.add_argument("--threshold-ms", type=float, nargs="+", default=[200.0, 400.0, 700.0])
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start-ms", type=int, default=None, help="the rule's start (default: the study default)")
    p.add_argument("--discard-reversals", type=int, default=None)
    p.add_argument("--steps-per-decade", type=int, default=None, help="a log grid 100-1000 ms with this many steps")
    p.add_argument("--fast-step", type=int, default=None)
    args = p.parse_args(argv)
    given = (("start_ms", args.start_ms), ("discard_reversals", args.discard_reversals), ("fast_step", args.fast_step))
    kw = {k: v for k, v in given if v is not None}
    if args.steps_per_decade:
        n = args.steps_per_decade
        kw["grid_ms"] = tuple(int(round(100 * 10 ** (k / n))) for k in range(n + 1))
        kw.setdefault("start_ms", kw["grid_ms"][-1])
    rule = StaircaseRule(**kw)
    truths = {f"method_{t:g}ms": t for t in args.threshold_ms}
    t0 = time.perf_counter()
    table = coverage(
        truths,
        studies=args.studies,
        raters=args.raters,
        trials=args.trials,
        n_boot=args.n_boot,
        seed=args.seed,
        rule=rule,
    )
    print(
        f"{args.studies} simulated studies, {args.raters} raters x {args.trials} staircase trials per method, "
        f"rater threshold SD {STAIRCASE_THRESHOLD_SD} (log), {args.n_boot} bootstrap resamples, seed {args.seed}; "
        f"rule {rule.to_json()}"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
