"""Bootstrap over raters against exact enumeration, and the GLMM's marginal rate."""

import itertools

import numpy as np
import pytest

from analysis.bootstrap import bootstrap_rates, holm_adjust, method_rng, paired_difference_test, summarize


def test_bootstrap_matches_exact_enumeration_of_all_resamples():
    fooled = np.array([0, 3, 5, 1])
    trials = np.array([4, 6, 5, 10])  # unequal trial counts: the pooled ratio, not a mean of rates
    exact = np.array(
        [fooled[list(i)].sum() / trials[list(i)].sum() for i in itertools.product(range(4), repeat=4)]
    )  # all 4^4 equally likely resamples
    reps = bootstrap_rates(fooled, trials, 200_000, np.random.default_rng(0))
    assert reps.mean() == pytest.approx(exact.mean(), abs=1e-3)
    se, lo, hi = summarize(reps)
    assert se == pytest.approx(exact.std(), rel=0.01)
    assert lo == pytest.approx(np.quantile(exact, 0.025), abs=0.01)
    assert hi == pytest.approx(np.quantile(exact, 0.975), abs=0.01)


def test_batched_bootstrap_resamples_each_study_independently():
    rng = np.random.default_rng(1)
    fooled = np.array([[0, 1, 2], [3, 3, 3]])
    trials = np.array([[3, 3, 3], [3, 3, 3]])
    reps = bootstrap_rates(fooled, trials, 5000, rng, chunk=3 * 5000)  # one study per chunk
    assert reps.shape == (2, 5000)
    assert np.all(reps[1] == 1.0)  # a study without variation has none
    assert reps[0].std() == pytest.approx(np.sqrt(2 / 3 / 3) / 3, rel=0.05)  # SD of the mean of 3 draws
    with pytest.raises(ValueError, match="0 <= fooled <= trials"):
        bootstrap_rates(np.array([4]), np.array([3]), 10, rng)


def test_method_rng_depends_on_seed_and_method_only():
    a = method_rng(0, "gan").integers(0, 1 << 30, 5)
    assert np.array_equal(a, method_rng(0, "gan").integers(0, 1 << 30, 5))
    assert not np.array_equal(a, method_rng(0, "resnet_l2").integers(0, 1 << 30, 5))
    assert not np.array_equal(a, method_rng(1, "gan").integers(0, 1 << 30, 5))


def test_paired_difference_p_value():
    rng = np.random.default_rng(2)
    same = paired_difference_test(rng.normal(0.1, 0.01, 9999), rng.normal(0.1, 0.01, 9999))
    apart = paired_difference_test(rng.normal(0.3, 0.01, 9999), rng.normal(0.1, 0.01, 9999))
    assert same[2] > 0.05 and same[0] < 0 < same[1]
    assert apart[2] == pytest.approx(2 / 10000)  # no replicate at or below 0: the smallest possible p
    # one replicate in 10 below zero -> p = 2 * (1000 + 1) / 10001
    d = np.concatenate([-np.ones(1000), np.ones(9000)])
    assert paired_difference_test(d, np.zeros_like(d))[2] == pytest.approx(2 * 1001 / 10001)


def test_holm_adjustment_by_hand():
    # sorted p: 0.01, 0.02, 0.04, 0.30 with K = 4 -> 0.04, 0.06, 0.08, 0.30 (running max keeps it monotone)
    adjusted = holm_adjust([0.04, 0.30, 0.01, 0.02])
    assert adjusted == pytest.approx([0.08, 0.30, 0.04, 0.06])
    # a later small p cannot fall below an earlier adjusted one; values cap at 1; NaN stays out of K
    assert holm_adjust([0.01, 0.011, 0.9, np.nan]) == pytest.approx([0.03, 0.03, 0.9, np.nan], nan_ok=True)
    assert holm_adjust([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    assert holm_adjust([]).shape == (0,)
