"""LSUN-bedroom loader on small generated lmdb exports (encoded JPEG/WebP values) and on a folder."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image

import sr_data


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PRSR_DATA", raising=False)


def encode(img: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, quality=85)
    return buf.getvalue()


def is_valid_key(key: bytes) -> bool:
    """The documented rule, computed independently: sha1 bucket mod 1000 below 10 (1 %)."""
    return int(hashlib.sha1(key).hexdigest(), 16) % 1000 < 10


def pick_keys(n_train: int, n_valid: int) -> tuple[list[bytes], list[bytes]]:
    """LSUN-like hex keys, chosen so that both the train and the valid part of the train db are non-empty."""
    train, valid = [], []
    i = 0
    while len(train) < n_train or len(valid) < n_valid:
        key = hashlib.sha1(f"bedroom{i}".encode()).hexdigest().encode()
        i += 1
        if is_valid_key(key) and len(valid) < n_valid:
            valid.append(key)
        elif not is_valid_key(key) and len(train) < n_train:
            train.append(key)
    return train, valid


def write_db(path: Path, items: dict[bytes, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for k, v in items.items():
            txn.put(k, v)
    env.close()


def manual_hr(value: bytes) -> np.ndarray:
    """Centre square crop + sr_data.resize, by hand, uint8 [3, 32, 32]."""
    img = np.asarray(Image.open(io.BytesIO(value)).convert("RGB"))
    h, w = img.shape[:2]
    s = min(h, w)
    crop = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    t = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None]
    return sr_data.to_uint8(sr_data.resize(sr_data.to_float(t), 32))[0].numpy()


@pytest.fixture
def lsun_root(tmp_path):
    rng = np.random.default_rng(0)
    train_keys, valid_keys = pick_keys(6, 2)
    values = {}
    for j, k in enumerate(train_keys + valid_keys):
        h, w = (64, 86) if j % 2 else (90, 60)  # landscape and portrait
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        values[k] = encode(img, "WEBP" if j % 3 else "JPEG")
    corrupt = train_keys[1]
    values[corrupt] = values[corrupt][:40]  # truncated value
    root = tmp_path / "lsun"
    root.mkdir()
    write_db(root / "bedroom_train_lmdb", values)
    val_values = {
        f"val{j:03d}".encode(): encode(rng.integers(0, 256, (70, 70, 3), dtype=np.uint8), "WEBP") for j in range(3)
    }
    write_db(root / "bedroom_val_lmdb", val_values)
    return root, train_keys, valid_keys, corrupt, values, val_values


def test_lmdb_splits_crop_and_corrupt_value(lsun_root):
    root, train_keys, valid_keys, corrupt, values, val_values = lsun_root
    with pytest.warns(UserWarning, match=rf"skipped 1 of 6 .*{corrupt.decode()}"):
        train = sr_data.load_pairs("lsun-bedroom", "train", root=root)
    expected_train = sorted(k for k in train_keys if k != corrupt)  # lmdb iterates keys in byte order
    assert list(train.ids) == [k.decode() for k in expected_train]
    assert train.hr.shape == (5, 3, 32, 32) and train.channels == 3
    for i, k in enumerate(expected_train):
        assert np.array_equal(train.hr[i], manual_hr(values[k]))
    hr = torch.from_numpy(np.array(train.hr))
    assert np.array_equal(train.lr, sr_data.to_uint8(sr_data.downsample(sr_data.to_float(hr), 4)).numpy())

    valid = sr_data.load_pairs("lsun-bedroom", "valid", root=root)
    assert list(valid.ids) == sorted(k.decode() for k in valid_keys)
    test = sr_data.load_pairs("lsun-bedroom", "test", root=root)
    assert list(test.ids) == ["val000", "val001", "val002"]
    for i, k in enumerate(sorted(val_values)):
        assert np.array_equal(test.hr[i], manual_hr(val_values[k]))


def test_lmdb_cache_reused(lsun_root, monkeypatch):
    root = lsun_root[0]
    first = sr_data.load_pairs("lsun-bedroom", "test", root=root)

    def no_decode(_):
        raise AssertionError("decoded again")

    monkeypatch.setattr("sr_data.lsun.decode_image", no_decode)
    second = sr_data.load_pairs("lsun-bedroom", "test", root=root)
    assert second.cache_dir == first.cache_dir and np.array_equal(second.hr, first.hr)


def test_missing_lmdb_and_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"bedroom_train_lmdb"):
        sr_data.load_pairs("lsun-bedroom", "train", root=tmp_path / "absent")
    root = tmp_path / "half"
    write_db(root / "bedroom_train_lmdb", {b"a": encode(np.zeros((8, 8, 3), np.uint8), "PNG")})
    with pytest.raises(FileNotFoundError, match=r"bedroom_val_lmdb"):
        sr_data.load_pairs("lsun-bedroom", "test", root=root)


def test_folder_of_lsun_images(tmp_path):
    """Without the lmdb folders the root is read as a folder of images (hash split, centre crop)."""
    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(3)
    for j in range(40):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / f"b{j:02d}.png")
    names = [f"b{j:02d}.png" for j in range(40)]
    train_names = [n for n in names if int(hashlib.sha1(n.encode()).hexdigest(), 16) % 100 < 90]
    ds = sr_data.load_pairs("lsun-bedroom", "train", root=root)
    assert list(ds.ids) == train_names and ds.name == "lsun-bedroom"
    assert np.array_equal(ds.hr[0], manual_hr((root / train_names[0]).read_bytes()))
