"""The machine observer's interval with several observer seeds includes their spread (small size)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from metrics.observer import machine_fool_rate, machine_fool_rate_seeds

TINY = dict(folds=2, widths=[4], steps=6, batch_size=8, n_boot=200, threads=1, progress=False)


def _pairs(n=40):
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (n, 1, 16, 16), dtype=np.uint8)
    fake = np.clip(real.astype(int) + rng.integers(-40, 41, real.shape), 0, 255).astype(np.uint8)
    return real, fake


def test_interval_includes_the_observer_seed_spread():
    real, fake = _pairs()
    got = machine_fool_rate_seeds(real, fake, seeds=[0, 1, 2], **TINY)
    singles = [machine_fool_rate(real, fake, seed=s, **TINY) for s in (0, 1, 2)]
    assert got["rates"] == [r["fooled"] for r in singles]  # the same observers as one at a time
    assert got["fooled"] == pytest.approx(np.mean(got["rates"]))
    assert got["sd_seed"] == pytest.approx(np.std(got["rates"], ddof=1)) and got["sd_seed"] > 0
    pair_se = math.sqrt(np.mean([r["se"] ** 2 for r in singles]))
    assert got["pair_se"] == pytest.approx(pair_se)
    assert got["se"] == pytest.approx(math.sqrt(pair_se**2 + got["sd_seed"] ** 2 / 3))
    assert got["se"] > pair_se  # wider than the pair bootstrap alone, by the seed spread
    seed_var = got["sd_seed"] ** 2 / 3  # Welch-Satterthwaite: the seed part has 2 degrees of freedom
    assert got["df"] == pytest.approx((seed_var + pair_se**2) ** 2 * 2 / seed_var**2)
    crit = scipy.stats.t.ppf(0.975, got["df"])
    lo, hi = got["fooled"] - crit * got["se"], got["fooled"] + crit * got["se"]
    assert got["ci_low"] == pytest.approx(max(0.0, lo), abs=1e-6)
    assert got["ci_high"] == pytest.approx(min(1.0, hi), abs=1e-6)


def test_seeds_must_be_distinct():
    real, fake = _pairs()
    with pytest.raises(ValueError, match="distinct seeds"):
        machine_fool_rate_seeds(real, fake, seeds=[1, 1], **TINY)
