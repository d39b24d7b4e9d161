"""Bicubic and nearest-neighbour baselines: bicubic is `sr_data.upsample`; the nearest-neighbour search
equals a brute-force int64 search, ties and near-ties included, in every code path."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import baselines
import sr_data
from baselines.base import SuperResolver
from baselines.bicubic import Bicubic
from baselines.nearest import NearestNeighbour


def _brute_force(train_lr: np.ndarray, queries_uint8: np.ndarray) -> np.ndarray:
    t = train_lr.reshape(len(train_lr), -1).astype(np.int64)
    q = queries_uint8.reshape(len(queries_uint8), -1).astype(np.int64)
    return np.array([((t - qi) ** 2).sum(1).argmin() for qi in q])  # argmin: first index on ties


def _pairs(lr: np.ndarray, seed: int = 0) -> types.SimpleNamespace:
    rng = np.random.default_rng(seed)
    n, c, h, w = lr.shape
    hr = rng.integers(0, 256, size=(n, c, 4 * h, 4 * w), dtype=np.uint8)
    return types.SimpleNamespace(lr=lr, hr=hr)


def _near_tie_set(channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bright queries (norms ~1e7, where float32 has no fractional bits) and training images within a few
    levels of them: many exact ties and distances differing by 1."""
    rng = np.random.default_rng(seed)
    queries = rng.integers(245, 251, size=(12, channels, 8, 8), dtype=np.uint8)
    base = np.repeat(queries, 40, axis=0).astype(np.int16)
    train = np.clip(base + rng.integers(-2, 3, size=base.shape), 0, 255).astype(np.uint8)
    train = np.concatenate([train, train[::7]])  # exact duplicates later in the set: the first must win
    rng.shuffle(train)
    return train, queries


def test_bicubic_is_sr_data_upsample():
    lr = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model = baselines.Bicubic()
    assert isinstance(model, SuperResolver) and model.name == "bicubic"
    assert torch.equal(model.predict(lr), sr_data.upsample(lr, 4))
    assert model.predict(lr).shape == (3, 3, 32, 32)
    assert isinstance(Bicubic.from_training_data(None), Bicubic)
    assert baselines.get_method("bicubic").load_class() is Bicubic
    assert baselines.get_method("nearest").load_class() is NearestNeighbour


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("cache_bytes", [1 << 30, 0], ids=["cached", "streamed"])
def test_nearest_equals_brute_force_with_ties(channels, cache_bytes):
    train, queries = _near_tie_set(channels, seed=channels)
    rng = np.random.default_rng(5)
    train = np.concatenate([train, rng.integers(0, 256, size=(300, channels, 8, 8), dtype=np.uint8)])
    pairs = _pairs(train)
    nn = NearestNeighbour(pairs, chunk_size=37, cache_bytes=cache_bytes, device="cpu")
    expected = _brute_force(train, queries)
    # the set really has ties: some query has several training images at its minimum distance
    d = ((train.reshape(len(train), -1).astype(np.int64)[None] - queries.reshape(12, 1, -1).astype(np.int64)) ** 2).sum(
        -1
    )
    assert ((d == d.min(1, keepdims=True)).sum(1) > 1).any()
    got = nn.neighbour_indices(sr_data.to_float(torch.from_numpy(queries)))
    assert got.dtype == torch.long and got.shape == (12,)
    np.testing.assert_array_equal(got.numpy(), expected)
    sr = nn.predict(sr_data.to_float(torch.from_numpy(queries)))
    assert sr.dtype == torch.float32 and sr.shape == (12, channels, 32, 32)
    assert torch.equal(sr, sr_data.to_float(torch.from_numpy(pairs.hr[expected])))


def test_nearest_float_queries_are_rounded_to_levels_first():
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, size=(500, 3, 8, 8), dtype=np.uint8)
    nn = NearestNeighbour(_pairs(train), chunk_size=128, device="cpu")
    q = torch.rand(20, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    expected = _brute_force(train, sr_data.to_uint8(q).numpy())
    np.testing.assert_array_equal(nn.neighbour_indices(q).numpy(), expected)
    # a query equal to a training image finds it
    assert nn.neighbour_indices(sr_data.to_float(torch.from_numpy(train[[123, 7]]))).tolist() == [123, 7]


def test_nearest_float64_path_for_large_lr_and_memmap(tmp_path):
    # 3x16x16 levels: 768 · 255² > 2^24, so float32 dot products would not be exact -> float64 path
    rng = np.random.default_rng(4)
    queries = rng.integers(240, 256, size=(6, 3, 16, 16), dtype=np.uint8)
    base = np.repeat(queries, 30, axis=0).astype(np.int16)
    train = np.clip(base + rng.integers(-1, 2, size=base.shape), 0, 255).astype(np.uint8)
    rng.shuffle(train)
    np.save(tmp_path / "lr.npy", train)
    np.save(tmp_path / "hr.npy", rng.integers(0, 256, size=(len(train), 3, 64, 64), dtype=np.uint8))
    pairs = types.SimpleNamespace(
        lr=np.load(tmp_path / "lr.npy", mmap_mode="r"), hr=np.load(tmp_path / "hr.npy", mmap_mode="r")
    )
    nn = NearestNeighbour(pairs, chunk_size=50, cache_bytes=0, device="cpu")
    assert nn._dtype == torch.float64
    q = sr_data.to_float(torch.from_numpy(queries))
    np.testing.assert_array_equal(nn.neighbour_indices(q).numpy(), _brute_force(train, queries))
    assert nn.predict(q).shape == (6, 3, 64, 64)


def test_nearest_rejects_bad_inputs():
    train = np.zeros((4, 3, 8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"lr must be uint8"):
        NearestNeighbour(types.SimpleNamespace(lr=train.astype(np.float32), hr=np.zeros((4, 3, 32, 32), np.uint8)))
    with pytest.raises(ValueError, match="as many LR as HR"):
        NearestNeighbour(types.SimpleNamespace(lr=train, hr=np.zeros((3, 3, 32, 32), np.uint8)))
    with pytest.raises(TypeError, match=r"\.lr uint8"):
        NearestNeighbour(object())
    nn = NearestNeighbour({"lr": train, "hr": np.zeros((4, 3, 32, 32), np.uint8)}, device="cpu")
    assert nn.name == "nearest" and len(nn) == 4
    with pytest.raises(ValueError, match=r"\(1, 8, 8\).*\(3, 8, 8\)"):
        nn.predict(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="float tensor"):
        nn.predict(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
