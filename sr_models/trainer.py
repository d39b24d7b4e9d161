"""The one Trainer of every learned method (pixel-recursive model, ResNet-L2, GAN, per-pixel CE).

The method owns its model, loss and optimiser steps (`TrainableMethod.training_step`); the Trainer owns
everything around them: data sampling, seeds, device, DDP, bf16 autocast, gradient clipping, logging,
validation, sample grids, checkpoints, resume and the NaN guard.

Train config (`methods.<name>.train` of a profile; missing keys take `TRAIN_DEFAULTS`, the resolved
dict is recorded in config.json and handed whole to `make_optimizers`):

    steps        iterations (global batches)                      batch_size   GLOBAL batch (split over ranks)
    optimizer    adam | rmsprop_tf | sgd (see sr_models.optim)    lr, betas, weight_decay, momentum, eps
    grad_clip    max global grad norm per optimiser, or null      bf16         bf16 autocast for training steps
    log_every    steps between log rows                           val_every    steps between validations
    val_images   first N valid images validated (0: none)         ckpt_every   steps between checkpoints
    grid_every   steps between sample grids                       grid_images  valid inputs in the grid (0: none)
    sync_bn      SyncBatchNorm under multi-GPU DDP (CUDA only)
    ema_half_life, ema_start     weight averaging for eval and sampling (sr_models/ema.py; absent = off)
    lr_schedule, lr_warmup, lr_min_factor, lr_decay_steps   the rate schedule (sr_models/lr_schedule.py; absent = off)

Validation, grids and checkpoints also happen after the last step. Methods may add their own keys.

Data: every step draws the GLOBAL batch's indices from a torch.Generator seeded with the run's seed
(epochs without replacement: a fresh permutation whenever the previous one is used up); rank r of W
takes the r-th contiguous chunk of batch_size / W. The generator's state is saved, so a resumed run
sees exactly the batches the killed run would have seen.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sr_data import to_float
from sr_data.files import atomic_write

from . import checkpoint as ckpt
from . import distributed as dist_utils
from . import ema as ema_mod
from . import lr_schedule
from .environment import environment_record, native_bf16
from .method import StepContext, TrainableMethod
from .modes import eval_mode
from .runlog import RunLog

_log = logging.getLogger(__name__)

TRAIN_DEFAULTS: Dict[str, Any] = {
    "steps": 1000,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1.0e-3,
    "betas": [0.9, 0.999],
    "weight_decay": 0.0,
    "grad_clip": None,
    "bf16": False,
    "log_every": 50,
    "val_every": 250,
    "val_images": 256,
    "ckpt_every": 250,
    "grid_every": 500,
    "grid_images": 8,
    "sync_bn": False,
}

_POSITIVE = ("steps", "batch_size", "log_every", "val_every", "ckpt_every", "grid_every")
_NON_NEGATIVE = ("val_images", "grid_images")


class NonFiniteLossError(RuntimeError):
    """A training step returned a NaN or infinite scalar; no checkpoint was written after it."""


def resolve_train_cfg(train_cfg: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """`TRAIN_DEFAULTS` updated with `train_cfg`, checked (clear errors naming the key)."""
    cfg = dict(TRAIN_DEFAULTS)
    cfg.update({k: v for k, v in (train_cfg or {}).items()})
    for key in _POSITIVE + _NON_NEGATIVE:
        value = cfg[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < (1 if key in _POSITIVE else 0)
        ):
            need = "a positive integer" if key in _POSITIVE else "an integer >= 0"
            raise ValueError(f"train config {key!r} must be {need}, got {value!r}")
        cfg[key] = int(value)
    if cfg["grad_clip"] is not None and not float(cfg["grad_clip"]) > 0:
        raise ValueError(f"train config 'grad_clip' must be > 0 or null, got {cfg['grad_clip']!r}")
    # training practices, off unless the profile names them (sr_models/ema.py, sr_models/lr_schedule.py)
    ema_mod.check_cfg(cfg)
    lr_schedule.check_cfg(cfg)
    return cfg


def make_batch(lr: np.ndarray, hr: np.ndarray, device: torch.device) -> Dict[str, torch.Tensor]:
    """uint8 numpy lr [B,C,8,8] / hr [B,C,32,32] -> {'lr' float [0,1], 'hr' uint8, 'hr_float' float [0,1]}
    on `device`."""
    # np.array copies: slices of a read-only memory map must not become tensors that alias it.
    lr_t = torch.from_numpy(np.array(lr, dtype=np.uint8)).to(device, non_blocking=True)
    hr_t = torch.from_numpy(np.array(hr, dtype=np.uint8)).to(device, non_blocking=True)
    return {"lr": to_float(lr_t), "hr": hr_t, "hr_float": to_float(hr_t)}


def check_pairs(data: Any, what: str) -> int:
    """Number of pairs in `data` (needs uint8 `.lr` [N,C,8,8] and `.hr` [N,C,32,32], or any square lr [N,C,s,s]
    with hr [N,C,4s,4s], e.g. the 4x4 -> 16x16 corners task); clear error otherwise."""
    lr, hr = getattr(data, "lr", None), getattr(data, "hr", None)
    if lr is None or hr is None:
        raise TypeError(f"{what} must have .lr and .hr arrays (see sr_data.load_pairs), got {type(data).__name__}")
    if lr.ndim != 4 or hr.ndim != 4 or lr.shape[2] != lr.shape[3] or tuple(hr.shape[2:]) != (4 * lr.shape[2],) * 2:
        raise ValueError(
            f"{what}: expected lr [N,C,8,8] and hr [N,C,32,32] (or lr [N,C,s,s] and hr [N,C,4s,4s]), "
            f"got {tuple(lr.shape)} and {tuple(hr.shape)}"
        )
    if len(lr) != len(hr) or lr.shape[1] != hr.shape[1]:
        raise ValueError(f"{what}: lr {tuple(lr.shape)} and hr {tuple(hr.shape)} do not match")
    if lr.dtype != np.uint8 or hr.dtype != np.uint8:
        raise TypeError(f"{what}: lr and hr must be uint8, got {lr.dtype} and {hr.dtype}")
    if len(lr) == 0:
        raise ValueError(f"{what} is empty")
    return len(lr)


class BatchSampler:
    """Global batch indices [batch_size] (int64), epoch by epoch without replacement, from a seeded generator."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.pending = torch.empty(0, dtype=torch.long)

    def next(self) -> torch.Tensor:
        while len(self.pending) < self.batch_size:
            self.pending = torch.cat([self.pending, torch.randperm(self.n, generator=self.generator)])
        out, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
        return out

    def state_dict(self) -> Dict[str, Any]:
        return {"generator": self.generator.get_state(), "pending": self.pending.clone(), "n": self.n}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if int(state["n"]) != self.n:
            raise ValueError(f"the checkpoint was trained on {int(state['n'])} training pairs, this run has {self.n}")
        self.generator.set_state(state["generator"])
        self.pending = state["pending"].clone()


class TrainContext(StepContext):
    """The `StepContext` of the Trainer: cached DDP wrappers and the bf16 autocast switch."""

    def __init__(self, info: dist_utils.DistInfo, bf16: bool = False, sync_bn: bool = False):
        self.info = info
        self.device = info.device
        # bf16 is a speed setting: where the hardware has no bf16, autocast would make training many times
        # slower, so such a device trains in float32 (config.json's environment records `native_bf16`).
        self.bf16 = bool(bf16) and native_bf16(self.device)
        if bf16 and not self.bf16 and info.is_main:
            _log.warning("bf16: %s has no native bfloat16; training in float32 instead", self.device)
        self.sync_bn = bool(sync_bn)
        self.step = 0
        self._wrapped: Dict[int, tuple] = {}

    def ddp(self, module: nn.Module) -> nn.Module:
        """`DistributedDataParallel(module)` (made once per module) when distributed, else `module`."""
        if not self.info.distributed:
            return module
        entry = self._wrapped.get(id(module))
        if entry is None:
            if self.sync_bn and self.device.type == "cuda":
                # Converts the BatchNorm children in place, so the method's own module uses them too.
                module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            device_ids = [self.device] if self.device.type == "cuda" else None
            entry = (module, DistributedDataParallel(module, device_ids=device_ids))
            self._wrapped[id(module)] = entry
        return entry[1]

    def autocast(self):
        if not self.bf16:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)


def _rng_fork(device: torch.device):
    """Validation and grids must not move the training RNG (resume exactness would depend on them)."""
    devices = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


def _grid_png(lr: torch.Tensor, preview: torch.Tensor, hr: torch.Tensor, path: Path) -> None:
    """One row per input: lr upsampled nearest x4 | preview | ground truth, 2-pixel white gaps, uint8 PNG."""

    def u8(x: torch.Tensor) -> np.ndarray:
        return (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()

    big_lr = lr.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1)
    tiles = [u8(big_lr), u8(preview), u8(hr)]
    b, c = lr.shape[:2]
    side = hr.shape[-1]  # 32 (16 for the small corners task)
    gap = 2
    canvas = np.full((c, b * side + (b + 1) * gap, 3 * side + 4 * gap), 255, np.uint8)
    for i in range(b):
        for j, t in enumerate(tiles):
            y, x = gap + i * (side + gap), gap + j * (side + gap)
            canvas[:, y : y + side, x : x + side] = t[i]
    img = Image.fromarray(canvas[0]) if c == 1 else Image.fromarray(canvas.transpose(1, 2, 0))
    atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


class Trainer:
    """Trains `method` on `train_data` for `train_cfg['steps']` iterations; writes the run folder `run_dir`.

    `train_data` / `valid_data`: objects with uint8 numpy `.lr` [N,C,8,8] and `.hr` [N,C,32,32]
    (`sr_data.load_pairs`); `valid_data` may be None (no validation, no grids). `meta` goes into
    config.json (profile, dataset, ...). `resume=True` continues from the checkpoint in `run_dir` (or
    starts fresh if there is none); without it an existing checkpoint is an error (`RunExistsError`).
    `device`: None = CUDA (this process's LOCAL_RANK) when present, else CPU.
    `extra_validation`: optional `fn(method) -> {name: float}` run at every validation after the method's own
    scalars (eval mode, the training RNG untouched), its scalars logged in the same `valid` row (the corners
    experiment scores mode purity there).
    """

    def __init__(
        self,
        method: TrainableMethod,
        train_data: Any,
        valid_data: Any,
        run_dir: str | Path,
        train_cfg: Optional[Dict[str, Any]],
        *,
        seed: int,
        meta: Optional[Dict[str, Any]] = None,
        resume: bool = False,
        device: Optional[torch.device | str] = None,
        extra_validation: Optional[Callable[[TrainableMethod], Dict[str, float]]] = None,
    ):
        if not isinstance(method, TrainableMethod):
            raise TypeError(f"Trainer needs a TrainableMethod, got {type(method).__name__}")
        self.method = method
        self.train_data, self.valid_data = train_data, valid_data
        self.n_train = check_pairs(train_data, "training data")
        self.n_valid = check_pairs(valid_data, "validation data") if valid_data is not None else 0
        self.run_dir = Path(run_dir)
        self.cfg = resolve_train_cfg(train_cfg)
        self.seed = int(seed)
        self.meta = dict(meta or {})
        self.resume = bool(resume)
        self.info = dist_utils.setup(device)
        self.device = self.info.device
        if self.cfg["batch_size"] % self.info.world_size:
            raise ValueError(
                f"train config batch_size={self.cfg['batch_size']} is not divisible by the "
                f"{self.info.world_size} processes of this run"
            )
        self.last_checkpoint_step: Optional[int] = None
        self.extra_validation = extra_validation
        # weight averaging and the rate schedule (sr_models/ema.py, lr_schedule.py); None = off
        self._ema: Optional[ema_mod.EMA] = None
        self._schedule: Optional[lr_schedule.Schedule] = None

    # -- pieces --------------------------------------------------------------------------------------
    def _config(self) -> Dict[str, Any]:
        config = {
            "method": self.method.name,
            "model_config": self.method.model_config(),
            "train": self.cfg,
            "seed": self.seed,
        }
        for k, v in self.meta.items():
            config.setdefault(k, v)
        config.update(
            {
                "world_size": self.info.world_size,
                "device": str(self.device),
                "git": ckpt.git_commit(),
                "versions": ckpt.library_versions(),
                "environment": environment_record(self.device),  # what decides the digits (threads, CPU kernels)
                "command": ckpt.command_line(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        return ckpt.jsonable(config)

    def _check_resume_config(self, stored: Dict[str, Any], current: Dict[str, Any]) -> None:
        """A resumed run must be the same run: same method, model, seed, data and train config (bar `steps`)."""
        keys = ["method", "model_config", "seed", "dataset", "profile"]
        diffs = [k for k in keys if stored.get(k) != current.get(k)]
        s_train = {k: v for k, v in stored.get("train", {}).items() if k != "steps"}
        c_train = {k: v for k, v in current["train"].items() if k != "steps"}
        diffs += [f"train.{k}" for k in sorted(set(s_train) | set(c_train)) if s_train.get(k) != c_train.get(k)]
        if diffs:
            detail = "; ".join(
                f"{k}: checkpoint {self._lookup(stored, k)!r} vs now {self._lookup(current, k)!r}" for k in diffs
            )
            raise ValueError(
                f"cannot resume {self.run_dir}: the run was started with a different configuration ({detail}); "
                f"use --fresh to start a new run"
            )

    @staticmethod
    def _lookup(config: Dict[str, Any], key: str) -> Any:
        if key.startswith("train."):
            return config.get("train", {}).get(key[6:])
        return config.get(key)

    def _install_grad_clip(self, optimizers: Dict[str, torch.optim.Optimizer]) -> list:
        """Clip each optimiser's gradients to `grad_clip` right before its step (after DDP's all-reduce)."""
        max_norm = self.cfg["grad_clip"]
        self._grad_norms: Dict[str, torch.Tensor] = {}
        handles = self._install_practices(optimizers)
        if max_norm is None:
            return handles
        for name, opt in optimizers.items():

            def hook(optimizer, args, kwargs, name=name):
                params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
                if params:
                    self._grad_norms[name] = torch.nn.utils.clip_grad_norm_(params, float(max_norm))

            handles.append(opt.register_step_pre_hook(hook))
        return handles

    def _rank_batch(self, idx: torch.Tensor) -> Dict[str, torch.Tensor]:
        per = self.cfg["batch_size"] // self.info.world_size
        mine = idx[self.info.rank * per : (self.info.rank + 1) * per].numpy()
        return make_batch(self.train_data.lr[mine], self.train_data.hr[mine], self.device)

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        """`method.validation_step` averaged (weighted by batch size) over the first `val_images` valid
        pairs, in eval mode (train mode restored afterwards). {} without validation data."""
        n = min(self.cfg["val_images"], self.n_valid)
        if n == 0:
            return {}
        bs = self.cfg["batch_size"]
        sums: Dict[str, float] = {}
        with eval_mode(self.method), _rng_fork(self.device):
            for start in range(0, n, bs):
                stop = min(start + bs, n)
                batch = make_batch(self.valid_data.lr[start:stop], self.valid_data.hr[start:stop], self.device)
                for k, v in self.method.validation_step(batch).items():
                    sums[k] = sums.get(k, 0.0) + float(v) * (stop - start)
            out = {k: v / n for k, v in sums.items()}
            if self.extra_validation is not None:
                out.update({k: float(v) for k, v in self.extra_validation(self.method).items()})
            out.update(self._validate_averaged())
        return out

    @torch.no_grad()
    def sample_grid(self, step: int) -> Optional[Path]:
        """`samples/step_XXXXXX.png` from the first `grid_images` valid inputs (same noise every time)."""
        n = min(self.cfg["grid_images"], self.n_valid)
        if n == 0:
            return None
        batch = make_batch(self.valid_data.lr[:n], self.valid_data.hr[:n], self.device)
        with eval_mode(self.method), _rng_fork(self.device):
            generator = torch.Generator(device=self.device).manual_seed(self.seed)
            preview_fn = getattr(self.method, "preview", None)
            if preview_fn is None:
                preview_fn = next(iter(self.method.decodings().values()))
            with self._ema.applied() if self._ema is not None else nullcontext():  # what eval will use
                preview = preview_fn(batch["lr"], generator)
        path = self.run_dir / "samples" / f"step_{step:06d}.png"
        _grid_png(batch["lr"], preview, batch["hr_float"], path)
        return path

    def _save(self, step: int, elapsed: float, optimizers, sampler: BatchSampler, last_val: Dict[str, float]) -> None:
        rngs = dist_utils.all_gather_object(ckpt.capture_rng(), self.info)  # collective: every rank calls it
        if not self.info.is_main:
            return
        if self._ema is None:
            ckpt.save_weights(self.method, self.run_dir, step, self.method.name)
        else:
            self._save_averaged_weights(step)
        state = {
            "format": ckpt.STATE_FORMAT,
            "step": step,
            "elapsed": elapsed,
            "model": self.method.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "sampler": sampler.state_dict(),
            "rng": rngs,
            "world_size": self.info.world_size,
            "last_val": last_val,
        }
        state.update(self._practices_state())
        ckpt.save_state(state, self.run_dir)  # written last: the commit point of a checkpoint
        self.last_checkpoint_step = step

    def _restore(self, optimizers, sampler: BatchSampler) -> tuple:
        state = ckpt.load_state(self.run_dir, map_location="cpu") if self.info.is_main else None
        state = dist_utils.broadcast_object(state, self.info)
        self.method.load_state_dict(state["model"])
        if set(state["optimizers"]) != set(optimizers):
            raise ValueError(
                f"{self.run_dir / ckpt.STATE} holds optimisers {sorted(state['optimizers'])}, "
                f"the method makes {sorted(optimizers)}"
            )
        for k, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        sampler.load_state_dict(state["sampler"])
        self._restore_practices(state)
        rngs = state["rng"]
        if len(rngs) == self.info.world_size:
            ckpt.restore_rng(rngs[self.info.rank])
        else:
            # Different process count: batches stay the same (global sampler); per-rank noise cannot.
            if self.info.is_main:
                tqdm.write(
                    f"note: {self.run_dir} was trained with {len(rngs)} processes, resuming with "
                    f"{self.info.world_size}; per-process random streams are re-seeded"
                )
            ckpt.seed_everything(self.seed + self.info.rank + 7919 * int(state["step"]))
        self.last_checkpoint_step = int(state["step"])
        return int(state["step"]), float(state["elapsed"]), dict(state.get("last_val") or {})

    # -- training practices: weight averaging, rate schedule (sr_models/ema.py, lr_schedule.py) -------
    def _install_practices(self, optimizers: Dict[str, torch.optim.Optimizer]) -> list:
        """Hook the EMA and the rate schedule into `optimizers` when the train config asks (else nothing);
        returns their hook handles (removed with the grad-clip hooks when `fit` ends)."""
        self._ema = ema_mod.install(optimizers, self.cfg)
        self._schedule = lr_schedule.install(optimizers, self.cfg)
        return [h for p in (self._ema, self._schedule) if p is not None for h in p.handles]

    def _practices_state(self) -> Dict[str, Any]:
        """The `state.pt` entries of the practices that are on: `ema` (the average), `lr_schedule` (step counts)."""
        out: Dict[str, Any] = {}
        if self._ema is not None:
            out["ema"] = self._ema.state_dict()
        if self._schedule is not None:
            out["lr_schedule"] = self._schedule.state_dict()
        return out

    def _restore_practices(self, state: Dict[str, Any]) -> None:
        for key, practice in (("ema", self._ema), ("lr_schedule", self._schedule)):
            if practice is None:
                continue
            if key not in state:
                raise ValueError(f"{self.run_dir / ckpt.STATE} holds no {key!r} state, but the train config enables it")
            practice.load_state_dict(state[key])

    def _save_averaged_weights(self, step: int) -> None:
        """model.safetensors <- the averaged weights (what evaluation and sampling load), model_raw.safetensors
        <- the trained ones; each file's metadata says which it holds."""
        name, half = self.method.name, f"{self._ema.half_life:g}"
        ckpt.save_weights_tagged(self.method, self.run_dir / ckpt.RAW_WEIGHTS, step, name, "raw")
        with self._ema.applied():
            ckpt.save_weights_tagged(self.method, self.run_dir / ckpt.WEIGHTS, step, name, "ema", ema_half_life=half)

    def _validate_averaged(self) -> Dict[str, float]:
        """With EMA on: the validation scalars of the averaged weights, prefixed `ema_` (else {})."""
        if self._ema is None or getattr(self, "_in_averaged", False):
            return {}
        self._in_averaged = True
        try:
            with self._ema.applied():
                return {f"ema_{k}": v for k, v in self.validate().items()}
        finally:
            self._in_averaged = False

    # -- the loop ------------------------------------------------------------------------------------
    def fit(self) -> Dict[str, float]:
        """Train to `steps`; returns the final validation scalars (every rank gets rank 0's).

        Stages: the method on its device with its optimisers -> config.json written (or checked on resume)
        -> the start state (fresh or restored) -> one `_train_step` per iteration, each followed by
        `_after_step` (log row, validation, sample grid, checkpoint)."""
        optimizers, handles = self._prepare_method()
        sampler = BatchSampler(self.n_train, self.cfg["batch_size"], self.seed)
        config = self._config()
        # Rank 0 decides and reads; the others get its decision and state (no shared file system needed).
        resuming = dist_utils.broadcast_object(self.resume and (self.run_dir / ckpt.STATE).exists(), self.info)
        if self.info.is_main:
            self._record_config(config, resuming)
        dist_utils.barrier(self.info)  # config checked before any rank loads
        start, elapsed, last_val = self._start_state(optimizers, sampler, resuming)
        loop = _LoopState(self, start, elapsed, last_val)
        ctx = TrainContext(self.info, bf16=self.cfg["bf16"], sync_bn=self.cfg["sync_bn"])
        try:
            if start >= self.cfg["steps"]:
                final = self.validate() if self.info.is_main else {}
                return dist_utils.broadcast_object(final or loop.last_val, self.info)
            for step in range(start, self.cfg["steps"]):
                ctx.step = step
                loop.add(*self._train_step(step, sampler, optimizers, ctx))
                self._after_step(step + 1, loop, optimizers, sampler)
            return dist_utils.broadcast_object(loop.last_val, self.info)
        finally:
            loop.close()
            for h in handles:
                h.remove()

    def _prepare_method(self) -> tuple:
        """The method on `self.device` in train mode; (its optimisers, the gradient-clipping hook handles)."""
        self.method.to(self.device)
        self.method.train()
        optimizers = self.method.make_optimizers(self.cfg)
        if not optimizers:
            raise ValueError(f"{type(self.method).__name__}.make_optimizers returned no optimiser")
        return optimizers, self._install_grad_clip(optimizers)

    def _record_config(self, config: Dict[str, Any], resuming: bool) -> None:
        """Rank 0: write `config.json` for a new run; on resume check the stored one against `config` and
        record the new step target / world size in its `resumed` list."""
        cfg, info = self.cfg, self.info
        ckpt.prepare_run_dir(self.run_dir, resume=self.resume, fresh=False)
        if not (resuming and (self.run_dir / ckpt.CONFIG).exists()):
            ckpt.write_json(self.run_dir / ckpt.CONFIG, config)
            return
        stored = ckpt.read_config(self.run_dir)
        self._check_resume_config(stored, config)
        if stored.get("train", {}).get("steps") != cfg["steps"] or stored.get("world_size") != info.world_size:
            stored["train"]["steps"] = cfg["steps"]
            stored.setdefault("resumed", []).append(
                {
                    "command": config["command"],
                    "world_size": info.world_size,
                    "steps": cfg["steps"],
                    "time": config["created"],
                }
            )
            ckpt.write_json(self.run_dir / ckpt.CONFIG, stored)

    def _start_state(self, optimizers, sampler: BatchSampler, resuming: bool) -> tuple:
        """(first step, seconds already trained, last validation scalars): restored from `state.pt` on
        resume, else (0, 0.0, {}) with this rank's seed set."""
        if resuming:
            return self._restore(optimizers, sampler)
        ckpt.seed_everything(self.seed + self.info.rank)
        return 0, 0.0, {}

    def _train_step(self, step: int, sampler: BatchSampler, optimizers, ctx: TrainContext) -> tuple:
        """One iteration: (the method's scalars, seconds getting the batch, seconds in `training_step`).
        A non-finite scalar on any rank stops every rank with `NonFiniteLossError`."""
        t0 = time.perf_counter()
        batch = self._rank_batch(sampler.next())
        t1 = time.perf_counter()
        scalars = self.method.training_step(batch, optimizers, ctx)
        t2 = time.perf_counter()
        bad = not all(math.isfinite(float(v)) for v in scalars.values())
        if dist_utils.any_true(bad, self.info):
            done = (
                f"the last good checkpoint (step {self.last_checkpoint_step}) in {self.run_dir} is untouched"
                if self.last_checkpoint_step is not None
                else f"no checkpoint had been written in {self.run_dir}"
            )
            shown = ", ".join(f"{k}={float(v):.6g}" for k, v in scalars.items())
            raise NonFiniteLossError(
                f"non-finite training loss at step {step + 1} (rank {self.info.rank}: {shown}); training stopped "
                f"and {done}. Lower the learning rate or set grad_clip, then continue with --resume."
            )
        return scalars, t1 - t0, t2 - t1

    def _after_step(self, done_steps: int, loop: "_LoopState", optimizers, sampler: BatchSampler) -> None:
        """What is due after step `done_steps` (all of it after the last step): a log row (means over the
        steps since the last row, averaged over ranks), validation, a sample grid, a checkpoint."""
        cfg, info = self.cfg, self.info
        now = loop.trained_seconds()
        last = done_steps == cfg["steps"]
        if done_steps % cfg["log_every"] == 0 or last:
            row = dist_utils.all_reduce_mean(loop.take_means(), info)
            row["images_per_s"] = cfg["batch_size"] / max(row["data_time"] + row["step_time"], 1e-12)
            for name, norm in self._grad_norms.items():
                row[f"grad_norm_{name}"] = float(norm)
            if loop.log is not None:
                loop.log.log(done_steps, "train", now, row)
        if info.is_main and (done_steps % cfg["val_every"] == 0 or last):
            val = self.validate()
            if val:
                loop.last_val = val
                loop.log.log(done_steps, "valid", now, val)
                loop.bar.write(f"step {done_steps}: " + ", ".join(f"{k}={v:.4g}" for k, v in val.items()))
        if info.is_main and self.valid_data is not None and (done_steps % cfg["grid_every"] == 0 or last):
            self.sample_grid(done_steps)
        if done_steps % cfg["ckpt_every"] == 0 or last:
            if loop.log is not None:
                loop.log.flush()
            self._save(done_steps, loop.trained_seconds(), optimizers, sampler, loop.last_val)


class _LoopState:
    """What `Trainer.fit` carries from step to step: the log (rank 0), the progress bar, the scalars
    summed since the last log row, the last validation scalars and the trained time."""

    def __init__(self, trainer: Trainer, start: int, elapsed: float, last_val: Dict[str, float]):
        info = trainer.info
        self.log = RunLog(trainer.run_dir, start_step=start) if info.is_main else None
        self.bar = tqdm(
            total=trainer.cfg["steps"],
            initial=start,
            desc=f"train {trainer.method.name}",
            disable=not info.is_main,
            dynamic_ncols=True,
            unit="step",
        )
        self.last_val = last_val
        self.elapsed = elapsed  # seconds trained by earlier sessions (resume)
        self.session_start = time.perf_counter()
        self.acc: Dict[str, float] = {}
        self.n_acc = 0

    def add(self, scalars: Dict[str, float], data_time: float, step_time: float) -> None:
        """Sum one step's scalars and timings; advance the bar."""
        for k, v in scalars.items():
            self.acc[k] = self.acc.get(k, 0.0) + float(v)
        self.acc["data_time"] = self.acc.get("data_time", 0.0) + data_time
        self.acc["step_time"] = self.acc.get("step_time", 0.0) + step_time
        self.n_acc += 1
        self.bar.update(1)
        self.bar.set_postfix_str(
            f"loss={float(scalars.get('loss', float('nan'))):.4g} data={1e3 * data_time:.0f}ms "
            f"step={1e3 * step_time:.0f}ms",
            refresh=False,
        )

    def take_means(self) -> Dict[str, float]:
        """Means of the summed scalars since the last call; starts a new sum."""
        means = {k: v / self.n_acc for k, v in self.acc.items()}
        self.acc, self.n_acc = {}, 0
        return means

    def trained_seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self.session_start

    def close(self) -> None:
        self.bar.close()
        if self.log is not None:
            self.log.close()
