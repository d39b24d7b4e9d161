"""Bicubic up-sampling: the simplest row of Table 1."""

from __future__ import annotations

import torch

from sr_data import upsample
from sr_models.interface import SuperResolver


class Bicubic(SuperResolver):
    """`predict(lr) = sr_data.upsample(lr, factor)`: the toolkit's one bicubic kernel, clamped to [0, 1]."""

    name = "bicubic"

    def __init__(self, factor: int = 4):
        if not isinstance(factor, int) or factor < 1:
            raise ValueError(f"Bicubic: factor must be a positive integer, got {factor!r}")
        self.factor = factor

    @classmethod
    def from_training_data(cls, train_pairs=None) -> "Bicubic":
        """Same signature as `NearestNeighbour.from_training_data`; bicubic needs no training data."""
        return cls()

    def predict(self, lr: torch.Tensor) -> torch.Tensor:
        """lr [B, C, h, w] float in [0, 1] -> [B, C, h*factor, w*factor] float in [0, 1]."""
        return upsample(lr, self.factor)
