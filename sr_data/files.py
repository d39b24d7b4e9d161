"""Atomic file writes: the one home for "write under a temporary name, then rename".

A crash, a kill or a full disk leaves either the old file or the new one at `path`, never half of one:
the data go to a temporary file in the same folder (same file system, so `os.replace` is an atomic
rename on POSIX), are flushed to disk, and only then moved over `path`. The temporary name carries the
process id, so several processes (torchrun ranks, study replicas) never share one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], suffix: str = ".tmp") -> None:
    """Call `write(tmp_path)` for a temporary file next to `path`, then move it over `path`.

    `suffix` ends the temporary name; writers that append an extension (``np.savez`` adds ``.npz`` to a
    name without one) need theirs here. The folder is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 1, sort_keys: bool = True) -> None:
    """Write `obj` as JSON (with a final newline) to `path` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


def atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """`np.savez(path, **arrays)` atomically (uncompressed, as every `.npz` of the toolkit)."""
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")
