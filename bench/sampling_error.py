"""The exactness margin's premise, measured: how far the samplers' float32 logits lie from the float64 ones.

    .venv/bin/python bench/sampling_error.py [--profiles smoke quick paper] [--batches 1 2 9 64] [--seeds 2]
                                             [--rows 5] [--device cuda] [--threads 2] [--quick]

For each prior size, batch and sampler path, the cached sampler draws the first `--rows` rows of RGB images
(random weights, head and conditioning head scaled x1, x4 and x16 so that logits reach ~10, as trained
ones do) and records its float32 logits, and the naive sampler's logits of the same sub-pixels are
computed; the float64 model then recomputes A + B. Printed: the largest |float32 - float64| / (max|A| +
max|B|) over the 256 logits of a sub-pixel, which `sr_models.draws.MEASURED_REL_ERR` must bound (REL_TOL =
4x it). Paths: `numpy` = the CPU's small-batch
path (batches <= NUMPY_BATCH), `torch` = torch's products at every batch (what CUDA and larger CPU
batches run). Nothing is asserted; the worst value is the last line. --quick: the paper prior, batch 2,
one seed. Runs unchanged on CUDA (the NumPy path is CPU-only and skipped there).
"""

from __future__ import annotations

import argparse

import torch

from sr_models import sampling
from sr_models.canonical import full_float64_logits
from sr_models.distributed import default_device
from sr_models.draws import MEASURED_REL_ERR
from sr_models.pixel_recursive import PixelRecursiveSR
from sr_models.sampling import draw_uniforms, sample_cached

SCALES = (1.0, 4.0, 16.0)


def relative_errors(profile: str, batch: int, seed: int, scale: float, rows: int, device):
    """Largest |float32 - float64 logit| / (max|A| + max|B|) over the sub-pixels of `rows` rows, RGB ->
    (cached sampler, naive sampler). The naive sampler's logits are one full prior pass over the finished
    rows: its masks make later sub-pixels contribute exact zeros, so that pass gives each sub-pixel's value."""
    torch.manual_seed(seed)
    model = PixelRecursiveSR.from_profile(profile, 3).to(device).eval()
    with torch.no_grad():
        model.prior.head2.conv.weight.mul_(scale)
        model.cond.head.weight.mul_(scale)
    lr = torch.rand(batch, 3, 8, 8, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    u = draw_uniforms(batch, 3, 32, torch.Generator().manual_seed(seed + 2), device)[:, :, :rows]
    with torch.no_grad(), sampling.float32_exact():
        a = model.cond_logits(lr)[:, :rows]
        record = torch.zeros(batch, rows, 32, 3, 256, device=device)
        hr = sample_cached(model, a, u, 1.0, progress=False, record=record)
        naive = a + model.prior_logits(hr)
    a64, b64 = full_float64_logits(model, hr, lr)
    a64 = a64[:, :rows]
    scale_of = a.abs().amax(-1).double() + b64.abs().amax(-1)
    return tuple(((z.double() - (a64 + b64)).abs().amax(-1) / scale_of).max().item() for z in (record, naive))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", nargs="+", default=["smoke", "quick", "paper"])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 9, 64])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--rows", type=int, default=5, help="image rows sampled per case (default 5)")
    ap.add_argument("--device", default=None, help="default: CUDA when present, else the CPU")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--quick", action="store_true", help="paper prior, batch 2, one seed")
    args = ap.parse_args(argv)
    if args.quick:
        args.profiles, args.batches, args.seeds = ["paper"], [2], 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    paths = {"numpy": sampling.NUMPY_BATCH, "torch": 0} if device.type == "cpu" else {"torch": 0}
    print(f"device {device}, torch threads {torch.get_num_threads()}, MEASURED_REL_ERR {MEASURED_REL_ERR:.2e}")
    worst, small_batch = 0.0, sampling.NUMPY_BATCH
    try:
        for profile in args.profiles:
            for batch in args.batches:
                for path, numpy_batch in paths.items():
                    if path == "numpy" and batch > small_batch:
                        continue  # larger CPU batches take the torch path anyway
                    sampling.NUMPY_BATCH = numpy_batch
                    errs = [
                        relative_errors(profile, batch, seed, scale, args.rows, device)
                        for seed in range(args.seeds)
                        for scale in SCALES
                    ]
                    cached, naive = (max(col) for col in zip(*errs))
                    worst = max(worst, cached, naive)
                    print(
                        f"{profile:6} batch {batch:>3} cached ({path:5}) {cached:.2e}   naive {naive:.2e}", flush=True
                    )
    finally:
        sampling.NUMPY_BATCH = small_batch
    print(f"worst {worst:.2e} ({worst / MEASURED_REL_ERR:.2f}x MEASURED_REL_ERR)")


if __name__ == "__main__":
    main()
