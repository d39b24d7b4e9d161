"""The reported interval is honest: over 1,000 simulated studies per true rate the bootstrap-over-raters
95 % interval covers the true marginal fool rate >= 90 % of the time; the naive binomial one does not."""

import numpy as np
import pytest

from analysis.simulation import simulate_counts
from analysis.validate_coverage import coverage_table
from study_app.fool_model import marginal_rate, solve_logit_intercept


def test_simulated_counts_have_the_requested_marginal_rate():
    rng = np.random.default_rng(5)
    sim = simulate_counts(2000, 0.2, n_images=100, rng=rng)
    est = sim.fooled.sum() / sim.trials.sum()
    assert est == pytest.approx(0.2, abs=0.003)  # SE over 2,000 studies is ~0.0005
    assert sim.fooled.shape == (2000, 40) and np.all(sim.trials == 45)
    # the intercept alone (no marginalisation) would give a far lower rate: the test can tell them apart
    assert 1 / (1 + np.exp(-solve_logit_intercept(0.2, 0.8, 0.8))) < 0.17
    assert marginal_rate(solve_logit_intercept(0.2, 0.8, 0.8), 0.8, 0.8) == pytest.approx(0.2, abs=1e-9)


def test_bootstrap_covers_and_binomial_does_not():
    table = coverage_table((0.04, 0.1, 0.2, 0.3), n_studies=1000, n_boot=1000, n_images=200, seed=0)
    print(table.to_string())
    assert table.studies.sum() == 4000
    assert table.boot_coverage.mean() >= 0.90
    assert table.boot_coverage.min() >= 0.88  # each rate on its own (coverage SE ~0.009 per 1,000 studies)
    assert table.binomial_coverage.mean() < table.boot_coverage.mean() - 0.05
    assert np.all(table.binomial_coverage < table.boot_coverage)
    # the bootstrap SE tracks the true spread; the binomial SE is about half of it
    assert np.all(np.abs(table.boot_se / table.true_sd - 1) < 0.15)
    assert np.all(table.binomial_se / table.true_sd < 0.75)
