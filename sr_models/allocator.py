"""Keep freed memory in the process instead of handing it back to the kernel after every step (glibc only).

Why: a training step of the quick pixel-recursive model allocates and frees tens of MB per tensor (the
256-way logits are [32768, 256] float32). glibc's malloc returns such blocks to the kernel as soon as they are
freed (mmap/munmap and heap trimming), so every step faults the same pages in again. On a 2-core AMD EPYC VM
(AVX2, torch 2.13, 2 threads, load < 1.5) that cost 2.0 M page faults and 5 s of kernel time per 10 steps:
1.07 s per step, 0.77 s with the heap kept (`bench/train.py --allocator both`). Raising glibc's trim
threshold and top pad (`mallopt`) keeps the freed heap for the next step; peak memory is unchanged, the
process just does not shrink while it runs.

Off with `PRSR_MALLOC_TUNING=0`; a no-op where the C library is not glibc (macOS, musl) or where the user
already set glibc's `MALLOC_*_` variables.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from typing import Dict

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_TOP_PAD = -2
#: freed memory at the top of the heap kept before trimming, and extra heap taken per growth (bytes)
TRIM_THRESHOLD = 2**31 - 1
TOP_PAD = 2**30
_applied: Dict[str, int] = {}


def _glibc():
    """glibc's handle, or None on another C library."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def tune_allocator() -> Dict[str, int]:
    """Set glibc's trim threshold and top pad for this process, once; returns what was set ({} if nothing).

    Safe to call more than once; it must run before the large allocations it should speed up.
    """
    if _applied or os.environ.get("PRSR_MALLOC_TUNING", "1") == "0":
        return dict(_applied)
    if any(key.startswith("MALLOC_") and key.endswith("_") for key in os.environ):
        return {}  # the user tuned glibc by hand: keep theirs
    libc = _glibc()
    if libc is None:
        return {}
    settings = {"trim_threshold": (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), "top_pad": (_M_TOP_PAD, TOP_PAD)}
    for name, (param, value) in settings.items():
        if libc.mallopt(param, value) == 1:  # mallopt returns 1 on success
            _applied[name] = value
    return dict(_applied)


def allocator_record() -> Dict[str, int]:
    """The settings `tune_allocator` applied in this process ({} when none), for `environment_record`."""
    return dict(_applied)
