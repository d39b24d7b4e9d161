"""Cached vs naive sampling speed of the pixel-recursive model (issues 4, 24), measured in one run.

    .venv/bin/python bench/sampling.py [--profile paper] [--channels 3] [--batches 1 64] [--naive-steps 12]
                                       [--device cuda] [--threads 2] [--quick] [--no-identity]

For each batch size: the cached sampler draws whole 32x32 images (A once, then all C*1024 sub-pixels),
once with the exactness check (fragile draws decided by the float64 canonical computation, A from lr as
`PixelRecursiveSR.sample` does) and once without it (`check=False`, plain float32 draws): the difference
is the check's own cost. The naive sampler (one full prior pass per sub-pixel) is timed on its first
`--naive-steps` sub-pixels and scaled to C*1024 sub-pixels: every naive step does the same work (a full
pass over the whole image), so the scaling is exact up to timing noise. Weights are random: speed does not
depend on them (the number of fragile draws does a little; it is printed). Then, unless --no-identity,
cached == naive is checked bit for bit on whole images in the same run: the smoke prior, C = 1 (batch 3)
and C = 3 (batch 2), tau 1.0 / 0.9 / 0.8 and greedy, through `sample`. Prints ratios measured in this run
and the load average; nothing is asserted on speed. --quick: batch 1 only, 3 naive steps, identity on C = 1.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from sr_models.distributed import default_device
from sr_models.pixel_recursive import PixelRecursiveSR
from sr_models.sampling import Canonical, draw_uniforms, sample_cached, sample_naive

_clock = time.perf_counter  # --clock cpu: time.process_time


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="paper", help="profile whose model section sizes the prior (default: paper)")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=None, help="default: 1 64 (--quick: 1)")
    ap.add_argument("--naive-steps", type=int, default=None, help="naive sub-pixels timed, then scaled (default 12)")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--device", default=None, help="default: CUDA when present, else the CPU")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="batch 1, 3 naive steps, identity on C = 1 only")
    ap.add_argument("--no-identity", action="store_true", help="skip the cached == naive whole-image check")
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall (default; the official figures, on a quiet machine) or cpu: this process's CPU time, "
        "less disturbed by other load (CPU device only; meaningful with one thread)",
    )
    args = ap.parse_args(argv)
    global _clock
    _clock = time.process_time if args.clock == "cpu" else time.perf_counter
    batches = args.batches or ([1] if args.quick else [1, 64])
    steps = args.naive_steps or (3 if args.quick else 12)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    torch.manual_seed(args.seed)
    model = PixelRecursiveSR.from_profile(args.profile, args.channels).to(device).eval()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(
        f"profile {args.profile}, C={args.channels}, tau {args.temperature}, device {device} ({name}), "
        f"torch threads {torch.get_num_threads()}, load average {_load()}"
    )
    print(
        f"{'batch':>5} {'cached s':>9} {'img/s':>8} {'unchecked s':>12} {'check cost':>11} {'fragile/img':>12} "
        f"{'naive s (scaled)':>17} {'naive img/s':>12} {'ratio':>8} {'load':>5}"
    )
    for batch in batches:
        row = _measure(model, batch, args.channels, steps, args.temperature, args.seed, device)
        print(
            f"{batch:>5} {row['cached']:>9.2f} {batch / row['cached']:>8.3f} {row['unchecked']:>12.2f} "
            f"{100 * (row['cached'] / row['unchecked'] - 1):>10.1f}% {row['fragile'] / batch:>12.2f} "
            f"{row['naive']:>17.1f} {batch / row['naive']:>12.5f} {row['naive'] / row['cached']:>7.0f}x "
            f"{os.getloadavg()[0]:>5.2f}",
            flush=True,
        )
    if not args.no_identity:
        _identity([(1, 3)] if args.quick else [(1, 3), (3, 2)], device, args.seed)


def _measure(model, batch: int, channels: int, steps: int, tau: float, seed: int, device) -> dict:
    """Seconds per batch: cached with and without the check, naive (scaled); fragile = canonical decisions."""
    gen = torch.Generator().manual_seed(seed)
    lr = torch.rand(batch, channels, 8, 8, generator=gen).to(device)
    u = draw_uniforms(batch, channels, 32, gen, device)
    with torch.no_grad():
        a = model.cond_logits(lr)
        for check in (True, False):  # warm-up
            sample_cached(model, a[:, :2, :4], u[:, :, :2, :4], tau, progress=False, check=check)
        canonical = Canonical(model, a, lr=lr)  # as `sample` does: fragile draws from lr in float64
        cached = _timed(device, lambda: sample_cached(model, a, u, tau, progress=False, canonical=canonical))
        unchecked = _timed(device, lambda: sample_cached(model, a, u, tau, progress=False, check=False))
        naive = _time_naive(model, a, u, steps) * channels * 32 * 32 / steps
    return dict(cached=cached, unchecked=unchecked, naive=naive, fragile=canonical.calls)


def _timed(device, fn) -> float:
    _sync(device)
    t0 = _clock()
    fn()
    _sync(device)
    return _clock() - t0


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _identity(cases, device, seed: int) -> None:
    """cached == naive on whole 32x32 images through `sample`: smoke prior, tau 1.0 / 0.9 / 0.8 and greedy."""
    for channels, batch in cases:
        torch.manual_seed(seed)
        model = PixelRecursiveSR.from_profile("smoke", channels).to(device).eval()
        lr = torch.rand(batch, channels, 8, 8, generator=torch.Generator().manual_seed(seed + 1)).to(device)
        results = []
        t0 = _clock()
        for kw in (dict(temperature=1.0), dict(temperature=0.9), dict(temperature=0.8), dict(greedy=True)):
            x = [
                model.sample(lr, generator=torch.Generator().manual_seed(seed + 5), progress=False, cached=c, **kw)
                for c in (True, False)
            ]
            results.append(
                f"{'greedy' if kw.get('greedy') else 'tau ' + str(kw['temperature'])}: "
                f"{'identical' if torch.equal(*x) else 'DIFFERENT'}"
            )
        print(
            f"cached == naive, smoke prior, C={channels}, batch {batch}, whole 32x32 images: "
            f"{'; '.join(results)} ({_clock() - t0:.0f} s, load {_load()})",
            flush=True,
        )


def _time_naive(model, a, u, steps: int) -> float:
    """Seconds for the naive sampler's first `steps` sub-pixels (after one warm-up pass)."""

    class _Stop(Exception):
        pass

    count = {"n": 0}
    record = _CountingRecord(count, steps, _Stop)
    model.prior_logits(torch.zeros(a.shape[0], a.shape[3], 32, 32, dtype=torch.uint8, device=a.device))  # warm-up
    _sync(a.device)
    t0 = _clock()
    try:
        sample_naive(model, a, u, progress=False, record=record)
    except _Stop:
        pass
    _sync(a.device)
    return _clock() - t0


class _CountingRecord:
    """Stands in for the `record` tensor: counts the sub-pixels drawn and stops the sampler after `steps`."""

    def __init__(self, count, steps, stop):
        self.count, self.steps, self.stop = count, steps, stop

    def __setitem__(self, key, value):
        self.count["n"] += 1
        if self.count["n"] >= self.steps:
            raise self.stop


if __name__ == "__main__":
    main()
