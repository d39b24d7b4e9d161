"""The two-corners dataset (paper Fig. 2): 50/50 quadrants, ink placement, input blind to the quadrant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import sr_data
from sr_data.corners import make_corners

N_ITEMS = 2000


def idx_bytes(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in (n, h, w)) + images.tobytes()


@pytest.fixture(scope="module")
def fmnist_root(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """Fashion-MNIST-like IDX files: blobs of ink with a zero border (as the real items have)."""
    root = tmp_path_factory.mktemp("fmnist")
    rng = np.random.default_rng(7)
    items = np.zeros((N_ITEMS, 28, 28), np.uint8)
    items[:, 3:25, 4:24] = rng.integers(30, 256, (N_ITEMS, 22, 20), dtype=np.uint8)
    (root / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(items))
    (root / "train-images-idx3-ubyte").write_bytes(idx_bytes(items[:1]))
    return root, items


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PRSR_DATA", raising=False)


def test_quadrants_balanced_and_deterministic(fmnist_root):
    root, _ = fmnist_root
    ds = make_corners("test", seed=0, root=root)
    assert len(ds) == N_ITEMS and ds.quadrant.dtype == np.int8 and set(np.unique(ds.quadrant)) == {0, 1}
    share = ds.quadrant.mean()
    sd = np.sqrt(0.25 / N_ITEMS)  # binomial standard deviation of the share under p = 1/2
    assert abs(share - 0.5) < 4 * sd, share
    # no long runs: the number of switches between consecutive items is binomial(N-1, 1/2) too
    switches = np.count_nonzero(np.diff(ds.quadrant))
    assert abs(switches / (N_ITEMS - 1) - 0.5) < 4 * sd
    again = make_corners("test", seed=0, root=root)
    assert np.array_equal(again.quadrant, ds.quadrant) and np.array_equal(again.hr, ds.hr)
    other = make_corners("test", seed=1, root=root)
    assert 0.4 < np.mean(other.quadrant != ds.quadrant) < 0.6
    first = make_corners("test", n=100, seed=0, root=root)
    assert np.array_equal(first.quadrant, ds.quadrant[:100]) and list(first.ids) == list(ds.ids[:100])


def test_ink_only_in_chosen_quadrant(fmnist_root):
    root, items = fmnist_root
    ds = make_corners("test", n=300, seed=3, root=root)
    assert ds.hr.shape == (300, 1, 32, 32) and ds.lr.shape == (300, 1, 8, 8) and ds.channels == 1
    expected16 = sr_data.to_uint8(sr_data.resize(sr_data.to_float(torch.from_numpy(items[:300, None].copy())), 16))
    for i in range(300):
        hr = ds.hr[i, 0]
        q = int(ds.quadrant[i])
        block = hr[:16, :16] if q == 0 else hr[16:, 16:]
        assert np.array_equal(block, expected16[i, 0].numpy())
        assert block.sum() > 0
        assert int(hr.astype(np.int64).sum()) == int(block.astype(np.int64).sum())  # nothing outside it
    item = ds[0]
    assert item["quadrant"] == int(ds.quadrant[0]) and item["hr"].dtype == torch.uint8


def test_input_is_centred_item_and_blind_to_quadrant(fmnist_root):
    root, items = fmnist_root
    a = make_corners("test", n=200, seed=0, root=root)
    b = make_corners("test", n=200, seed=5, root=root)
    differ = a.quadrant != b.quadrant
    assert differ.sum() > 50
    assert np.array_equal(a.lr, b.lr)  # same item, other corner: the same input
    assert not np.array_equal(a.hr[differ], b.hr[differ])
    # the input is the downsampled canvas with the 16x16 item at rows/cols 8..23
    item16 = sr_data.to_uint8(sr_data.resize(sr_data.to_float(torch.from_numpy(items[:200, None].copy())), 16))
    canvas = torch.zeros(200, 1, 32, 32, dtype=torch.uint8)
    canvas[:, :, 8:24, 8:24] = item16
    expected = sr_data.to_uint8(sr_data.downsample(sr_data.to_float(canvas), 4)).numpy()
    assert np.array_equal(a.lr, expected)
    assert a.lr[:, :, 2:6, 2:6].mean() > 4 * a.lr[:, :, [0, 7]].mean() + 1  # ink in the centre of the input


def test_bad_arguments(fmnist_root):
    root, _ = fmnist_root
    with pytest.raises(ValueError, match="n must be in 1..2000"):
        make_corners("test", n=2001, root=root)
    with pytest.raises(ValueError, match="unknown split"):
        make_corners("testing", root=root)
    with pytest.raises(ValueError, match="canvas must be one of"):
        make_corners("test", n=10, root=root, canvas=24)


def test_small_canvas_places_8x8_items_and_4x4_blind_inputs(fmnist_root):
    root, items = fmnist_root
    a = make_corners("test", n=200, seed=0, root=root, canvas=16)
    b = make_corners("test", n=200, seed=5, root=root, canvas=16)
    assert a.hr.shape == (200, 1, 16, 16) and a.lr.shape == (200, 1, 4, 4) and a.canvas == 16
    item8 = sr_data.to_uint8(sr_data.resize(sr_data.to_float(torch.from_numpy(items[:200, None].copy())), 8)).numpy()
    for i in range(200):
        q = int(a.quadrant[i])
        block = a.hr[i, 0, :8, :8] if q == 0 else a.hr[i, 0, 8:, 8:]
        assert np.array_equal(block, item8[i, 0])
        assert int(a.hr[i].astype(np.int64).sum()) == int(block.astype(np.int64).sum())
    assert np.array_equal(a.quadrant, make_corners("test", n=200, seed=0, root=root).quadrant)  # same draws as 32x32
    assert np.array_equal(a.lr, b.lr) and (a.quadrant != b.quadrant).sum() > 50  # input blind to the corner
    canvas = np.zeros((200, 1, 16, 16), np.uint8)
    canvas[:, :, 4:12, 4:12] = item8
    assert np.array_equal(
        a.lr, sr_data.to_uint8(sr_data.downsample(sr_data.to_float(torch.from_numpy(canvas)), 4)).numpy()
    )
