"""Table-1 rows: the `Row` record, and the rows of the pixel-recursive model (its four decodings).

A method that yields several rows declares them once, next to the method and free of torch, so that the
method registry (`baselines.registry`), which the study and the analysis read without loading any model,
takes the names and labels from the same tuple that the method's `decodings()` is built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple


@dataclass(frozen=True)
class Row:
    name: str  # Table-1 row and predictions/<name>.npz
    label: str  # long label (Table 1 .md/.tex)
    short: str  # short label (figure column headings, at most 16 characters)
    study: bool = False  # enters the human study (the paper's study rows)
    decode: Tuple[Tuple[str, Any], ...] = ()  # keyword arguments of the method's decoder for this row

    @property
    def decode_kwargs(self) -> Dict[str, Any]:
        return dict(self.decode)


def _pixrec(suffix: str, long: str, short: str, study: bool, **decode: Any) -> Row:
    return Row(f"pixel_recursive_{suffix}", f"Pixel-recursive, {long}", f"PixRec {short}", study, tuple(decode.items()))


# `PixelRecursiveSR.sample(lr, generator=..., **decode)` per row, in table order
PIXEL_RECURSIVE_ROWS: Tuple[Row, ...] = (
    _pixrec("greedy", "greedy", "greedy", False, greedy=True),
    _pixrec("t1.0", "τ = 1.0", "t=1.0", True, temperature=1.0),
    _pixrec("t0.9", "τ = 0.9", "t=0.9", True, temperature=0.9),
    _pixrec("t0.8", "τ = 0.8", "t=0.8", True, temperature=0.8),
)
