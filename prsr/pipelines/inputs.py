"""`prsr inputs`: the evaluation subset's LR inputs as PNG files, for a method the toolkit did not train.

Writes `OUT/<image_id>.png` (ids holding '/' become sub-folders, e.g. `OUT/t10k/000485.png`; 8x8, mode L
for greyscale data, RGB otherwise; exactly the uint8 levels of `truth.npz`'s `lr`) and `OUT/manifest.json`
(ids in order, sizes, channels, dataset, profile, seed, the resize kernel, sha256 of the ids and of truth.npz).
The inputs come from `runs/<dataset>/predictions/truth.npz`; when it does not exist yet it is made exactly
as `prsr eval` makes it (same subset function, same file), so a later `prsr eval` reuses it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from prsr.pipelines.evaluate import EvalLayout, _file_digest, ensure_truth, evaluation_subset, load_truth
from sr_data.files import atomic_write_json
from sr_data.paths import runs_root
from sr_models.profiles import load_profile

_log = logging.getLogger(__name__)

RESIZE_KERNEL = (
    "sr_data.downsample(hr, 4): bicubic (a = -0.75) with antialiasing, torch.nn.functional."
    "interpolate(mode='bicubic', antialias=True), on float [0, 1], clamped, rounded to uint8"
)


def ids_digest(ids) -> str:
    """sha256 of the ids joined by newlines (the order matters)."""
    return hashlib.sha256("\n".join(str(i) for i in ids).encode("utf-8")).hexdigest()


def id_path(image_id: str, suffix: str = ".png") -> Path:
    """The file of an image id inside an inputs/outputs folder: `<image_id>.png`. Ids may hold '/'
    (e.g. Fashion-MNIST's `t10k/000485`), which become sub-folders; '..' or absolute ids are refused."""
    rel = Path(f"{image_id}{suffix}")
    if rel.is_absolute() or ".." in rel.parts or not str(image_id):
        raise ValueError(f"image id {image_id!r} cannot be a file name")
    return rel


def evaluation_truth(dataset: str, profile, runs_dir=None, data_root=None, seed: Optional[int] = None):
    """truth.npz of `runs_dir/dataset` for `profile` (loaded dict): read, or made as `prsr eval` makes it.

    An existing truth.npz for another subset than the profile's is an error (ValueError), not replaced:
    replacing it would move the predictions already made for it aside."""
    layout = EvalLayout(runs_root(runs_dir) / dataset)
    test, indices = evaluation_subset(dataset, profile, seed, data_root)
    want = np.asarray(test.ids)[indices].astype(str)
    if layout.truth.is_file():
        truth = load_truth(layout)
        if not np.array_equal(truth["ids"].astype(str), want):
            raise ValueError(
                f"{layout.truth} holds another evaluation subset ({len(truth['ids'])} images) than "
                f"profile {profile['name']!r} defines ({len(want)} images); use the profile it was "
                "made with or another --runs-dir"
            )
        return layout, truth
    return layout, ensure_truth(layout, test, indices)


def write_inputs(dataset: str, profile, out, runs_dir=None, data_root=None, seed: Optional[int] = None) -> Path:
    """Write the LR inputs + manifest.json to `out` (created; existing PNGs of the same ids are replaced,
    nothing else is touched). Returns the manifest path."""
    profile = load_profile(profile)
    layout, truth = evaluation_truth(dataset, profile, runs_dir, data_root, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lr, ids = truth["lr"], truth["ids"].astype(str)
    for arr, image_id in zip(lr, ids):
        path = out / id_path(image_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        hwc = np.ascontiguousarray(arr.transpose(1, 2, 0))
        img = Image.fromarray(hwc[:, :, 0], mode="L") if hwc.shape[2] == 1 else Image.fromarray(hwc, mode="RGB")
        img.save(path)
    manifest = {
        "dataset": dataset,
        "profile": profile["name"],
        "seed": profile["seed"] if seed is None else seed,
        "n_images": int(len(ids)),
        "ids": ids.tolist(),
        "ids_sha256": ids_digest(ids),
        "channels": int(lr.shape[1]),
        "mode": "L" if lr.shape[1] == 1 else "RGB",
        "lr_size": [int(lr.shape[2]), int(lr.shape[3])],
        "hr_size": [int(truth["hr"].shape[2]), int(truth["hr"].shape[3])],
        "scale": int(truth["hr"].shape[2] // lr.shape[2]),
        "resize_kernel": RESIZE_KERNEL,
        "truth": str(layout.truth.resolve()),
        "truth_sha256": _file_digest(layout.truth, "sha256"),
        "files": [str(id_path(i)) for i in ids],
        "outputs_expected": (
            "the same relative paths, size hr_size, same mode (L or RGB); then `prsr import NAME --from DIR`"
        ),
    }
    path = out / "manifest.json"
    atomic_write_json(path, manifest, sort_keys=False)
    _log.info("wrote %d inputs (%s, %dx%d) and %s", len(ids), manifest["mode"], lr.shape[2], lr.shape[3], path)
    return path
