"""Cached vs naive sampling speed of the pixel-recursive model (issue 4), measured in one run.

    .venv/bin/python bench/sampling.py [--profile paper] [--channels 3] [--batches 1 64] [--naive-steps 12]

For each batch size: the cached sampler draws whole 32x32 images (A once, then all C*1024 sub-pixels);
the naive sampler (one full prior pass per sub-pixel) is timed on its first `--naive-steps` sub-pixels
and scaled to C*1024 sub-pixels: every naive step does the same work (a full pass over the whole
image), so the scaling is exact up to timing noise. Weights are random: speed does not depend on them.
Prints seconds per batch and the cached/naive speed ratio; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import torch

from sr_models.pixel_recursive import PixelRecursiveSR
from sr_models.sampling import draw_uniforms, sample_cached, sample_naive


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="paper", help="profile whose model section sizes the prior (default: paper)")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--naive-steps", type=int, default=12, help="naive sub-pixels timed, then scaled (default 12)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = PixelRecursiveSR.from_profile(args.profile, args.channels).to(device).eval()
    subpixels = args.channels * 32 * 32
    print(f"profile {args.profile}, C={args.channels}, device {device}, torch threads {torch.get_num_threads()}")
    print(f"{'batch':>5} {'cached s':>10} {'naive s (scaled)':>17} {'ratio':>8}")
    for batch in args.batches:
        gen = torch.Generator().manual_seed(args.seed)
        lr = torch.rand(batch, args.channels, 8, 8, generator=gen).to(device)
        u = draw_uniforms(batch, args.channels, 32, gen, device)
        with torch.no_grad():
            a = model.cond_logits(lr)
            sample_cached(model, a[:, :2, :4], u[:, :, :2, :4], progress=False)  # warm-up
            t0 = time.perf_counter()
            sample_cached(model, a, u, progress=False)
            cached = time.perf_counter() - t0
            naive = _time_naive(model, a, u, args.naive_steps) * subpixels / args.naive_steps
        print(f"{batch:>5} {cached:>10.2f} {naive:>17.1f} {naive / cached:>7.0f}x", flush=True)


def _time_naive(model, a, u, steps: int) -> float:
    """Seconds for the naive sampler's first `steps` sub-pixels (after one warm-up pass)."""

    class _Stop(Exception):
        pass

    count = {"n": 0}
    record = _CountingRecord(count, steps, _Stop)
    model.prior_logits(torch.zeros(a.shape[0], a.shape[3], 32, 32, dtype=torch.uint8, device=a.device))  # warm-up
    t0 = time.perf_counter()
    try:
        sample_naive(model, a, u, progress=False, record=record)
    except _Stop:
        pass
    return time.perf_counter() - t0


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
