"""What a learned method gives the shared Trainer.

A learned method is an `nn.Module` and a `SuperResolver`. It is built from a profile section
(`methods.<name>.model` kwargs) and trains itself one step at a time with optimisers it makes; the
Trainer owns everything else (data, seeds, devices, distributed set-up, logging, validation,
checkpoints, resume), so every learned method gets the same checkpoints, logs, resume and DDP.

Batches are dicts: `lr` float [B, C, 8, 8] in [0, 1], `hr` uint8 [B, C, 32, 32] (the 256-way targets),
`hr_float` float [B, C, 32, 32] in [0, 1], all on the training device.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Dict, Protocol

import torch
from torch import nn

from .interface import SuperResolver
from .profile_schema import check_model_keys
from .profiles import load_profile, method_config


class StepContext(Protocol):
    """Handed to `training_step` by the Trainer (`sr_models.trainer` implements it).

    - `ddp(module)`: the module wrapped for data-parallel training (DistributedDataParallel when
      torch.distributed is initialised, else the module itself). Call forwards through it so gradients
      are averaged over ranks.
    - `autocast()`: context manager, bf16 autocast when the profile enables it, else a no-op.
    - `step`: the global iteration number (0-based) being taken.
    """

    step: int

    def ddp(self, module: nn.Module) -> nn.Module: ...

    def autocast(self): ...


class TrainableMethod(nn.Module, SuperResolver):
    """Base class of learned methods. Subclasses define `name`, `__init__(channels, **model_cfg)` and the
    methods below."""

    def __init__(self):
        nn.Module.__init__(self)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_profile(cls, profile: str | Dict[str, Any], channels: int) -> "TrainableMethod":
        cfg = method_config(load_profile(profile), cls.name)
        model = cfg.get("model") or {}
        check_model_keys(cls, model, f"methods.{cls.name}.model.")
        return cls(channels=channels, **model)

    @abstractmethod
    def model_config(self) -> Dict[str, Any]:
        """JSON-able kwargs that rebuild this module: `type(self)(**self.model_config())`."""

    # -- training ----------------------------------------------------------------------------------
    @abstractmethod
    def make_optimizers(self, train_cfg: Dict[str, Any]) -> Dict[str, torch.optim.Optimizer]:
        """Named optimisers (e.g. {'model': ...} or {'generator': ..., 'discriminator': ...})."""

    @abstractmethod
    def training_step(
        self, batch: Dict[str, torch.Tensor], optimizers: Dict[str, torch.optim.Optimizer], ctx: StepContext
    ) -> Dict[str, float]:
        """One iteration: forward, backward, optimiser step(s). Returns the logged scalars (floats).
        The key 'loss' is the one checked for NaN/inf and used for progress display."""

    @abstractmethod
    def validation_step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, float]:
        """Validation scalars for one batch (means over the batch), e.g. {'nll_bpd': ..., 'mse': ...}."""
