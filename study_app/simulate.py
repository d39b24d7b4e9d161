"""`prsr study simulate`: fill a study database with simulated raters whose true fool rates are known.

The raters go through the same functions the app calls (`enrol`, `next_trial`, `record_answer`), so
they are spread over the methods by the same slot balancing as real raters. Answers follow
`study_app.fool_model`: an attentive rater r is fooled on image i of method m with probability
sigmoid(b0_m + u_r + v_(m,i)), u_r ~ N(0, rater_sd^2), v ~ N(0, image_sd^2), where b0_m is solved so
that the MARGINAL fool rate is the requested P. Practice trials are answered the same way.

- Golden failures: a fraction `golden_fail_rate` of raters is inattentive: they answer every trial
  by a coin flip, and their first golden question is failed, so the analysis' drop rule removes
  exactly them. Attentive raters answer golden questions correctly.
- Abandoned sessions: a fraction `abandon_rate` of raters stops after a uniform random number of
  answers and never returns; the simulated clock then passes the study's abandonment timeout, so the
  next enrolment reclaims the slot (as with real drop-outs).
- The study's attention rule applies as in the app: a simulated rater whose golden misses exceed
  `attention_max_misses` is screened out (the session ends, the slot is free again) and counted
  as `screened_out`.
- Methods without a `--fool-rate` get `DEFAULT_FOOL_RATES` (the paper's CelebA Table 1 values) or
  `FALLBACK_FOOL_RATE`.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
from sqlalchemy import func, select, update
from tqdm import tqdm

from .db import normalise_url, open_study
from .fool_model import (
    STAIRCASE_LAPSE,
    STAIRCASE_SLOPE,
    STAIRCASE_THRESHOLD_SD,
    p_correct_at,
    psychometric_alpha,
    solve_logit_intercept,
)
from .schema import raters, study
from .staircase import StaircaseRule
from .store import StudyFull, enrol, next_trial, reclaim_abandoned, record_answer, study_settings, utcnow

DEFAULT_FOOL_RATES = {
    "resnet_l2": 0.040,
    "gan": 0.085,
    "pixel_recursive_t1.0": 0.110,
    "pixel_recursive_t0.9": 0.104,
    "pixel_recursive_t0.8": 0.102,
}
FALLBACK_FOOL_RATE = 0.10
# staircase studies: population exposure thresholds (ms) of the simulated raters; longer = harder to tell from real
DEFAULT_THRESHOLDS_MS = {
    "resnet_l2": 150.0,
    "gan": 220.0,
    "pixel_recursive_t1.0": 320.0,
    "pixel_recursive_t0.9": 300.0,
    "pixel_recursive_t0.8": 290.0,
}
FALLBACK_THRESHOLD_MS = 250.0
SECONDS_PER_TRIAL = 3.0


def _parse_method_values(items, option: str, unit: str, valid, expected: str) -> dict[str, float]:
    """["METHOD=VALUE", ...] -> {method: value}; a malformed item or a value failing `valid` is refused
    naming `option` and `expected`."""
    out: dict[str, float] = {}
    for item in items or []:
        method, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not sep or not method or not valid(value):
            raise ValueError(f"{option} {item!r}: expected METHOD={unit} with {expected}")
        out[method] = value
    return out


def parse_fool_rates(items: list[str] | None) -> dict[str, float]:
    """["METHOD=P", ...] -> {method: P} with 0 < P < 1."""
    return _parse_method_values(items, "--fool-rate", "P", lambda p: 0.0 < p < 1.0, "0 < P < 1")


def parse_thresholds(items: list[str] | None) -> dict[str, float]:
    """["METHOD=MS", ...] -> {method: ms} with ms > 0 (staircase studies' true thresholds)."""
    return _parse_method_values(items, "--threshold-ms", "MS", lambda ms: ms > 0, "MS > 0")


def _check_arguments(methods, fool_rates, n_raters, rater_sd, image_sd, golden_fail_rate, abandon_rate) -> None:
    unknown = sorted(set(fool_rates) - set(methods))
    if unknown:
        raise ValueError(f"--fool-rate for {unknown}, which the study does not compare (it has {methods})")
    if n_raters < 1:
        raise ValueError(f"--raters must be >= 1, got {n_raters}")
    for name, v in (("golden_fail_rate", golden_fail_rate), ("abandon_rate", abandon_rate)):
        if not 0.0 <= v < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {v}")
    if rater_sd < 0 or image_sd < 0:
        raise ValueError("rater_sd and image_sd must be >= 0")


def _simulate_rater(
    engine, pid, clock, rng, intercepts, image_effect, total, rater_sd, image_sd, golden_fail_rate, abandon_rate, alphas
):
    """One enrolled simulated rater's answers (see the module docstring); returns (clock after the
    last answer, the rater's outcome: complete | abandoned | screened_out). `image_effect` is shared
    across raters and filled here. `alphas`: {method: psychometric alpha (ms)} for a staircase study
    (then an attentive rater's answers follow `fool_model.p_correct_at` of the pair's exposure), else None."""
    u = rng.normal(0.0, rater_sd)
    rater_scale = math.exp(STAIRCASE_THRESHOLD_SD * rng.normal()) if alphas else 1.0
    attentive = rng.random() >= golden_fail_rate
    stop_after = int(rng.integers(0, total)) if rng.random() < abandon_rate else None
    golden_seen = 0
    answered = 0
    while True:
        if stop_after is not None and answered >= stop_after:
            break
        trial = next_trial(engine, pid, now=clock)
        if trial is None:
            break
        if trial.is_golden:
            golden_seen += 1
            fooled = (golden_seen == 1 or rng.random() < 0.5) if not attentive else False
        elif not attentive:
            fooled = rng.random() < 0.5
        elif alphas:
            fooled = rng.random() >= p_correct_at(trial.exposure_ms, alphas[trial.method] * rater_scale)
        else:
            key = (trial.method, trial.image_id)
            if key not in image_effect:
                image_effect[key] = rng.normal(0.0, image_sd)
            p = 1.0 / (1.0 + math.exp(-(intercepts[trial.method] + u + image_effect[key])))
            fooled = rng.random() < p
        other = "right" if trial.real_side == "left" else "left"
        choice = other if fooled else trial.real_side
        clock += timedelta(seconds=SECONDS_PER_TRIAL)
        result = record_answer(
            engine,
            pid,
            trial.trial_index,
            trial.attempt,
            choice,
            exposure_ms=trial.exposure_ms + rng.normal(0.0, 0.3),
            reaction_ms=float(rng.lognormal(math.log(700), 0.4)),
            tab_hidden=False,
            now=clock,
        )
        answered += 1
        if result.screened_out:  # the study's attention rule ended the session (its slot is free again)
            return clock, "screened_out"
    return clock, "abandoned" if stop_after is not None else "complete"


def _staircase_model(settings: dict, methods: list[str], thresholds_ms: dict | None) -> tuple[dict | None, dict]:
    """({method: psychometric alpha}, parameters to store) for a staircase study; (None, {}) otherwise."""
    if settings.get("exposure_mode") != "staircase":
        if thresholds_ms:
            raise ValueError("--threshold-ms needs a staircase study (`prsr study init --exposure staircase`)")
        return None, {}
    unknown = sorted(set(thresholds_ms or {}) - set(methods))
    if unknown:
        raise ValueError(f"--threshold-ms for {unknown}, which the study does not compare (it has {methods})")
    rule = StaircaseRule.from_json(json.loads(settings["staircase"]))
    true = {
        m: float((thresholds_ms or {}).get(m, DEFAULT_THRESHOLDS_MS.get(m, FALLBACK_THRESHOLD_MS))) for m in methods
    }
    alphas = {m: psychometric_alpha(t, rule.target_p_correct) for m, t in true.items()}
    params = dict(
        true_thresholds_ms=true,
        threshold_sd=STAIRCASE_THRESHOLD_SD,
        psychometric_slope=STAIRCASE_SLOPE,
        lapse=STAIRCASE_LAPSE,
        staircase_answer_model="attentive raters: P(correct | t) = 0.5 + (0.5 - lapse)(1 - exp(-(t / alpha_r)^slope)), "
        "log alpha_r ~ N(log alpha_method, threshold_sd^2); true_thresholds_ms = the population's geometric-mean "
        f"exposure of P(correct) = {rule.target_p_correct:.4f}",
    )
    return alphas, params


def simulate_study(
    db: str,
    n_raters: int,
    fool_rates: dict[str, float] | None = None,
    *,
    rater_sd: float = 0.8,
    image_sd: float = 0.8,
    golden_fail_rate: float = 0.0,
    abandon_rate: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    thresholds_ms: dict[str, float] | None = None,
) -> dict:
    """Simulate `n_raters` raters (abandoned ones included) into the fresh study at `db`.

    A staircase (HYPE-time) study's raters answer by `fool_model.p_correct_at` of each pair's exposure, with
    the population thresholds `thresholds_ms` ({method: ms}; default `DEFAULT_THRESHOLDS_MS`), stored as
    `true_thresholds_ms`. Returns the stored simulation parameters plus counts (`complete`, `abandoned`).
    """
    url = normalise_url(db)
    engine = open_study(url)
    settings = study_settings(engine)
    methods = json.loads(settings["methods"])
    fool_rates = dict(fool_rates or {})
    _check_arguments(methods, fool_rates, n_raters, rater_sd, image_sd, golden_fail_rate, abandon_rate)
    rates = {m: fool_rates.get(m, DEFAULT_FOOL_RATES.get(m, FALLBACK_FOOL_RATE)) for m in methods}
    intercepts = {m: solve_logit_intercept(p, rater_sd, image_sd) for m, p in rates.items()}
    alphas, staircase_params = _staircase_model(settings, methods, thresholds_ms)
    params = dict(
        true_fool_rates=rates,
        rater_sd=rater_sd,
        image_sd=image_sd,
        seed=seed,
        golden_fail_rate=golden_fail_rate,
        abandon_rate=abandon_rate,
        n_raters=n_raters,
        logit_intercepts=intercepts,
        answer_model="sigmoid(b0_method + u_rater + v_(method,image)); inattentive raters guess",
        **staircase_params,
    )
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(raters)).scalar_one():
            raise ValueError(f"{url} already holds raters; simulate into a freshly initialised study")
        conn.execute(update(study).where(study.c.id == 1).values(simulated=True, sim_params=json.dumps(params)))

    rng = np.random.default_rng(seed)
    image_effect: dict[tuple[str, str], float] = {}
    total = settings["n_practice"] + settings["n_test_trials"]
    gap = timedelta(seconds=settings["abandon_after_s"] + 1)
    # start in the past so that the last simulated session ends about now
    clock = utcnow() - n_raters * (gap + timedelta(seconds=SECONDS_PER_TRIAL * total))
    counts = {"complete": 0, "abandoned": 0, "screened_out": 0}
    for k in tqdm(range(n_raters), desc="simulated raters", disable=not progress):
        pid = f"sim-{k + 1:05d}"
        try:
            enrol(engine, pid, now=clock)
        except StudyFull:
            raise ValueError(
                f"the study has no free slot for simulated rater {k + 1} of {n_raters}; "
                "initialise it with more --raters-per-method"
            ) from None
        clock, outcome = _simulate_rater(
            engine,
            pid,
            clock,
            rng,
            intercepts,
            image_effect,
            total,
            rater_sd,
            image_sd,
            golden_fail_rate,
            abandon_rate,
            alphas,
        )
        counts[outcome] += 1
        clock += gap  # past the timeout: an abandoned slot is reclaimed by the next enrolment
    reclaim_abandoned(engine, now=clock)  # the last drop-outs, too
    return {**params, **counts, "url": url}
