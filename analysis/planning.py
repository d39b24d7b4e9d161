"""Planning a study before paying for it: expected interval widths, power per pair, raters needed, cost.

Whole studies are simulated with the rater/image random-effects model (`analysis.simulation.simulate_counts`,
the model of `study_app.fool_model` and `prsr study simulate`) and analysed by a vectorised fast path of
`prsr analyze`'s estimator: the pooled rate with its jackknife-over-raters logit-t interval
(`analysis.intervals.rate_interval`, batched over studies), the Welch t test of every pair
(`difference_test`) and Holm's adjustment over all pairs (`analysis.fool_rates._pairwise_table` does the
same per study). Per design:

- `ci_halfwidth` per method: half the 95 % interval's width, averaged over simulated studies;
- `coverage` per method and `diff_coverage` per pair: the share of studies whose interval covers the truth;
- `power` per pair: the share of studies in which Holm-adjusted p <= alpha (two-sided);
- `family_wise_rejection`: the share of studies with any rejection among pairs of equal true rates.

Raters are lost to the exclusion rules at `exclusion_rate` (golden failures, voids; the app re-issues
abandoned slots, so drop-outs cost time, not raters); the kept raters per method are round(R (1 - rate)).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np

from analysis.bootstrap import holm_adjust, method_rng
from analysis.intervals import difference_test, rate_interval
from analysis.simulation import simulate_counts


@dataclass
class Design:
    """A study design in `prsr study init`'s terms (defaults: the paper's design)."""

    raters_per_method: int = 40
    n_trials: int = 45  # per rater, golden included
    n_golden: int = 5
    n_images: int = 1000  # evaluation images per method (the pool a rater's trials are drawn from)
    exclusion_rate: float = 0.05  # expected share of raters dropped by the exclusion rules
    rater_sd: float = 0.8  # logit scale
    image_sd: float = 0.8

    @property
    def counted_trials(self) -> int:
        return self.n_trials - self.n_golden

    @property
    def kept_raters(self) -> int:
        return max(1, round(self.raters_per_method * (1.0 - self.exclusion_rate)))

    def check(self) -> None:
        if self.raters_per_method < 1 or self.n_golden < 0 or self.counted_trials < 1:
            raise ValueError(f"design needs raters_per_method >= 1 and n_trials > n_golden >= 0, got {self}")
        if self.counted_trials > self.n_images:
            raise ValueError(f"counted trials ({self.counted_trials}) exceed the image pool ({self.n_images})")
        if not 0 <= self.exclusion_rate < 1:
            raise ValueError(f"exclusion_rate must be in [0, 1), got {self.exclusion_rate}")


def simulate_design(
    rates: dict[str, float], design: Design, *, n_studies: int = 500, n_boot: int = 1000, alpha: float = 0.05, seed=0
) -> dict:
    """Simulate `n_studies` studies of `design` at true marginal `rates` and analyse each (fast path).

    Returns {"methods": {m: {fool_rate, ci_halfwidth, coverage}}, "pairs": [{a, b, diff, power,
    diff_coverage}], "family_wise_rejection": share of studies rejecting any equal-rate pair (None if there
    is none)}. `n_boot` is accepted for callers of the bootstrap-era signature and unused: the interval is
    the jackknife's, which needs no resampling.
    """
    del n_boot
    design.check()
    methods = list(rates)
    est, out_methods = {}, {}
    for m in methods:
        rng = method_rng(seed, m)
        sim = simulate_counts(
            n_studies,
            rates[m],
            n_raters=design.kept_raters,
            n_trials=design.counted_trials,
            n_images=design.n_images,
            rater_sd=design.rater_sd,
            image_sd=design.image_sd,
            rng=rng,
        )
        rate, se, lo, hi = rate_interval(sim.fooled, sim.trials)
        est[m] = (rate, se)
        out_methods[m] = dict(
            fool_rate=float(rates[m]),
            ci_halfwidth=float(np.mean((hi - lo) / 2)),
            coverage=float(np.mean((lo <= rates[m]) & (rates[m] <= hi))),
        )
    pairs = list(itertools.combinations(methods, 2))
    if not pairs:
        return dict(methods=out_methods, pairs=[], family_wise_rejection=None)
    n = design.kept_raters
    tests = [difference_test(*est[a], n, *est[b], n) for a, b in pairs]  # (lo, hi, p) of [S] each
    p = np.stack([t[2] for t in tests], axis=1)  # [S, pairs]
    rejected = np.apply_along_axis(holm_adjust, 1, p) <= alpha
    equal = np.array([rates[a] == rates[b] for a, b in pairs])
    out_pairs = []
    for k, (a, b) in enumerate(pairs):
        d, (lo, hi, _) = rates[a] - rates[b], tests[k]
        covered = float(np.mean((lo <= d) & (d <= hi)))
        out_pairs.append(dict(a=a, b=b, diff=float(d), power=float(rejected[:, k].mean()), diff_coverage=covered))
    fwer = float(rejected[:, equal].any(axis=1).mean()) if equal.any() else None
    return dict(methods=out_methods, pairs=out_pairs, family_wise_rejection=fwer)


def with_raters(design: Design, raters: int) -> Design:
    return Design(**{**asdict(design), "raters_per_method": int(raters)})


def raters_for_halfwidth(rates: dict, design: Design, target: float, result: dict, **sim) -> int:
    """Raters per method so that every method's expected half-width is <= `target`: the 1/sqrt(raters)
    scaling of the simulated widths, checked by one more simulation (and stepped up 10 % until it holds)."""
    worst = max(m["ci_halfwidth"] for m in result["methods"].values())
    raters = max(2, math.ceil(design.raters_per_method * (worst / target) ** 2))
    for _ in range(20):
        check = simulate_design(rates, with_raters(design, raters), **sim)
        if max(m["ci_halfwidth"] for m in check["methods"].values()) <= target:
            return raters
        raters = math.ceil(raters * 1.1)
    raise ValueError(f"no design up to {raters} raters per method reaches a half-width of {target}")


def raters_for_power(rates: dict, design: Design, target: float, *, max_raters: int = 2000, **sim) -> int | None:
    """The fewest raters per method (bisection, same seed: common random numbers) at which every pair of
    unequal rates reaches `target` power; None when no pair differs or `max_raters` does not suffice."""
    if all(rates[a] == rates[b] for a, b in itertools.combinations(rates, 2)):
        return None

    def ok(raters: int) -> bool:
        res = simulate_design(rates, with_raters(design, raters), **sim)
        return all(p["power"] >= target for p in res["pairs"] if p["diff"] != 0)

    lo, hi = 1, 2
    while not ok(hi):
        lo, hi = hi, hi * 2
        if hi > max_raters:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def cost(design: Design, n_methods: int, minutes_per_rater: float, pay_per_hour: float | None) -> dict:
    """Raters paid (every rater who completes, excluded ones too), rater-hours and, at a pay rate, the cost."""
    raters = design.raters_per_method * n_methods
    hours = raters * minutes_per_rater / 60.0
    return dict(
        raters=raters,
        minutes_per_rater=float(minutes_per_rater),
        rater_hours=hours,
        pay_per_hour=pay_per_hour,
        total=None if pay_per_hour is None else hours * pay_per_hour,
    )
