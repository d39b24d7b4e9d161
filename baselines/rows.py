"""The Table-1 rows of the per-pixel cross-entropy model (`baselines.pixel_ce`): its two decodings.

Free of torch, so the method registry reads the names and labels from here and `PixelCE.decodings()` is
built from the same tuple (see `sr_models.rows`).
"""

from __future__ import annotations

from typing import Tuple

from sr_models.rows import Row

# `decode`: which of PixelCE's decoders yields the row
PIXEL_CE_ROWS: Tuple[Row, ...] = (
    Row("pixel_ce_mean", "Per-pixel CE (mean)", "CE mean", decode=(("mode", "mean"),)),
    Row("pixel_ce_argmax", "Per-pixel CE (argmax)", "CE argmax", decode=(("mode", "argmax"),)),
)
