"""Weight averaging (EMA / Polyak) for evaluation and sampling, as PixelCNN++ evaluates and samples.

Train-config keys (`methods.<name>.train`; absent = off, evaluation uses the trained weights as before):

    ema_half_life   the average's half-life in optimiser steps (> 0), or null (off). decay = 0.5 ** (1 / h):
                    a step's weight in the average halves every h steps. PixelCNN++'s decay 0.9995 (runs of
                    ~10^5 steps) is h ~ 1,386; a 1,000-step run wants h of ~20-200 (measure it:
                    `bench/quality_search.py`). The initial weights' share after T steps is 0.5 ** (T / h).
    ema_start       updates before averaging begins (default 0): until then the average is a copy of the
                    weights, so a random initialisation does not linger in it.

Why a half-life and this small class rather than `torch.optim.swa_utils.AveragedModel`: a half-life in
steps says directly how far back a ~1,000-step run's average reaches; the class averages each parameter
right after the optimiser that owns it steps (an optimiser step post-hook, so every learned method gets it
through the one Trainer, a GAN's two optimisers included, without touching its `training_step`); and it
keeps one float copy per parameter with no deep copy of the module. Buffers (batch norm's running
statistics) are not averaged: the averaged weights run with the model's own buffers, as AveragedModel
does with its default `use_buffers=False`.

Checkpoint (sr_models/checkpoint.py): with EMA on, `model.safetensors` holds the AVERAGED weights
(metadata `weights=ema`), which is what `load_method`, `prsr eval` and sampling use; the trained weights
are kept in `model_raw.safetensors` (`weights=raw`); `state.pt` holds the trained weights (the run
continues from them) and the average (`ema`), so a resumed run continues both exactly.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Optional

import torch
from torch import nn

from .profile_schema import check_train_keys

KEYS = ("ema_half_life", "ema_start")


def enabled(cfg: Dict[str, Any]) -> bool:
    return cfg.get("ema_half_life") is not None


def decay_from_half_life(half_life: float) -> float:
    """Per-step decay d with d ** half_life = 1/2 (half-life in steps, > 0)."""
    return 0.5 ** (1.0 / float(half_life))


def check_cfg(cfg: Dict[str, Any], where: str = "train config") -> None:
    """Refuse out-of-range EMA keys in a train section `cfg`, naming the key and the allowed range."""
    check_train_keys(cfg, KEYS, where)


class EMA:
    """Exponential moving average of the parameters each optimiser updates.

    After the n-th step of optimiser k: shadow <- param if n <= start, else shadow + (1 - decay) (param - shadow).
    """

    def __init__(self, optimizers: Dict[str, torch.optim.Optimizer], half_life: float, start: int = 0):
        self.half_life = float(half_life)
        self.decay = decay_from_half_life(half_life)
        self.start = int(start)
        self.params: Dict[str, List[nn.Parameter]] = {
            name: [p for g in opt.param_groups for p in g["params"]] for name, opt in optimizers.items()
        }
        self.shadow: Dict[str, List[torch.Tensor]] = {
            name: [p.detach().clone() for p in ps] for name, ps in self.params.items()
        }
        self.updates = {name: 0 for name in optimizers}
        self.handles = [
            opt.register_step_post_hook(lambda o, a, k, name=name: self.update(name))
            for name, opt in optimizers.items()
        ]

    @torch.no_grad()
    def update(self, name: str) -> None:
        """Fold the current values of optimiser `name`'s parameters into the average (after its step)."""
        self.updates[name] += 1
        current = [p.detach() for p in self.params[name]]
        if not current:
            return
        if self.updates[name] <= self.start:
            torch._foreach_copy_(self.shadow[name], current)
        else:
            torch._foreach_lerp_(self.shadow[name], current, 1.0 - self.decay)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the block the parameters hold the averaged values; the trained ones come back afterwards."""
        pairs = [(p, s) for name in self.params for p, s in zip(self.params[name], self.shadow[name])]
        backup = [p.detach().clone() for p, _ in pairs]
        with torch.no_grad():
            for p, s in pairs:
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for (p, _), b in zip(pairs, backup):
                    p.copy_(b)

    def averaged_state_dict(self, module: nn.Module) -> Dict[str, torch.Tensor]:
        """`module.state_dict()` (copies) with the averaged parameters: load it into a plain model to use them."""
        with self.applied():
            return {k: v.detach().clone() for k, v in module.state_dict().items()}

    def state_dict(self) -> Dict[str, Any]:
        return {
            "half_life": self.half_life,
            "start": self.start,
            "updates": dict(self.updates),
            "shadow": {name: [s.clone() for s in ss] for name, ss in self.shadow.items()},
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if set(state["shadow"]) != set(self.shadow):
            raise ValueError(
                f"the saved average covers optimisers {sorted(state['shadow'])}, not {sorted(self.shadow)}"
            )
        for name, saved in state["shadow"].items():
            mine = self.shadow[name]
            if len(saved) != len(mine) or any(a.shape != b.shape for a, b in zip(saved, mine)):
                raise ValueError(f"the saved average of optimiser {name!r} does not fit its parameters")
            for s, v in zip(mine, saved):
                s.copy_(v.to(s.device, s.dtype))
        self.updates = {k: int(v) for k, v in state["updates"].items()}


def install(optimizers: Dict[str, torch.optim.Optimizer], cfg: Dict[str, Any]) -> Optional[EMA]:
    """An `EMA` hooked into `optimizers` when `cfg` has `ema_half_life`, else None (nothing changes)."""
    check_cfg(cfg)
    if not enabled(cfg):
        return None
    return EMA(optimizers, cfg["ema_half_life"], int(cfg.get("ema_start") or 0))
