"""The default fool-rate interval (`analysis.intervals`): its formula on constructed cases, and its coverage
at a small design where the earlier percentile bootstrap over raters fell far short of 95 %."""

import numpy as np
import pytest
from scipy import stats

from analysis.bootstrap import bootstrap_rates
from analysis.intervals import difference_test, jackknife_se, rate_interval
from analysis.simulation import simulate_counts


def test_equal_trials_reduce_to_the_t_interval_of_per_rater_rates():
    # with equal trials per rater the pooled rate is the mean of per-rater rates and the jackknife SE of a
    # mean is exactly s / sqrt(R), so the interval is a textbook t interval (here on the logit scale)
    fooled = np.array([1, 4, 2, 7, 0])
    trials = np.full(5, 10)
    x = fooled / trials
    rate, se, lo, hi = rate_interval(fooled, trials)
    assert rate == pytest.approx(0.28)
    assert se == pytest.approx(x.std(ddof=1) / np.sqrt(5))
    q = stats.t.ppf(0.975, 4)
    half = q * se / (0.28 * 0.72)
    assert lo == pytest.approx(1 / (1 + np.exp(-(np.log(0.28 / 0.72) - half))))
    assert hi == pytest.approx(1 / (1 + np.exp(-(np.log(0.28 / 0.72) + half))))
    assert rate - q * se < 0 < lo and hi - rate > rate - lo  # inside (0, 1), longer on the side away from 0


def test_difference_test_is_welch_on_per_rater_rates():
    fa, fb = np.array([1, 4, 2, 7, 0]), np.array([3, 5, 6, 9])
    ta, tb = np.full(5, 10), np.full(4, 10)
    ra, sa, *_ = rate_interval(fa, ta)
    rb, sb, *_ = rate_interval(fb, tb)
    lo, hi, p = difference_test(ra, sa, 5, rb, sb, 4)
    welch = stats.ttest_ind(fa / ta, fb / tb, equal_var=False)
    assert p == pytest.approx(welch.pvalue)
    ci = welch.confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((ci.low, ci.high))


def test_unequal_trials_jackknife_and_edge_cases():
    fooled, trials = np.array([2, 0, 3]), np.array([4, 2, 6])  # leave-one-out rates 3/8, 5/10, 2/6
    loo = np.array([3 / 8, 5 / 10, 2 / 6])
    assert jackknife_se(fooled, trials) == pytest.approx(np.sqrt(2 / 3 * np.sum((loo - loo.mean()) ** 2)))
    assert np.isnan(rate_interval(np.array([3]), np.array([5]))[1])  # one rater: no spread between raters
    rate, se, lo, hi = rate_interval(np.array([0, 0, 0]), np.array([5, 5, 5]))
    assert (rate, se, lo, hi) == (0.0, 0.0, 0.0, 0.0)  # all raters agree: no logit, a point
    assert difference_test(0.2, 0.0, 3, 0.0, 0.0, 3)[2] == 0.0


def test_covers_at_eight_raters_where_the_bootstrap_did_not():
    # 2,000 studies of 8 raters x 40 trials, rate 0.10, rater SD 1.0: coverage SE ~0.005
    rng = np.random.default_rng(3)
    sim = simulate_counts(2000, 0.1, n_raters=8, n_trials=40, n_images=1000, rater_sd=1.0, rng=rng)
    _, _, lo, hi = rate_interval(sim.fooled, sim.trials)
    boot = bootstrap_rates(sim.fooled, sim.trials, 400, rng)
    blo, bhi = np.quantile(boot, [0.025, 0.975], axis=1)
    assert 0.93 <= np.mean((lo <= 0.1) & (0.1 <= hi)) <= 0.965
    assert np.mean((blo <= 0.1) & (0.1 <= bhi)) < 0.9  # the old interval (0.86 here)
