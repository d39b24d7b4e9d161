"""`prsr import NAME`: an outside method's outputs become `predictions/NAME.npz`, a Table-1 row.

Sources (one of):
- a folder of `<image_id>.png` (any format `sr_data.images` reads; ids with '/' in sub-folders, as
  `prsr inputs` writes them), one per id of truth.npz;
- an `.npz` with `sr` [N, C, 32, 32] and `ids` [N]: uint8 levels, or float in [0, 1] (rounded to the
  nearest level like every built-in method's output, `sr_data.to_uint8`);
- `--from-class module:Class`: a `SuperResolver` importable from the working directory or sys.path,
  built with no arguments and run with `predict(lr)` on truth.npz's inputs (float [B, C, 8, 8] in [0, 1]).

Everything is checked before anything is written (errors name the file or value):
- NAME matches `NAME_PATTERN`, is no built-in method or row and not 'truth', 'golden' or 'all';
- every id of truth.npz has an output (the missing ones are named: the first few and the count);
- each output is hr-sized (32x32) with truth's channels: greyscale data needs greyscale images and RGB
  data RGB images; the other kind is refused, not converted (a converted RGB output would be scored on
  something the method did not produce);
- files or ids that match no id of truth.npz are warned about (logging.warning), then left out.
The file is written to a temporary name and renamed (`os.replace`), so a failure leaves nothing. An
existing NAME.npz is refused unless `force`; then it is kept as `NAME.npz.old-<UTC time>`.
Provenance (source, time, sha256 of the source and of the array, truth's hashes) is the `meta` JSON.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

import sr_data
from baselines.registry import METHODS, table_rows
from prsr.pipelines.evaluate import EvalLayout, _file_digest, load_truth
from prsr.pipelines.imported import IMPORTED_KIND, NAME_PATTERN, RESERVED_NAMES
from prsr.pipelines.inputs import id_path, ids_digest
from sr_data.errors import DataError
from sr_data.files import atomic_write
from sr_data.images import is_image_file, read_image
from sr_data.paths import runs_root

_log = logging.getLogger(__name__)

SHOW = 5  # missing / bad files named in one message


def check_name(name: str) -> None:
    """ValueError (a usage error) unless `name` can be a new row."""
    if not NAME_PATTERN.match(name or ""):
        raise ValueError(
            f"method name {name!r} is not a safe identifier: expected {NAME_PATTERN.pattern} "
            "(lower-case letter first, then a-z 0-9 _ . -, at most 40 characters)"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"method name {name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
    if name in METHODS or name in table_rows():
        raise ValueError(f"method name {name!r} is a built-in method or Table-1 row; choose another name")


def _listing(names, total: int) -> str:
    names = list(names)
    shown = ", ".join(names[:SHOW])
    return shown + (f" (and {total - SHOW} more)" if total > SHOW else "")


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    return _file_digest(path, "sha256")


def _expected(truth) -> Tuple[int, int, int]:
    _, c, h, w = truth["hr"].shape
    return c, h, w


def _kind(c: int) -> str:
    return "greyscale" if c == 1 else "RGB"


def from_folder(folder: Path, truth) -> Tuple[np.ndarray, str]:
    """A folder of `<image_id>.<ext>` -> (sr uint8 [N,C,H,W] in truth's order, sha256 over the used files)."""
    c, h, w = _expected(truth)
    ids = truth["ids"].astype(str).tolist()
    files: Dict[str, Path] = {}
    unknown = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or p.is_dir():
            continue
        if not is_image_file(p):
            unknown.append(rel.as_posix())
            continue
        image_id = rel.with_suffix("").as_posix()  # `<image_id>.<ext>`, ids with '/' in sub-folders
        if image_id in files:
            raise DataError(f"two images in {folder} share the id {image_id!r}: {files[image_id]} and {p}")
        files[image_id] = p
    missing = [str(id_path(i)) for i in ids if i not in files]
    if missing:
        raise DataError(
            f"{folder} lacks {len(missing)} of the {len(ids)} images of truth.npz: {_listing(missing, len(missing))}"
        )
    extra = sorted(set(files) - set(ids))
    if extra or unknown:
        names = [files[e].relative_to(folder).as_posix() for e in extra] + unknown
        _log.warning(
            "%s: %d file(s) match no image id of truth.npz and are left out: %s",
            folder,
            len(names),
            _listing(names, len(names)),
        )
    out = np.empty((len(ids), c, h, w), dtype=np.uint8)
    digest = hashlib.sha256()
    bad = []
    for k, image_id in enumerate(ids):
        path = files[image_id]
        arr = read_image(path)  # uint8 [H, W, 1 or 3]; a corrupt file raises naming it
        if arr.shape != (h, w, c):
            bad.append(f"{path} is {arr.shape[1]}x{arr.shape[0]} {_kind(arr.shape[2])}")
            continue
        out[k] = arr.transpose(2, 0, 1)
        digest.update(f"{image_id}\n{_sha256_file(path)}\n".encode())
    if bad:
        raise DataError(
            f"{len(bad)} image(s) in {folder} are not {w}x{h} {_kind(c)} like the ground truth "
            f"(convert greyscale/RGB yourself; nothing is converted here): {_listing(bad, len(bad))}"
        )
    return out, digest.hexdigest()


def _quantise(sr: np.ndarray, where: str) -> np.ndarray:
    """uint8 kept; float in [0, 1] rounded to levels as the built-in methods are; anything else refused."""
    if sr.dtype == np.uint8:
        return sr
    if not np.issubdtype(sr.dtype, np.floating):
        raise DataError(f"{where}: `sr` must be uint8 levels or float in [0, 1], got dtype {sr.dtype}")
    if not np.isfinite(sr).all() or sr.min(initial=0.0) < 0.0 or sr.max(initial=0.0) > 1.0:
        raise DataError(
            f"{where}: float `sr` must be finite and in [0, 1], got range [{np.nanmin(sr):.4g}, {np.nanmax(sr):.4g}]"
        )
    return sr_data.to_uint8(torch.from_numpy(np.ascontiguousarray(sr, dtype=np.float32))).numpy()


def _arrange(sr: np.ndarray, src_ids, truth, where: str) -> np.ndarray:
    """Outputs with their own ids -> truth's order, after checking shape and ids."""
    c, h, w = _expected(truth)
    if sr.ndim != 4 or sr.shape[1:] != (c, h, w):
        raise DataError(
            f"{where}: `sr` must be [N, {c}, {h}, {w}] ({_kind(c)} like the ground truth), got {list(sr.shape)}"
        )
    src_ids = [str(i) for i in np.asarray(src_ids).reshape(-1).tolist()]
    if len(src_ids) != len(sr):
        raise DataError(f"{where}: `ids` has {len(src_ids)} entries for {len(sr)} images")
    if len(set(src_ids)) != len(src_ids):
        raise DataError(f"{where}: `ids` holds duplicates")
    pos = {i: k for k, i in enumerate(src_ids)}
    ids = truth["ids"].astype(str).tolist()
    missing = [i for i in ids if i not in pos]
    if missing:
        raise DataError(
            f"{where} lacks {len(missing)} of the {len(ids)} ids of truth.npz: {_listing(missing, len(missing))}"
        )
    extra = sorted(set(src_ids) - set(ids))
    if extra:
        _log.warning(
            "%s: %d id(s) are not in truth.npz and are left out: %s", where, len(extra), _listing(extra, len(extra))
        )
    return np.ascontiguousarray(_quantise(sr[[pos[i] for i in ids]], where))


def from_npz(path: Path, truth) -> Tuple[np.ndarray, str]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "sr" not in z.files or "ids" not in z.files:
                raise DataError(f"{path} must hold the arrays `sr` and `ids`; it holds {z.files}")
            sr, ids = z["sr"], z["ids"]
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read {path} as an .npz: {exc}") from exc
    return _arrange(sr, ids, truth, str(path)), _sha256_file(path)


def load_class(target: str):
    """'module:Class' -> the class, importable from the working directory (added to sys.path) or sys.path."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"--from-class must be 'module:Class', got {target!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {target!r} (from {cwd} or sys.path): {exc}") from exc
    if not callable(getattr(cls, "predict", None)):
        raise ValueError(f"{target} has no predict(lr) method (a SuperResolver is expected)")
    return cls


@torch.no_grad()
def from_class(target: str, truth, batch_size: int = 64) -> Tuple[np.ndarray, str]:
    """Run `Class().predict(lr)` on truth's inputs (float [B,C,8,8] in [0,1]) -> uint8 outputs."""
    cls = load_class(target)
    method = cls()
    if hasattr(method, "eval"):
        method.eval()
    c, h, w = _expected(truth)
    lr = truth["lr"]
    parts = []
    for start in range(0, len(lr), batch_size):
        x = sr_data.to_float(torch.from_numpy(np.ascontiguousarray(lr[start : start + batch_size])))
        sr = method.predict(x)
        if not isinstance(sr, torch.Tensor) or tuple(sr.shape) != (len(x), c, h, w):
            got = list(sr.shape) if hasattr(sr, "shape") else type(sr).__name__
            raise DataError(f"{target}.predict returned {got}, expected a tensor [{len(x)}, {c}, {h}, {w}]")
        parts.append(sr.detach().float().cpu().numpy())
    sr = _quantise(np.concatenate(parts), f"{target}.predict")
    module = sys.modules.get(target.partition(":")[0])
    src = getattr(module, "__file__", None)
    return sr, _sha256_file(Path(src)) if src else ""


def import_method(
    name: str,
    dataset: str,
    source: Optional[str] = None,
    from_class_target: Optional[str] = None,
    runs_dir=None,
    label: Optional[str] = None,
    force: bool = False,
) -> Path:
    """Validate and write `runs_dir/dataset/predictions/NAME.npz`; returns its path (see module docstring)."""
    check_name(name)
    if (source is None) == (from_class_target is None):
        raise ValueError("give exactly one of --from PATH and --from-class module:Class")
    if label is not None and not (0 < len(label) <= 60):
        raise ValueError(f"--label must be 1-60 characters, got {len(label)}")
    layout = EvalLayout(runs_root(runs_dir) / dataset)
    target = layout.prediction(name)
    if target.exists() and not force:
        raise ValueError(
            f"{target} exists; pass --force to replace it (the old file is kept as {target.name}.old-<time>)"
        )
    if not layout.truth.is_file():
        raise FileNotFoundError(
            f"{layout.truth} does not exist; run `prsr inputs` (or `prsr eval`) for {dataset} first"
        )
    truth = load_truth(layout)

    if from_class_target is not None:
        sr, source_sha = from_class(from_class_target, truth)
        kind, where = "class", from_class_target
    else:
        path = Path(source)
        if path.is_dir():
            (sr, source_sha), kind = from_folder(path, truth), "folder"
        elif path.is_file():
            (sr, source_sha), kind = from_npz(path, truth), "npz"
        else:
            raise FileNotFoundError(f"--from {path}: no such folder or .npz file")
        where = str(path.resolve())

    meta = {
        "kind": IMPORTED_KIND,
        "name": name,
        "label": label or name,
        "source_kind": kind,
        "source": where,
        "source_sha256": source_sha,
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sr_sha256": _sha256_bytes(sr.tobytes()),
        "shape": list(sr.shape),
        "truth_ids_sha256": ids_digest(truth["ids"].astype(str)),
        "truth_sha256": _sha256_file(layout.truth),
        "dataset": dataset,
    }

    def write(tmp: str) -> None:
        np.savez(tmp, sr=sr, ids=truth["ids"], meta=np.array(json.dumps(meta, sort_keys=True)))
        if target.exists():  # only with force: keep the old one (moved aside once the new file is complete)
            backup = target.with_name(f"{target.name}.old-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
            os.replace(target, backup)
            _log.warning("kept the previous %s as %s", target.name, backup)

    atomic_write(target, write, suffix=".npz")
    _log.info("imported %s (%s, %d images) from %s into %s", name, kind, len(sr), where, target)
    return target
