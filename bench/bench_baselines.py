"""Training throughput of the learned baselines (ResNet-L2, GAN, per-pixel CE) under a profile.

    .venv/bin/python bench/bench_baselines.py --profile quick --channels 1 --threads 2
    .venv/bin/python bench/bench_baselines.py --threads 1 --variants fp32 bf16     # bf16 autocast vs float32

For each method and variant (`fp32`; `bf16`: the steps under bf16 autocast, as the Trainer runs them with
`bf16: true` on a CPU with native bfloat16): the profile's model and batch size, random Fashion-MNIST-shaped
pairs, `--warmup` untimed steps, then the median of `--repeats` timed steps of `training_step` (forward,
backward, optimiser steps), each variant from the same initial weights. Prints images/s and the wall time the
profile's `steps` would take at that rate (training only: validation, grids and checkpoints come on top), and
with two variants the fp32/bf16 step-time ratio measured in this run. On a machine shared with other jobs the
wall rate is meaningless; "images per CPU-second" (process CPU time) is what this process would get from
one idle core.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch

from baselines.registry import get_method
from sr_data import downsample, to_float, to_uint8
from sr_models.profiles import load_profile, method_config


class _Ctx:
    step = 0

    def __init__(self, bf16: bool):
        self.bf16 = bf16

    def ddp(self, module):
        return module

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else nullcontext()


def _batch(n: int, channels: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    hr = torch.randint(0, 256, (n, channels, 32, 32), dtype=torch.uint8, generator=g)
    lr = to_float(to_uint8(downsample(to_float(hr), 4)))
    return {"lr": lr, "hr": hr, "hr_float": to_float(hr)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--methods", nargs="+", default=["resnet_l2", "gan", "pixel_ce"])
    ap.add_argument("--variants", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    profile = load_profile(args.profile)
    print(f"profile {profile['name']}, C={args.channels}, {args.threads} threads")
    for name in args.methods:
        cls = get_method(name).load_class()
        cfg = method_config(profile, name)
        train = {"lr": 1e-3, **cfg.get("train", {})}
        bs, steps = int(train.get("batch_size", 32)), int(train.get("steps", 0))
        step_s = {}
        for variant in args.variants:
            torch.manual_seed(0)  # the same initial weights for every variant
            step, cpu_step = _time_steps(cls(channels=args.channels, **cfg.get("model", {})), train, args, variant)
            step_s[variant] = step
            print(
                f"{name:10s} {variant:4s} batch {bs:3d}: {bs / step:7.1f} images/s wall, "
                f"{bs / cpu_step:7.1f} images per CPU-second; {1e3 * step:7.1f} ms/step; "
                f"{steps} steps ~ {steps * step / 60:.1f} min at this rate"
            )
        if len(step_s) == 2:
            print(f"{name:10s} fp32/bf16 step time: {step_s['fp32'] / step_s['bf16']:.2f}x")


def _time_steps(method, train: dict, args, variant: str):
    """Median (wall s, CPU s) of one training step of `method` after `args.warmup` untimed ones."""
    method.train()
    opts = method.make_optimizers(train)
    batch, ctx = _batch(int(train.get("batch_size", 32)), args.channels, seed=1), _Ctx(variant == "bf16")
    times, cpu = [], []
    for i in range(args.warmup + args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        method.training_step(batch, opts, ctx)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu)


if __name__ == "__main__":
    main()
