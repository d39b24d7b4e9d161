"""The one eval-mode switch: `with eval_mode(module):` runs a block in eval mode and restores the mode.

Eval mode makes batch norm use its running statistics (validation, sampling, evaluation); the module's
own mode (train or eval) is restored afterwards, also when the block raises.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put `module` in eval mode (batch norm uses its running statistics) and restore its mode afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
