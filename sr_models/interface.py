"""The one interface every super-resolution method implements.

`SuperResolver.predict(lr) -> sr`: lr `[B, C, 8, 8]` float in [0, 1] -> sr `[B, C, 32, 32]` float in [0, 1].

A method may yield several rows of Table 1 (the pixel-recursive model: greedy and three temperatures;
the per-pixel CE model: mean and argmax). `decodings()` lists them as row name -> decoder, where a
decoder is `(lr, generator) -> sr`; evaluation calls every decoder once on the test subset.
Likelihood models also give `log_prob(lr, hr_uint8) -> [B]` nats, which fills Table 1's NLL column.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Dict, Optional

import torch

Decoder = Callable[[torch.Tensor, Optional[torch.Generator]], torch.Tensor]


class SuperResolver(ABC):
    """Base class: subclasses set `name` (the `--method` value) and implement `predict`."""

    name: str = "unnamed"
    #: True for models with an exact likelihood (then `log_prob` is implemented).
    has_likelihood: bool = False
    #: True for non-learned methods built from the training pairs: `cls(train_pairs)` (else `cls()`).
    needs_train_pairs: bool = False

    @abstractmethod
    def predict(self, lr: torch.Tensor) -> torch.Tensor:
        """lr [B, C, 8, 8] float in [0, 1] -> sr [B, C, 32, 32] float in [0, 1]."""

    def decodings(self) -> Dict[str, Decoder]:
        """Table-1 row name -> decoder `(lr, generator) -> sr`. Default: one row, `predict`."""
        return {self.name: lambda lr, generator=None: self.predict(lr)}

    def log_prob(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """log p(hr | lr) in nats, [B]; only for models with `has_likelihood`."""
        raise TypeError(f"method {self.name!r} has no likelihood")
