"""Training throughput of the pixel-recursive model: images/s of full training steps (forward, Eq. 8 loss,
backward, optimiser step), as the Trainer runs them.

    .venv/bin/python bench/train.py [--profiles paper quick] [--channels 1 3] [--batch 32] [--steps 5] [--warmup 2]
    .venv/bin/python bench/train.py --allocator both --profiles quick --channels 1 --variants fp32

`--allocator` picks glibc's malloc settings (`sr_models/allocator.py`): `tuned` (the default, as `prsr` runs),
`default` (glibc's own), or `both`: the same table once per setting, each in a fresh process (the setting is
process-wide), then the tuned/default ratio of each cell.

For each profile's `methods.pixel_recursive` model and each C it times `method.training_step` with the
profile's optimiser in three variants: fp32, bf16 autocast (`ctx.autocast()`), and fp32 with the model
and inputs in channels_last. It prints the median images/s over `--steps` steps after `--warmup` steps
and the ratios to fp32, all measured in this one run (the machine may be shared: compare ratios).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sr_models.allocator import tune_allocator  # noqa: E402
from sr_models.distributed import DistInfo, default_device  # noqa: E402
from sr_models.pixel_recursive import PixelRecursiveSR
from sr_models.profiles import load_profile, method_config  # noqa: E402
from sr_models.trainer import TrainContext, resolve_train_cfg  # noqa: E402

VARIANTS = ("fp32", "bf16", "channels_last")


def time_steps(
    profile: dict, channels: int, batch: int, variant: str, steps: int, warmup: int, device: torch.device
) -> float:
    """Median images/s of `steps` training steps after `warmup` steps."""

    torch.manual_seed(0)
    method = PixelRecursiveSR.from_profile(profile, channels).to(device).train()
    cfg = resolve_train_cfg(method_config(profile, "pixel_recursive").get("train"))
    optimizers = method.make_optimizers(cfg)
    ctx = TrainContext(DistInfo(device=device), bf16=(variant == "bf16"))
    lr = torch.rand(batch, channels, 8, 8, device=device)
    hr = torch.randint(0, 256, (batch, channels, 32, 32), dtype=torch.uint8, device=device)
    if variant == "channels_last":
        method = method.to(memory_format=torch.channels_last)
        lr = lr.contiguous(memory_format=torch.channels_last)
    data = {"lr": lr, "hr": hr, "hr_float": hr.float() / 255}
    times = []
    for i in range(warmup + steps):
        ctx.step = i
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        method.training_step(data, optimizers, ctx)  # returns floats: the step has finished
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profiles", nargs="+", default=["paper", "quick"])
    p.add_argument("--channels", nargs="+", type=int, default=[1, 3])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=5, help="timed steps (median)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--allocator", choices=("tuned", "default", "both"), default="tuned")
    args = p.parse_args(argv)
    if args.allocator == "both":
        return compare_allocators(sys.argv[1:] if argv is None else list(argv))
    if args.allocator == "tuned":
        tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    rates = measure(args)
    print("#rates " + json.dumps(rates))  # for compare_allocators
    return 0


def measure(args) -> dict:
    """Prints the table; returns {"<profile> <C>": {variant: images/s}}."""
    device = default_device()
    print(
        f"bench/train.py: torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, batch {args.batch}, "
        f"median of {args.steps} steps after {args.warmup} warm-up, allocator {args.allocator}"
    )
    print(
        f"{'profile':<8} {'C':>2} "
        + " ".join(f"{v + ' img/s':>19}" for v in args.variants)
        + "".join(f" {v + '/fp32':>19}" for v in args.variants if v != "fp32")
    )
    rates = {}
    for name in args.profiles:
        profile = load_profile(name)
        model = method_config(profile, "pixel_recursive").get("model") or "{} (the defaults = paper sizes)"
        print(f"# {name}: model {model}")
        for c in args.channels:
            rate = {v: time_steps(profile, c, args.batch, v, args.steps, args.warmup, device) for v in args.variants}
            rates[f"{name} {c}"] = rate
            line = f"{name:<8} {c:>2} " + " ".join(f"{rate[v]:>19.1f}" for v in args.variants)
            if "fp32" in rate:
                line += "".join(f" {rate[v] / rate['fp32']:>19.2f}" for v in args.variants if v != "fp32")
            print(line, flush=True)
    return rates


def compare_allocators(argv: list) -> int:
    """Runs this script with glibc's default malloc settings, then tuned (fresh processes: the setting is
    process-wide), prints both tables and the tuned/default ratio of every rate."""
    rest, skip = [], False
    for a in argv:  # drop `--allocator both` / `--allocator=both`
        if skip or a.startswith("--allocator"):
            skip = a == "--allocator"
            continue
        rest.append(a)
    rates = {}
    for setting in ("default", "tuned"):
        cmd = [sys.executable, __file__, *rest, "--allocator", setting]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        print("".join(line + "\n" for line in out.splitlines() if not line.startswith("#rates ")), end="")
        rates[setting] = json.loads(out.split("#rates ", 1)[1])
    print("tuned / default allocator (images/s ratio):")
    for key, default in rates["default"].items():
        cells = " ".join(f"{v} {rates['tuned'][key][v] / default[v]:.2f}" for v in default)
        print(f"{key:<10} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
