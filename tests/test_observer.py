"""The machine observer (metrics.machine_fool_rate) on real Fashion-MNIST images: sanity levels a user can
read (other real images ~ 50 %, bicubic ~ 0 %, a half-and-half mixture ~ 25 %), determinism, bad input."""

import json

import numpy as np
import pytest
import torch

import metrics
import sr_data
from metrics.machine_eval import machine_rates, observer_settings, observer_workers
from metrics.observer import fold_split

N = 200  # pairs: folds of 40, ~5-10 s per call on 2 CPU cores
FAST = dict(steps=60, batch_size=32, folds=5, widths=(8, 16, 32), n_boot=1000, threads=1, progress=False)


@pytest.fixture(scope="module")
def images():
    test = sr_data.load_pairs("fashion-mnist", "test")
    hr = np.array(test.hr[: 2 * N])
    real, other = hr[:N], hr[N:]  # other = distinct real images: nothing but "real" to learn
    bicubic = sr_data.to_uint8(
        sr_data.upsample(sr_data.downsample(sr_data.to_float(torch.from_numpy(real)), 4), 4)
    ).numpy()
    return real, other, bicubic


def test_other_real_images_stay_near_chance(images):
    real, other, _ = images
    r = metrics.machine_fool_rate(real, other, seed=0, **FAST)
    assert r["n_pairs"] == N and sum(r["fold_sizes"]) == N
    assert r["ci_low"] <= 0.5 <= r["ci_high"] or abs(r["fooled"] - 0.5) < 0.07, r
    assert 0.03 < r["ci_high"] - r["ci_low"] < 0.2  # ~ 2 x 1.96 x sqrt(0.25 / 200) = 0.14


def test_bicubic_upsampling_fools_nobody(images):
    real, _, bicubic = images
    r = metrics.machine_fool_rate(real, bicubic, seed=0, **FAST)
    assert r["fooled"] <= 0.03 and r["ci_high"] <= 0.06, r
    assert max(r["train_loss"]) < 0.2  # learned, far below chance log 2 = 0.69


def test_half_bicubic_half_real_lands_in_between(images):
    # fake = bicubic for half of the pairs, another real image for the rest: expected 0.5 x 0 + 0.5 x 0.5 = 25 %
    real, other, bicubic = images
    mixed = other.copy()
    mixed[::2] = bicubic[::2]
    r = metrics.machine_fool_rate(real, mixed, seed=0, **FAST)
    assert 0.12 < r["fooled"] < 0.38 and r["ci_low"] > 0.0 and r["ci_high"] < 0.5, r


def test_identical_images_tie_at_exactly_one_half(images):
    real = images[0][:40]
    r = metrics.machine_fool_rate(real, torch.from_numpy(real.copy()), seed=0, **{**FAST, "steps": 2})
    assert r["ties"] == 40 and r["fooled"] == 0.5 and r["ci_low"] == r["ci_high"] == 0.5


def test_same_seed_same_dict_other_seed_other_split(images):
    real, other, _ = images
    kw = {**FAST, "steps": 20}
    threads_before = torch.get_num_threads()
    a = metrics.machine_fool_rate(real[:60], other[:60], seed=3, **kw)
    b = metrics.machine_fool_rate(real[:60], other[:60], seed=3, **kw)
    a.pop("seconds"), b.pop("seconds")
    assert a == b
    assert torch.get_num_threads() == threads_before  # the observer's thread setting does not leak
    assert not all(np.array_equal(x, y) for x, y in zip(fold_split(60, 5, 3), fold_split(60, 5, 4)))
    split = fold_split(60, 5, 3)
    assert sorted(np.concatenate(split).tolist()) == list(range(60))  # a partition: every pair judged once


def test_bad_input_is_a_clear_error(images):
    real = images[0][:20]
    with pytest.raises(TypeError, match="fake must be uint8"):
        metrics.machine_fool_rate(real, real.astype(np.float32))
    with pytest.raises(ValueError, match="same shape"):
        metrics.machine_fool_rate(real, real[:10])
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        metrics.machine_fool_rate(real[:, 0], real[:, 0])
    with pytest.raises(ValueError, match="too few"):
        metrics.machine_fool_rate(real[:8], real[:8], folds=5)
    with pytest.raises(ValueError, match="folds must be"):
        metrics.machine_fool_rate(real, real, folds=1)
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        metrics.machine_fool_rate(real.tolist(), real)
    with pytest.raises(ValueError, match="threads must be"):
        metrics.machine_fool_rate(real, real, threads=0)
    with pytest.raises(ValueError, match="unknown keys"):
        observer_settings({"stepz": 3})


def test_machine_rates_caches_by_content(images, tmp_path):
    real, other, bicubic = images
    cfg = dict(steps=3, batch_size=8, folds=2, widths=[4], n_boot=50, threads=1, workers=1)
    lines = []
    rows = {"bicubic": bicubic[:20], "other": other[:20]}
    first = machine_rates(real[:20], rows, cfg, seed=0, cache_path=tmp_path / "o.json", log=lines.append)
    assert list(first.method) == ["bicubic", "other"] and all("observer time" in line for line in lines)
    again = machine_rates(real[:20], rows, cfg, seed=0, cache_path=tmp_path / "o.json", log=lines.append)
    assert "cached" in lines[2] and "cached" in lines[3]
    assert first.drop(columns="seconds").equals(again.drop(columns="seconds"))
    changed = machine_rates(
        real[:20], {"other": other[20:40]}, cfg, seed=0, cache_path=tmp_path / "o.json", log=lines.append
    )
    assert "cached" not in lines[4] and changed.n_pairs[0] == 20


def test_observers_side_by_side_give_the_one_process_results(images, tmp_path):
    """Rows trained in a pool of processes (what a CPU evaluation does) == the same rows one after another in
    this process, bit for bit: rates, intervals and every held-out pair's scores."""
    real, other, bicubic = images
    cfg = dict(steps=20, batch_size=16, folds=2, widths=[4, 8], n_boot=50, threads=1)
    rows = {"bicubic": bicubic[:40], "other": other[:40], "mixed": np.concatenate([bicubic[:20], other[20:40]])}
    alone = machine_rates(real[:40], rows, cfg, seed=3, cache_path=tmp_path / "a.json", log=print, workers=1)
    lines = []
    pooled = machine_rates(real[:40], rows, cfg, seed=3, cache_path=tmp_path / "b.json", log=lines.append, workers=2)
    assert [line.split(":")[0] for line in lines] == [f"observer {name}" for name in rows]  # logged in row order
    assert alone.drop(columns="seconds").equals(pooled.drop(columns="seconds"))
    for name in rows:
        a, b = alone.attrs["results"][name], pooled.attrs["results"][name]
        assert a["score_real"] == b["score_real"] and a["score_fake"] == b["score_fake"], name
    assert set(json.loads((tmp_path / "b.json").read_text())) == set(rows)  # every pooled row cached


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_observer_workers_refuses_a_count_that_is_not_positive(images, bad):
    """0 would otherwise read as "unset" (one per free core) where a caller meant something else."""
    real, other, _ = images
    cfg = dict(steps=1, batch_size=8, folds=2, widths=[4], n_boot=10, threads=1)
    with pytest.raises(ValueError, match="observer workers must be a positive integer"):
        machine_rates(real[:10], {"other": other[:10]}, cfg, seed=0, workers=bad)
    with pytest.raises(ValueError, match=f"got {bad!r}"):
        observer_workers(dict(cfg, workers=bad))
    assert observer_workers(dict(cfg, workers=3)) == 3 and observer_workers(dict(cfg, threads=None)) == 1
