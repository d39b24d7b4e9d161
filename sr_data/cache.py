"""The on-disk cache of decoded (lr, hr) pairs: decode once, memory-map ever after.

Layout (one folder per dataset, source root, split and source fingerprint)::

    $PRSR_CACHE (default <repo>/data/cache)/
        <name>/<root tag>/<split>-<fingerprint>/
            lr.npy   uint8 [N, C, 8, 8]
            hr.npy   uint8 [N, C, 32, 32]
            ids.npy  unicode [N]            stable image ids
            meta.json                        written last: its presence marks a complete entry

Every file is written under a temporary name and moved into place with `os.replace`, so a crash or a
concurrent writer never leaves a half-written array under the final name. The fingerprint hashes the
pipeline version and the source's file list with sizes and mtimes (or an lmdb's statistics), so
changing the source (or the way pairs are made) builds a new entry; older entries of the same
(name, root, split) are then removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from .paths import home

# Bump when the way pairs are made changes (crop, kernel, quantisation): old caches then rebuild.
PIPELINE_VERSION = 1

LR_SIZE = 8
HR_SIZE = 32
_META = "meta.json"


def cache_root() -> Path:
    """The cache folder: `$PRSR_CACHE`, else `data/cache` under `paths.home()` ($PRSR_HOME or the working
    directory; `data/` is git-ignored), never inside the installed package."""
    env = os.environ.get("PRSR_CACHE")
    if env:
        return Path(env).expanduser()
    return home() / "data" / "cache"


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def fingerprint(parts: Iterable[object]) -> str:
    """sha1 (hex) over the pipeline version and `parts` (each turned into text, one per line)."""
    h = hashlib.sha1(f"pipeline={PIPELINE_VERSION}\n".encode())
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()


def file_stat_parts(base: Path, names: Iterable[str]) -> list[str]:
    """`name|size|mtime_ns` for each file `base/name` (`name|missing` when absent).

    Plain string paths: this runs on every load (CelebA: 162k files), so it is kept cheap.
    """
    parts = []
    base = os.fspath(base)
    for name in names:
        try:
            st = os.stat(os.path.join(base, name))
            parts.append(f"{name}|{st.st_size}|{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{name}|missing")
    return parts


def entry_dir(name: str, root: Path | str, split: str, fp: str) -> Path:
    """Cache folder of one (dataset, source root, split, fingerprint)."""
    root = str(Path(root).resolve())
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(root).name) or "root"
    return cache_root() / name / f"{base}-{_sha1(root)[:8]}" / f"{split}-{fp[:16]}"


def read_entry(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict] | None:
    """(lr, hr, ids, meta) memory-mapped from a complete entry, or None when there is none."""
    meta_path = directory / _META
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        lr = np.load(directory / "lr.npy", mmap_mode="r")
        hr = np.load(directory / "hr.npy", mmap_mode="r")
        ids = np.load(directory / "ids.npy", mmap_mode="r")
    except (OSError, ValueError) as exc:
        warnings.warn(f"ignoring unreadable cache entry {directory} ({exc}); rebuilding it", stacklevel=3)
        return None
    n = meta.get("count")
    if not (len(lr) == len(hr) == len(ids) == n):
        warnings.warn(f"ignoring inconsistent cache entry {directory}; rebuilding it", stacklevel=3)
        return None
    return lr, hr, ids, meta


class PairWriter:
    """Fills a new cache entry row by row, then publishes it atomically.

    `capacity` is an upper bound on the number of pairs (e.g. the number of listed files); rows of
    skipped images are trimmed at `finish`. Arrays are written through memory maps, so a dataset larger
    than RAM (LSUN) never has to be held in memory.
    """

    def __init__(self, directory: Path, capacity: int, channels: int, id_width: int):
        if capacity < 1:
            raise ValueError(f"nothing to cache in {directory}: capacity {capacity}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.channels = channels
        self._tag = f".tmp-{os.getpid()}"
        self._tmp = {k: self.directory / f"{k}.npy{self._tag}" for k in ("lr", "hr", "ids")}
        self.lr = np.lib.format.open_memmap(self._tmp["lr"], "w+", np.uint8, (capacity, channels, LR_SIZE, LR_SIZE))
        self.hr = np.lib.format.open_memmap(self._tmp["hr"], "w+", np.uint8, (capacity, channels, HR_SIZE, HR_SIZE))
        self.ids = np.empty(capacity, dtype=f"<U{max(1, id_width)}")
        self.count = 0

    def add(self, lr: np.ndarray, hr: np.ndarray, ids: list[str]) -> None:
        """Append pairs: `lr` uint8 [b, C, 8, 8], `hr` uint8 [b, C, 32, 32], `ids` b strings."""
        b = len(ids)
        if b == 0:
            return
        if lr.shape != (b, self.channels, LR_SIZE, LR_SIZE) or hr.shape != (b, self.channels, HR_SIZE, HR_SIZE):
            raise ValueError(f"PairWriter.add: got lr {lr.shape} hr {hr.shape} for {b} ids")
        end = self.count + b
        self.lr[self.count : end] = lr
        self.hr[self.count : end] = hr
        self.ids[self.count : end] = ids
        self.count = end

    def finish(self, meta: dict) -> None:
        """Trim to the rows written, move the arrays into place, then write `meta.json` (the marker)."""
        n = self.count
        if n == 0:
            self.abort()
            raise ValueError(f"no usable images to cache in {self.directory}")
        for key, arr in (("lr", self.lr), ("hr", self.hr)):
            arr.flush()
            if n < len(arr):
                trimmed_path = self.directory / f"{key}.npy{self._tag}.trim"
                out = np.lib.format.open_memmap(trimmed_path, "w+", np.uint8, (n,) + arr.shape[1:])
                for start in range(0, n, 65536):  # chunked copy keeps memory flat for LSUN-size sets
                    out[start : start + 65536] = arr[start : min(n, start + 65536)]
                out.flush()
                del out
                os.replace(trimmed_path, self._tmp[key])
        del self.lr, self.hr
        with open(self._tmp["ids"], "wb") as f:
            np.save(f, self.ids[:n])
        for key, tmp in self._tmp.items():
            os.replace(tmp, self.directory / f"{key}.npy")
        meta = dict(meta, count=n, pipeline=PIPELINE_VERSION)
        meta_tmp = self.directory / f"{_META}{self._tag}"
        meta_tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
        os.replace(meta_tmp, self.directory / _META)
        _remove_stale_siblings(self.directory)

    def abort(self) -> None:
        """Remove the temporary files (after an error)."""
        for name in ("lr", "hr"):
            if hasattr(self, name):
                delattr(self, name)
        for tmp in self._tmp.values():
            tmp.unlink(missing_ok=True)
        try:
            self.directory.rmdir()  # only if empty
        except OSError:
            pass


def _remove_stale_siblings(directory: Path) -> None:
    """Delete entries of the same (dataset, root, split) with another fingerprint: the source changed."""
    split = directory.name.rsplit("-", 1)[0]
    for sibling in directory.parent.iterdir():
        if sibling != directory and sibling.is_dir() and sibling.name.rsplit("-", 1)[0] == split:
            if (sibling / _META).is_file():  # never touch an entry another process is still writing
                shutil.rmtree(sibling, ignore_errors=True)
