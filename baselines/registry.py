"""Every method the toolkit knows: one entry per method, nothing imported until it is used.

Adding a method = one module implementing `SuperResolver` (and, if learned, `TrainableMethod`) plus one
entry here. `rows` are the Table-1 rows the method yields, in table order.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class MethodSpec:
    name: str           # `--method` value and run-folder name
    target: str         # "module:Class"
    learned: bool       # trained by the Trainer (has a run folder) or built from the training data
    rows: Tuple[str, ...]

    def load_class(self):
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


METHODS = {
    spec.name: spec
    for spec in [
        MethodSpec("bicubic", "baselines.bicubic:Bicubic", False, ("bicubic",)),
        MethodSpec("nearest", "baselines.nearest:NearestNeighbour", False, ("nearest",)),
        MethodSpec("resnet_l2", "baselines.resnet_l2:ResNetL2", True, ("resnet_l2",)),
        MethodSpec("gan", "baselines.gan:GAN", True, ("gan",)),
        MethodSpec("pixel_ce", "baselines.pixel_ce:PixelCE", True, ("pixel_ce_mean", "pixel_ce_argmax")),
        MethodSpec(
            "pixel_recursive",
            "sr_models.pixel_recursive:PixelRecursiveSR",
            True,
            ("pixel_recursive_greedy", "pixel_recursive_t1.0", "pixel_recursive_t0.9", "pixel_recursive_t0.8"),
        ),
    ]
}

#: Table-1 row order (the paper's order; rows of methods that are not available are left out).
TABLE_ROWS = tuple(row for spec in METHODS.values() for row in spec.rows)


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
    raise ValueError(f"unknown Table-1 row {row!r}; known rows: {', '.join(TABLE_ROWS)}")


def load_method(run_dir, device=None):
    """The trained method of run folder `run_dir` (its class looked up here), in eval mode on `device`."""
    from sr_models.checkpoint import load_method as _load

    def resolve(name, config_path):
        if name not in METHODS:
            raise ValueError(f"run config {config_path} names method {name!r}, which is not in the registry "
                             f"({', '.join(METHODS)})")
        return METHODS[name].load_class()

    return _load(run_dir, resolve, device=device)
