"""Fashion-MNIST loader: the real Debian files (if installed), IDX parsing errors, and the pair cache."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import sr_data
from prsr.cli import main
from sr_data import fashion_mnist

REAL = Path("/usr/share/datasets/fashion-mnist")
needs_real = pytest.mark.skipif(
    not (REAL / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (run `make data`)",
)


def idx_bytes(images: np.ndarray) -> bytes:
    """An IDX3 ubyte file for uint8 [N, H, W], written by hand from the format's definition."""
    n, h, w = images.shape
    return b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in (n, h, w)) + images.tobytes()


def write_fmnist(folder: Path, n_train: int, n_test: int, seed: int = 0, gz: bool = True) -> tuple:
    rng = np.random.default_rng(seed)
    train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, arr in (("train", train), ("t10k", test)):
        data = idx_bytes(arr)
        if gz:
            (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(data))
        else:
            (folder / f"{prefix}-images-idx3-ubyte").write_bytes(data)
    return train, test


@pytest.fixture(scope="module")
def real_splits(tmp_path_factory):
    """The three real splits, built once into a module-wide temporary cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRSR_CACHE", str(tmp_path_factory.mktemp("fmnist_cache")))
        mp.delenv("PRSR_DATA", raising=False)
        yield {s: sr_data.load_pairs("fashion-mnist", s) for s in ("train", "valid", "test")}


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PRSR_DATA", raising=False)
    return tmp_path / "cache"


@needs_real
def test_real_files_splits_shapes_and_padding(real_splits):
    sizes = {s: len(ds) for s, ds in real_splits.items()}
    assert sizes == {"train": 55000, "valid": 5000, "test": 10000}
    raw_train = np.frombuffer(gzip.decompress((REAL / "train-images-idx3-ubyte.gz").read_bytes()), np.uint8, offset=16)
    raw_train = raw_train.reshape(60000, 28, 28)
    raw_test = np.frombuffer(gzip.decompress((REAL / "t10k-images-idx3-ubyte.gz").read_bytes()), np.uint8, offset=16)
    raw_test = raw_test.reshape(10000, 28, 28)
    for split, ds in real_splits.items():
        assert ds.lr.dtype == np.uint8 and ds.hr.dtype == np.uint8
        assert ds.lr.shape == (len(ds), 1, 8, 8) and ds.hr.shape == (len(ds), 1, 32, 32)
        assert isinstance(ds.hr, np.memmap) and ds.channels == 1 and ds.split == split
        # 2-pixel zero frame, the 28x28 item unchanged inside it
        assert not ds.hr[:, :, :2].any() and not ds.hr[:, :, 30:].any()
        assert not ds.hr[:, :, :, :2].any() and not ds.hr[:, :, :, 30:].any()
    assert np.array_equal(real_splits["train"].hr[:, 0, 2:30, 2:30], raw_train[:55000])
    assert np.array_equal(real_splits["valid"].hr[:, 0, 2:30, 2:30], raw_train[55000:])
    assert np.array_equal(real_splits["test"].hr[:, 0, 2:30, 2:30], raw_test)
    assert list(real_splits["valid"].ids[:2]) == ["train/055000", "train/055001"]
    assert real_splits["test"].ids[-1] == "t10k/009999"


@needs_real
def test_real_lr_is_downsampled_quantised_hr(real_splits):
    ds = real_splits["test"]
    idx = np.arange(0, len(ds), 37)
    hr = torch.from_numpy(np.array(ds.hr[idx]))
    expected = sr_data.to_uint8(sr_data.downsample(sr_data.to_float(hr), 4)).numpy()
    assert np.array_equal(ds.lr[idx], expected)
    item = ds[5]
    assert item["lr"].dtype == torch.uint8 and item["hr"].shape == (1, 32, 32)
    assert torch.equal(item["hr"], torch.from_numpy(np.array(ds.hr[5]))) and item["id"] == "t10k/000005"
    # a non-trivial LR: the items are not blank
    assert ds.lr[idx].mean() > 20


def test_small_idx_gzipped_and_plain_agree(tmp_path, own_cache):
    train, test = write_fmnist(tmp_path / "gz", 5003, 7, gz=True)
    write_fmnist(tmp_path / "plain", 5003, 7, gz=False)
    a = sr_data.load_pairs("fashion-mnist", "train", root=tmp_path / "gz")
    b = sr_data.load_pairs("fashion-mnist", "train", root=tmp_path / "plain")
    assert len(a) == 3 and np.array_equal(a.hr, b.hr)
    assert np.array_equal(a.hr[:, 0, 2:30, 2:30], train[:3])
    valid = sr_data.load_pairs("fashion-mnist", "valid", root=tmp_path / "gz")
    assert len(valid) == 5000 and np.array_equal(valid.hr[:, 0, 2:30, 2:30], train[3:])
    t = sr_data.load_pairs("fashion-mnist", "test", root=tmp_path / "plain")
    assert np.array_equal(t.hr[:, 0, 2:30, 2:30], test)


def test_idx_wrong_magic_truncated_and_garbled(tmp_path, own_cache):
    imgs = np.zeros((4, 28, 28), np.uint8)
    bad_magic = tmp_path / "magic"
    (bad_magic).mkdir()
    data = bytearray(idx_bytes(imgs))
    data[2] = 0x0D  # float type code
    (bad_magic / "t10k-images-idx3-ubyte").write_bytes(bytes(data))
    (bad_magic / "train-images-idx3-ubyte").write_bytes(idx_bytes(imgs))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*00000d03.*expected 00000803"):
        sr_data.load_pairs("fashion-mnist", "test", root=bad_magic)

    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(imgs)[:-100])
    (truncated / "train-images-idx3-ubyte").write_bytes(idx_bytes(imgs))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*truncated"):
        sr_data.load_pairs("fashion-mnist", "test", root=truncated)

    garbled = tmp_path / "garbled"
    garbled.mkdir()
    gz = bytearray(gzip.compress(idx_bytes(imgs)))
    (garbled / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(gz[: len(gz) // 2]))  # cut gzip stream
    (garbled / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(imgs)))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz"):
        sr_data.load_pairs("fashion-mnist", "test", root=garbled)
    # nothing half-written is left in the cache after the failures
    assert not list(own_cache.rglob("*.npy")) and not list(own_cache.rglob("*tmp*"))


def test_missing_folder_says_how_to_fix(tmp_path, own_cache):
    with pytest.raises(FileNotFoundError, match=r"nowhere.*make data.*PRSR_DATA"):
        sr_data.load_pairs("fashion-mnist", "train", root=tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    write_fmnist(tmp_path / "half", 5001, 2)
    os.remove(tmp_path / "half" / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte.gz.*make data"):
        sr_data.load_pairs("fashion-mnist", "test", root=tmp_path / "half")


def test_prsr_data_env_root(tmp_path, own_cache, monkeypatch):
    _, test = write_fmnist(tmp_path / "src", 5001, 9)
    monkeypatch.setenv("PRSR_DATA", str(tmp_path / "src"))
    ds = sr_data.load_pairs("fashion-mnist", "test")
    assert np.array_equal(ds.hr[:, 0, 2:30, 2:30], test)
    assert str(own_cache) in str(ds.cache_dir)


def test_cache_reused_then_invalidated(tmp_path, own_cache, monkeypatch):
    root = tmp_path / "src"
    write_fmnist(root, 5001, 9, seed=1)
    first = sr_data.load_pairs("fashion-mnist", "test", root=root)
    files = sorted(p.name for p in first.cache_dir.iterdir())
    assert files == ["hr.npy", "ids.npy", "lr.npy", "meta.json"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in first.cache_dir.iterdir()}

    calls = []
    real_read = fashion_mnist.read_idx_images
    monkeypatch.setattr(fashion_mnist, "read_idx_images", lambda p: calls.append(p) or real_read(p))
    second = sr_data.load_pairs("fashion-mnist", "test", root=root)
    assert calls == [] and second.cache_dir == first.cache_dir
    assert {p.name: p.stat().st_mtime_ns for p in second.cache_dir.iterdir()} == mtimes
    assert np.array_equal(second.hr, first.hr)

    # change the source: a new entry is built (one decode) and the stale one is removed
    _, new_test = write_fmnist(root, 5001, 9, seed=2)  # same sizes: only the mtime tells
    test_file = root / "t10k-images-idx3-ubyte.gz"
    os.utime(test_file, ns=(test_file.stat().st_atime_ns, test_file.stat().st_mtime_ns + 2 * 10**9))
    third = sr_data.load_pairs("fashion-mnist", "test", root=root)
    assert len(calls) == 1 and third.cache_dir != first.cache_dir
    assert np.array_equal(third.hr[:, 0, 2:30, 2:30], new_test)
    assert not first.cache_dir.exists()


def test_prsr_data_command(tmp_path, own_cache, capsys):

    write_fmnist(tmp_path / "src", 5004, 6)
    assert (
        main(["data", "--dataset", "fashion-mnist", "--data-root", str(tmp_path / "src"), "--splits", "train,test"])
        == 0
    )
    out = capsys.readouterr().out
    assert str(own_cache) in out
    assert "train          4 pairs" in out and "test           6 pairs" in out and "valid" not in out
    assert len(list(own_cache.rglob("meta.json"))) == 2
    assert (
        main(["data", "--dataset", "fashion-mnist", "--data-root", str(tmp_path / "nowhere")]) == 1
    )  # bad data (was 2 before usage and data errors got their own codes)
    assert "make data" in capsys.readouterr().err
