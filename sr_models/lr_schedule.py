"""Learning-rate schedule over a run: linear warm-up, then constant, cosine or linear decay to a floor.

Train-config keys (`methods.<name>.train`; absent = off, the run's rate stays the profile's `lr`):

    lr_schedule     constant | cosine | linear (default constant)
    lr_warmup       steps of linear warm-up from lr/lr_warmup to lr (default 0: none)
    lr_min_factor   the floor as a fraction of lr, in [0, 1] (default 0.0); cosine and linear end there
    lr_decay_steps  the step at which the decay reaches the floor (default null: the run's `steps`)

For the step with 0-based index s (the s-th update), with W = lr_warmup, T = lr_decay_steps or steps,
f = lr_min_factor and p = clip((s - W) / (T - W), 0, 1):

    factor(s) = (s + 1) / W                          s < W
                1                                    constant
                f + (1 - f) * (1 + cos(pi p)) / 2    cosine
                f + (1 - f) * (1 - p)                linear

Every parameter group of every optimiser of the method gets `its base lr * factor(s)` (a GAN's two
rates keep their ratio). The factor is a function of the step alone and the base rates are the profile's,
so a resumed run gets exactly the rates the uninterrupted run would have (the step counts are saved in
`state.pt`). With `lr_decay_steps` null the horizon is the run's `steps`: resuming with more steps
stretches the rest of the decay; give `lr_decay_steps` to fix it (the budget curve of
`bench/quality_search.py` does).

The schedule is applied by an optimiser step pre-hook (`install`), so every learned method gets it
through the one Trainer without changing its `training_step`.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import torch

from .profile_schema import LR_SCHEDULES as SCHEDULES
from .profile_schema import check_train_keys, check_warmup_horizon

KEYS = ("lr_schedule", "lr_warmup", "lr_min_factor", "lr_decay_steps")


def enabled(cfg: Dict[str, Any]) -> bool:
    """True when `cfg` asks for anything but the constant rate (a schedule or a warm-up)."""
    return str(cfg.get("lr_schedule") or "constant") != "constant" or int(cfg.get("lr_warmup") or 0) > 0


def check_cfg(cfg: Dict[str, Any], where: str = "train config") -> None:
    """Refuse out-of-range schedule keys in a train section `cfg`, naming the key and the allowed range."""
    check_train_keys(cfg, KEYS, where)
    check_warmup_horizon(cfg, where)


def lr_factor(step: int, cfg: Dict[str, Any]) -> float:
    """The factor (0, 1] applied to the base rates for the update with 0-based index `step` (module docstring)."""
    warm = int(cfg.get("lr_warmup") or 0)
    if step < warm:
        return (step + 1) / warm
    kind = str(cfg.get("lr_schedule") or "constant")
    if kind == "constant":
        return 1.0
    floor = float(cfg.get("lr_min_factor") or 0.0)
    horizon = int(cfg.get("lr_decay_steps") or cfg["steps"])
    p = min(max((step - warm) / max(horizon - warm, 1), 0.0), 1.0)
    if kind == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p))
    if kind == "linear":
        return floor + (1.0 - floor) * (1.0 - p)
    raise ValueError(f"unknown lr_schedule {kind!r}; expected one of {', '.join(SCHEDULES)}")


class Schedule:
    """Sets each optimiser's rates before each of its steps; counts its steps (saved for resume)."""

    def __init__(self, optimizers: Dict[str, torch.optim.Optimizer], cfg: Dict[str, Any]):
        self.cfg = dict(cfg)
        self.optimizers = optimizers
        # The base rates as built from the profile, before any step or restore changes `lr`.
        self.base = {name: [float(g["lr"]) for g in opt.param_groups] for name, opt in optimizers.items()}
        self.steps = {name: 0 for name in optimizers}
        self.handles: List[Any] = []
        for name, opt in optimizers.items():
            self.handles.append(opt.register_step_pre_hook(lambda o, a, k, name=name: self._set(name)))
            self.handles.append(opt.register_step_post_hook(lambda o, a, k, name=name: self._count(name)))

    def _set(self, name: str) -> None:
        factor = lr_factor(self.steps[name], self.cfg)
        for group, base in zip(self.optimizers[name].param_groups, self.base[name]):
            group["lr"] = base * factor

    def _count(self, name: str) -> None:
        self.steps[name] += 1

    def current_lr(self) -> float:
        """The rate of the first group of the first optimiser at its next step (for the log)."""
        name = next(iter(self.optimizers))
        return self.base[name][0] * lr_factor(self.steps[name], self.cfg)

    def state_dict(self) -> Dict[str, Any]:
        return {"steps": dict(self.steps)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if set(state["steps"]) != set(self.steps):
            raise ValueError(f"the saved schedule counts optimisers {sorted(state['steps'])}, not {sorted(self.steps)}")
        self.steps = {k: int(v) for k, v in state["steps"].items()}


def install(optimizers: Dict[str, torch.optim.Optimizer], cfg: Dict[str, Any]) -> Optional[Schedule]:
    """A `Schedule` hooked into `optimizers` when `cfg` asks for one, else None (nothing changes)."""
    check_cfg(cfg)
    return Schedule(optimizers, cfg) if enabled(cfg) else None
