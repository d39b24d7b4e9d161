"""The GLMM check: crossed rater x image effects, rate marginalised over raters and images."""

import numpy as np
import pytest

from analysis.bootstrap import bootstrap_rates, summarize
from analysis.glmm import fit_glmm
from analysis.simulation import simulate_trials


def test_glmm_marginal_rate_matches_pooled_rate_and_not_the_conditional_one():
    _, trials = simulate_trials({"m": 0.2}, n_raters=40, n_trials=45, n_images=200, seed=11)
    pooled = trials.chose_model.mean()
    res = fit_glmm(trials, seed=0)
    assert res.rate == pytest.approx(pooled, abs=0.012)
    # sigmoid(b0) is the rate of a median rater on a median image: clearly lower than the marginal rate
    assert 1 / (1 + np.exp(-res.intercept)) < res.rate - 0.025
    assert 0.4 < res.rater_sd < 1.3 and 0.4 < res.image_sd < 1.3  # simulated with 0.8 each
    # its interval is about as wide as the bootstrap's over raters (both include the rater variation)
    counts = trials.groupby("rater_id").chose_model.agg(["sum", "count"])
    _, lo, hi = summarize(
        bootstrap_rates(counts["sum"].to_numpy(), counts["count"].to_numpy(), 4000, np.random.default_rng(0))
    )
    assert 0.7 < (res.ci_high - res.ci_low) / (hi - lo) < 1.5
    assert res.ci_low < res.rate < res.ci_high
    again = fit_glmm(trials, seed=0)
    assert (again.rate, again.ci_low) == (res.rate, res.ci_low)  # fixed starting point -> reproducible


def test_glmm_rejects_bad_input():
    with pytest.raises(ValueError, match="missing"):
        fit_glmm(simulate_trials({"m": 0.2}, n_raters=2, n_trials=3, n_images=5)[1].drop(columns="image_id"))
