"""Training throughput of the learned baselines (ResNet-L2, GAN, per-pixel CE) under a profile.

    .venv/bin/python bench/bench_baselines.py --profile quick --channels 1 --threads 2

For each method: the profile's model and batch size, random Fashion-MNIST-shaped pairs, `--warmup`
untimed steps, then the median of `--repeats` timed steps of `training_step` (forward, backward,
optimiser steps). Prints images/s and the wall time the profile's `steps` would take at that rate
(training only: validation, grids and checkpoints come on top). On a machine shared with other jobs the
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

    def ddp(self, module):
        return module

    def autocast(self):
        return nullcontext()


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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    profile = load_profile(args.profile)
    print(f"profile {profile['name']}, C={args.channels}, {args.threads} threads")
    for name in args.methods:
        cls = get_method(name).load_class()
        cfg = method_config(profile, name)
        train = {"lr": 1e-3, **cfg.get("train", {})}
        bs = int(train.get("batch_size", 32))
        method = cls(channels=args.channels, **cfg.get("model", {}))
        method.train()
        opts = method.make_optimizers(train)
        batch = _batch(bs, args.channels, seed=1)
        times, cpu = [], []
        for i in range(args.warmup + args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            method.training_step(batch, opts, _Ctx())
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
        step, cpu_step = statistics.median(times), statistics.median(cpu)
        steps = int(train.get("steps", 0))
        print(
            f"{name:10s} batch {bs:3d}: {bs / step:7.1f} images/s wall, {bs / cpu_step:7.1f} images per CPU-second; "
            f"{1e3 * step:7.1f} ms/step; {steps} steps ~ {steps * step / 60:.1f} min at this rate"
        )


if __name__ == "__main__":
    main()
