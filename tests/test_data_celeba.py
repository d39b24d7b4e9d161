"""CelebA loader on a small generated tree in the published layout (img_align_celeba/ + partition)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sr_data
from sr_data import folder as folder_module

PARTITION = {1: 0, 2: 0, 3: 1, 4: 2, 5: 0, 6: 0, 7: 1, 8: 2, 9: 0, 10: 0, 11: 2, 12: 0}  # image number -> label


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PRSR_DATA", raising=False)


def smooth_face(rng: np.random.Generator) -> np.ndarray:
    """A 218x178 RGB image with structure at every scale (noise + gradients), uint8 [218, 178, 3]."""
    y, x = np.mgrid[0:218, 0:178]
    base = np.stack([x / 177 * 255, y / 217 * 255, (x + y) % 64 * 4], -1)
    return np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)


def make_tree(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    for k in PARTITION:
        Image.fromarray(smooth_face(rng)).save(images / f"{k:06d}.jpg", quality=90)
    (root / "list_eval_partition.txt").write_text("".join(f"{k:06d}.jpg {v}\n" for k, v in PARTITION.items()))
    return root


def manual_hr(path: Path) -> np.ndarray:
    """The crop done by hand: rows 40..177, columns 20..157, then sr_data.resize to 32, uint8 [3, 32, 32]."""
    img = np.asarray(Image.open(path).convert("RGB"))
    crop = torch.from_numpy(img[40:178, 20:158].copy()).permute(2, 0, 1)[None]
    assert crop.shape == (1, 3, 138, 138)
    return sr_data.to_uint8(sr_data.resize(sr_data.to_float(crop), 32))[0].numpy()


def test_official_split_and_crop(tmp_path):
    root = make_tree(tmp_path / "celeba")
    sets = {s: sr_data.load_pairs("celeba", s, root=root) for s in ("train", "valid", "test")}
    for split, label in (("train", 0), ("valid", 1), ("test", 2)):
        assert list(sets[split].ids) == [f"{k:06d}.jpg" for k, v in PARTITION.items() if v == label]
    ds = sets["train"]
    assert ds.hr.shape == (7, 3, 32, 32) and ds.lr.shape == (7, 3, 8, 8) and ds.channels == 3
    for i, name in enumerate(ds.ids):
        assert np.array_equal(ds.hr[i], manual_hr(root / "img_align_celeba" / name))
    hr = torch.from_numpy(np.array(ds.hr))
    assert np.array_equal(ds.lr, sr_data.to_uint8(sr_data.downsample(sr_data.to_float(hr), 4)).numpy())
    # the crop matters: a centre crop of the full image would give a different HR image
    img = np.asarray(Image.open(root / "img_align_celeba" / ds.ids[0]).convert("RGB"))
    other = torch.from_numpy(img[40:178, 0:138].copy()).permute(2, 0, 1)[None]
    assert not np.array_equal(ds.hr[0], sr_data.to_uint8(sr_data.resize(sr_data.to_float(other), 32))[0].numpy())


def test_missing_and_corrupt_listed_images_are_skipped_with_warning(tmp_path):
    root = make_tree(tmp_path / "celeba")
    (root / "img_align_celeba" / "000002.jpg").unlink()
    data = (root / "img_align_celeba" / "000005.jpg").read_bytes()
    (root / "img_align_celeba" / "000005.jpg").write_bytes(data[: len(data) // 3])  # truncated JPEG
    with pytest.warns(UserWarning, match=r"skipped 2 of 7 .*000002\.jpg.*000005\.jpg"):
        ds = sr_data.load_pairs("celeba", "train", root=root)
    assert list(ds.ids) == ["000001.jpg", "000006.jpg", "000009.jpg", "000010.jpg", "000012.jpg"]

    # from the cache: no decode, but the skipped images are still reported
    def no_decode(_):
        raise AssertionError("decoded again")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sr_data.celeba.decode_image", no_decode)
        with pytest.warns(UserWarning, match=r"2 unreadable image"):
            again = sr_data.load_pairs("celeba", "train", root=root)
    assert np.array_equal(again.hr, ds.hr)


def test_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"img_align_celeba/000001.jpg.*list_eval_partition.txt"):
        sr_data.load_pairs("celeba", "train", root=tmp_path / "absent")
    root = make_tree(tmp_path / "celeba")
    part = root / "list_eval_partition.txt"
    lines = part.read_text().splitlines()
    lines[4] = "000005.jpg train"
    part.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"list_eval_partition.txt, line 5: .*000005.jpg train"):
        sr_data.load_pairs("celeba", "test", root=root)
    part.unlink()
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition.txt not found"):
        sr_data.load_pairs("celeba", "test", root=root)


def test_all_listed_images_unusable_is_an_error(tmp_path):
    root = make_tree(tmp_path / "celeba")
    for k, v in PARTITION.items():
        if v == 2:
            (root / "img_align_celeba" / f"{k:06d}.jpg").write_bytes(b"not a jpeg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"none of the 3 image"):
            sr_data.load_pairs("celeba", "test", root=root)


def test_wrong_size_image_is_skipped(tmp_path):
    root = make_tree(tmp_path / "celeba")
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(root / "img_align_celeba" / "000003.jpg")
    with pytest.warns(UserWarning, match=r"skipped 1 of 2 .*000003\.jpg.*smaller than the 138x138 crop"):
        ds = sr_data.load_pairs("celeba", "valid", root=root)
    assert list(ds.ids) == ["000007.jpg"]
    assert folder_module.decode_image is sr_data.celeba.decode_image  # one decoder for every dataset
