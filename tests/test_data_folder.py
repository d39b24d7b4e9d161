"""Image-folder loader: hash split, centre crop, corrupt files, cache reuse and worker pickling."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sr_data


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PRSR_DATA", raising=False)
    return tmp_path / "cache"


def expected_split(rel: str) -> str:
    """The documented rule, computed independently: sha1 bucket mod 100 -> 0-89 / 90-94 / 95-99."""
    b = int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 100
    return "train" if b < 90 else ("valid" if b < 95 else "test")


def make_folder(root: Path, n: int = 60) -> list[str]:
    """n small images (PNG, JPEG, a grey one, some in a sub-folder) -> their relative names, sorted."""
    rng = np.random.default_rng(1)
    names = []
    for j in range(n):
        rel = f"sub/img{j:03d}.jpg" if j % 5 == 0 else f"img{j:03d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shape = (30, 20) if j == 7 else (20, 26, 3)  # img007: grey, portrait
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / rel)
        names.append(rel)
    (root / "notes.txt").write_text("not an image, ignored")
    return sorted(names)


def test_hash_split_is_documented_rule_and_a_partition(tmp_path):
    root = tmp_path / "imgs"
    names = make_folder(root)
    by_split = {s: [n for n in names if expected_split(n) == s] for s in ("train", "valid", "test")}
    assert all(by_split.values()), "fixture must put files in every split"
    got = {s: list(sr_data.load_pairs("folder", s, root=root).ids) for s in by_split}
    assert got == by_split
    # determinism: adding files does not move the old ones
    extra = root / "zz_new.png"
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(extra)
    train_again = list(sr_data.load_pairs("folder", "train", root=root).ids)
    assert [n for n in train_again if n != "zz_new.png"] == by_split["train"]


def test_centre_crop_grey_to_rgb_and_lr(tmp_path):
    root = tmp_path / "imgs"
    names = make_folder(root)
    ds = sr_data.load_pairs("folder", "train", root=root)
    for i, rel in enumerate(ds.ids):
        img = np.asarray(Image.open(root / rel).convert("RGB"))
        h, w = img.shape[:2]
        s = min(h, w)
        crop = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        t = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None]
        assert np.array_equal(ds.hr[i], sr_data.to_uint8(sr_data.resize(sr_data.to_float(t), 32))[0].numpy())
    grey = list(ds.ids).index("img007.png")
    assert np.array_equal(ds.hr[grey, 0], ds.hr[grey, 1]) and np.array_equal(ds.hr[grey, 0], ds.hr[grey, 2])
    hr = torch.from_numpy(np.array(ds.hr))
    assert np.array_equal(ds.lr, sr_data.to_uint8(sr_data.downsample(sr_data.to_float(hr), 4)).numpy())
    assert len(names) == 60


def test_corrupt_files_skipped_with_count(tmp_path):
    root = tmp_path / "imgs"
    names = make_folder(root)
    train = [n for n in names if expected_split(n) == "train"]
    broken = train[:3]
    (root / broken[0]).write_bytes(b"garbage, not an image")
    data = (root / broken[1]).read_bytes()
    (root / broken[1]).write_bytes(data[: len(data) // 2])  # truncated
    (root / broken[2]).write_bytes(b"")  # empty
    with pytest.warns(UserWarning, match=rf"skipped 3 of {len(train)} .*{broken[0]}.*{broken[1]}.*{broken[2]}"):
        ds = sr_data.load_pairs("folder", "train", root=root)
    assert list(ds.ids) == train[3:]


def test_cache_reused_and_rebuilt_when_a_file_changes(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    names = make_folder(root)
    first = sr_data.load_pairs("folder", "train", root=root)
    calls = []
    real_decode = sr_data.folder.decode_image
    monkeypatch.setattr("sr_data.folder.decode_image", lambda p: calls.append(p) or real_decode(p))
    second = sr_data.load_pairs("folder", "train", root=root)
    assert calls == [] and second.cache_dir == first.cache_dir
    target = root / first.ids[0]
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(target)
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    third = sr_data.load_pairs("folder", "train", root=root)
    assert len(calls) == len(third) and third.cache_dir != first.cache_dir
    assert (third.hr[0] == 200).all()
    assert len(names) == 60


def test_pickles_without_copying_arrays(tmp_path):
    root = tmp_path / "imgs"
    make_folder(root)
    ds = sr_data.load_pairs("folder", "train", root=root)
    blob = pickle.dumps(ds)
    assert len(blob) < ds.hr.nbytes  # the arrays are re-opened, not shipped
    back = pickle.loads(blob)
    assert np.array_equal(back.hr, ds.hr) and list(back.ids) == list(ds.ids) and back[3]["id"] == ds[3]["id"]


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="needs a folder"):
        sr_data.load_pairs("folder", "train")
    with pytest.raises(FileNotFoundError, match="absent"):
        sr_data.load_pairs("folder", "train", root=tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files"):
        sr_data.load_pairs("folder", "train", root=tmp_path / "empty")
    one = tmp_path / "one"
    one.mkdir()
    name = next(f"a{j}.png" for j in range(1000) if expected_split(f"a{j}.png") == "train")
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(one / name)
    with pytest.raises(ValueError, match="test split .* is empty"):
        sr_data.load_pairs("folder", "test", root=one)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        sr_data.load_pairs("folder", "val", root=one)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        sr_data.load_pairs("mnist", "train")
