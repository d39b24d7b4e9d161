"""Tiny learned methods and in-memory data for the Trainer tests (not a test module).

- `TinyBN`: conv + batch norm + ReLU + 1x1 conv + pixel shuffle to 32x32, trained with MSE. Knobs for
  the tests: `nan_at` (0-based step whose loss is NaN), `crash_at` (step that raises `SimulatedKill`
  before doing anything, like a kill), `step_delay` (seconds slept per step, to kill a subprocess mid-way).
- `TinyGAN`: a generator fed lr and torch.randn noise (so resume must restore the torch RNG) and a
  discriminator, two optimisers, one D and one G step per iteration.
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace
from typing import Any, Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.registry import METHODS, MethodSpec
from sr_data import downsample, to_float, to_uint8
from sr_models import distributed as dist_utils
from sr_models.method import TrainableMethod
from sr_models.optim import build_optimizer
from sr_models.pixel_recursive import PixelRecursiveSR
from sr_models.trainer import Trainer


class SimulatedKill(Exception):
    """Raised by a tiny method at `crash_at`: the run stops mid-way as if killed."""


class TinyBN(TrainableMethod):
    name = "tiny_bn"

    def __init__(
        self,
        channels: int = 1,
        width: int = 4,
        nan_at: Optional[int] = None,
        crash_at: Optional[int] = None,
        step_delay: float = 0.0,
    ):
        super().__init__()
        self.channels, self.width = channels, width
        self.nan_at, self.crash_at, self.step_delay = nan_at, crash_at, step_delay
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, channels * 16, 1),
            nn.PixelShuffle(4),
        )
        self.losses = []  # every training loss returned, for the log tests

    def model_config(self) -> Dict[str, Any]:
        # nan_at / crash_at are faults injected by a test, not part of the model: a resumed run omits them.
        return {"channels": self.channels, "width": self.width, "step_delay": self.step_delay}

    def forward(self, lr):
        return self.net(lr)

    def loss_on(self, batch, net=None):
        out = (net or self.net)(batch["lr"])
        return F.mse_loss(out.float(), batch["hr_float"])

    @torch.no_grad()
    def predict(self, lr):
        was = self.training
        self.eval()
        try:
            return self.net(lr).clamp(0, 1)
        finally:
            self.train(was)

    def preview(self, lr, generator=None):
        return self.predict(lr)

    def make_optimizers(self, train_cfg):
        return {"model": build_optimizer(self.parameters(), train_cfg)}

    def training_step(self, batch, optimizers, ctx):
        if self.crash_at is not None and ctx.step == self.crash_at:
            raise SimulatedKill(f"killed at step {ctx.step}")
        if self.step_delay:
            time.sleep(self.step_delay)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with ctx.autocast():
            loss = self.loss_on(batch, ctx.ddp(self.net))
        if self.nan_at is not None and ctx.step >= self.nan_at:
            loss = loss * float("nan")
        loss.backward()
        opt.step()
        value = loss.item()
        self.losses.append(value)
        return {"loss": value}

    @torch.no_grad()
    def validation_step(self, batch):
        return {"mse": F.mse_loss(self.net(batch["lr"]), batch["hr_float"]).item()}


class TinyGAN(TrainableMethod):
    name = "tiny_gan"

    def __init__(self, channels: int = 1, crash_at: Optional[int] = None):
        super().__init__()
        self.channels, self.crash_at = channels, crash_at
        self.generator = nn.Sequential(
            nn.Conv2d(channels + 1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Conv2d(4, channels * 16, 1),
            nn.PixelShuffle(4),
            nn.Sigmoid(),
        )
        self.discriminator = nn.Sequential(
            nn.Conv2d(channels, 4, 4, stride=4), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 8 * 8, 1)
        )

    def model_config(self):
        return {"channels": self.channels}

    def _fake(self, lr, gen_module):
        z = torch.randn(lr.shape[0], 1, 8, 8, device=lr.device)  # global RNG on purpose
        return gen_module(torch.cat([lr, z], 1))

    @torch.no_grad()
    def predict(self, lr):
        return self._fake(lr, self.generator)

    def preview(self, lr, generator=None):
        return self.predict(lr)

    def make_optimizers(self, train_cfg):
        return {
            "generator": build_optimizer(self.generator.parameters(), train_cfg),
            "discriminator": build_optimizer(self.discriminator.parameters(), train_cfg, prefix="d_"),
        }

    def training_step(self, batch, optimizers, ctx):
        if self.crash_at is not None and ctx.step == self.crash_at:
            raise SimulatedKill(f"killed at step {ctx.step}")
        g, d = ctx.ddp(self.generator), ctx.ddp(self.discriminator)
        real = batch["hr_float"]
        b = real.shape[0]
        labels = torch.cat([torch.ones(b, 1), torch.zeros(b, 1)]).to(real.device)
        with torch.no_grad():  # a DDP forward without a backward must not track gradients
            fake = self._fake(batch["lr"], g)
        d_loss = F.binary_cross_entropy_with_logits(d(torch.cat([real, fake])), labels)  # one D forward per backward
        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers["discriminator"].step()
        fake = self._fake(batch["lr"], g)
        g_loss = F.binary_cross_entropy_with_logits(d(fake), torch.ones(b, 1, device=real.device)) + F.mse_loss(
            fake, real
        )
        optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        optimizers["generator"].step()
        return {"loss": g_loss.item(), "d_loss": d_loss.item()}

    @torch.no_grad()
    def validation_step(self, batch):
        return {"mse": F.mse_loss(self.predict(batch["lr"]), batch["hr_float"]).item()}


def make_pairs(n: int, channels: int = 1, seed: int = 0) -> SimpleNamespace:
    """`n` pairs: smooth-ish random uint8 hr [n, C, 32, 32] and lr = to_uint8(downsample(hr, 4))."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, 8, 8, generator=g)
    hr = to_uint8(F.interpolate(coarse, size=32, mode="bilinear", align_corners=False).clamp(0, 1))
    lr = to_uint8(downsample(to_float(hr), 4))
    return SimpleNamespace(lr=lr.numpy(), hr=hr.numpy(), ids=np.array([f"img{i}" for i in range(n)]), channels=channels)


def register(monkeypatch=None) -> None:
    """Put the tiny methods into the registry (via monkeypatch when given, so tests leave no trace)."""
    specs = {
        "tiny_bn": MethodSpec("tiny_bn", "trainer_tiny:TinyBN", True, ("tiny_bn",)),
        "tiny_gan": MethodSpec("tiny_gan", "trainer_tiny:TinyGAN", True, ("tiny_gan",)),
    }
    for k, v in specs.items():
        if monkeypatch is not None:
            monkeypatch.setitem(METHODS, k, v)
        else:
            METHODS[k] = v


def tiny_profile(train: Dict[str, Any], model: Optional[Dict[str, Any]] = None, train_limit=None) -> Dict[str, Any]:
    """A profile dict with sections for both tiny methods."""
    return {
        "name": "tiny",
        "seed": 3,
        "data": {"dataset": "tiny", "train_limit": train_limit},
        "eval": {"subset": 8, "batch_size": 8},
        "methods": {
            "tiny_bn": {"model": dict(model or {}), "train": dict(train)},
            "tiny_gan": {"model": {}, "train": dict(train)},
        },
    }


def build_method(kind: str, seed: int = 0) -> TrainableMethod:
    """The same initial weights in every process: 'tiny_bn' or 'pixel_recursive' (its smoke profile, C=1)."""
    torch.manual_seed(seed)
    if kind == "tiny_bn":
        return TinyBN(channels=1)

    return PixelRecursiveSR.from_profile("smoke", 1)


def ddp_worker(rank: int, world: int, port: int, jobs, seed: int) -> None:
    """One rank of gloo DDP runs (started by torch.multiprocessing.spawn). `jobs`: [(kind, run_dir, train_cfg)],
    each trained on `make_pairs(12, seed=1)` without validation; rank 0 writes each checkpoint."""

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    try:
        for kind, run_dir, train_cfg in jobs:
            Trainer(build_method(kind), make_pairs(12, seed=1), None, run_dir, train_cfg, seed=seed, device="cpu").fit()
        dist_utils.finish()
    finally:
        dist_utils.cleanup()


def fake_load_pairs(name: str, split: str, root=None) -> SimpleNamespace:
    """Stands in for `sr_data.load_pairs` in CLI tests: 24 training / 10 validation pairs, any dataset name."""
    return make_pairs(24 if split == "train" else 10, seed={"train": 1, "valid": 2}.get(split, 3))
