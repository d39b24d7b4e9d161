"""Every method the toolkit knows: one record per method, nothing imported until it is used.

Adding a method = one module implementing `SuperResolver` (and, if learned, `TrainableMethod`) plus one
entry here; Table 1, the figures, the study, the fool-rate analysis and `prsr train --method all` read
the entry. A record holds:
- `name`: the `--method` value and run-folder name; `target`: "module:Class";
- `learned`: trained by the Trainer (has a run folder) or built from the training data;
- `rows`: the Table-1 rows the method yields, in table order, each a `Row` with its long label
  (Table 1) and short label (a figure's 96-px column heading) and whether it enters the study; a method
  with several rows declares them once beside itself (`sr_models.rows`, `baselines.rows`) and builds its
  `decodings()` from the same tuple;
- `train_order`: position in `prsr train --method all` (learned methods only; lower first).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from sr_models.rows import PIXEL_RECURSIVE_ROWS, Row  # Row is public here too (DESIGN.md)

from .rows import PIXEL_CE_ROWS


@dataclass(frozen=True)
class MethodSpec:
    name: str
    target: str
    learned: bool
    row_specs: Tuple[Row, ...]
    train_order: Optional[int] = None

    def __post_init__(self):
        # a bare row name stands for a row labelled by its own name, outside the study
        object.__setattr__(self, "row_specs", tuple(Row(r, r, r) if isinstance(r, str) else r for r in self.row_specs))

    @property
    def rows(self) -> Tuple[str, ...]:
        return tuple(r.name for r in self.row_specs)

    def load_class(self):
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


METHODS: Dict[str, MethodSpec] = {
    spec.name: spec
    for spec in [
        MethodSpec("bicubic", "baselines.bicubic:Bicubic", False, (Row("bicubic", "Bicubic", "bicubic"),)),
        MethodSpec("nearest", "baselines.nearest:NearestNeighbour", False, (Row("nearest", "Nearest N.", "nearest"),)),
        MethodSpec(
            "resnet_l2",
            "baselines.resnet_l2:ResNetL2",
            True,
            (Row("resnet_l2", "ResNet L2", "ResNet L2", study=True),),
            train_order=1,
        ),
        MethodSpec("gan", "baselines.gan:GAN", True, (Row("gan", "GAN", "GAN", study=True),), train_order=2),
        MethodSpec(
            "pixel_ce",
            "baselines.pixel_ce:PixelCE",
            True,
            PIXEL_CE_ROWS,
            train_order=3,
        ),
        MethodSpec(
            "pixel_recursive",
            "sr_models.pixel_recursive:PixelRecursiveSR",
            True,
            PIXEL_RECURSIVE_ROWS,
            train_order=0,  # the paper's subject first, then the learned baselines
        ),
    ]
}

#: Table-1 row order at import time (the paper's order); `table_rows()` reads the registry as it is now.
TABLE_ROWS = tuple(row for spec in METHODS.values() for row in spec.rows)


def all_rows() -> Tuple[Row, ...]:
    return tuple(r for spec in METHODS.values() for r in spec.row_specs)


def table_rows() -> Tuple[str, ...]:
    """Table-1 row names in table order (rows of methods that are not available are left out by the caller)."""
    return tuple(r.name for r in all_rows())


def row_labels() -> Dict[str, str]:
    """Table-1 row -> long label."""
    return {r.name: r.label for r in all_rows()}


def short_labels() -> Dict[str, str]:
    """Table-1 row -> short label (figure column headings)."""
    return {r.name: r.short for r in all_rows()}


def study_rows() -> Tuple[str, ...]:
    """The rows the human study shows, in table order."""
    return tuple(r.name for r in all_rows() if r.study)


def train_order() -> Tuple[str, ...]:
    """Learned methods in `prsr train --method all` order (`train_order`, then registry order)."""
    learned = [s for s in METHODS.values() if s.learned]
    return tuple(s.name for s in sorted(learned, key=lambda s: (s.train_order is None, s.train_order or 0)))


def get_method(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}") from None


def method_of_row(row: str) -> MethodSpec:
    """The method that yields Table-1 row `row` (e.g. 'pixel_recursive_t0.9' -> pixel_recursive)."""
    for spec in METHODS.values():
        if row in spec.rows:
            return spec
    raise ValueError(f"unknown Table-1 row {row!r}; known rows: {', '.join(table_rows())}")


def load_method(run_dir, device=None):
    """The trained method of run folder `run_dir` (its class looked up here), in eval mode on `device`."""
    # torch loads only here: the study and the analysis read the registry without it
    from sr_models.checkpoint import load_method as _load  # noqa: PLC0415

    def resolve(name, config_path):
        if name not in METHODS:
            raise ValueError(
                f"run config {config_path} names method {name!r}, which is not in the registry ({', '.join(METHODS)})"
            )
        return METHODS[name].load_class()

    return _load(run_dir, resolve, device=device)
