"""The computing environment a number came from, recorded beside it.

Measured here (docs/seeds-and-spread.md): the same machine, torch version and thread count give the same
weights bit for bit; another thread count or another CPU moves them (float reductions are summed in
another order). So every run's `config.json` carries `environment` (`environment_record`), and `prsr eval`
lists the environments behind a Table 1 in `table1.json` and warns when they differ (`differing_fields`).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

from sr_data.device import default_device

from .allocator import allocator_record
from .checkpoint import git_commit

#: The fields that decide the digits (a different git commit is listed, not warned about: the evaluation
#: usually runs on a later commit than the training).
MACHINE_FIELDS = ("torch", "threads", "cpu_capability", "cpu_model", "device", "deterministic")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else `platform.processor()`, else ''."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def native_bf16(device: torch.device | str) -> bool:
    """Whether `device` computes bfloat16 in hardware, so that bf16 autocast speeds training up.

    CUDA: `torch.cuda.is_bf16_supported()`. CPU: AVX512-BF16 or AMX instructions. Without them torch
    emulates bf16 and autocast is far slower than float32 (one 3x3 conv, 32 -> 64 channels, batch 32 at 16x16,
    one thread on an AVX2-only AMD EPYC: 521 ms in bf16 vs 12 ms in float32).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return True  # other accelerators: trust the profile
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in torch.cpu, hence getattr
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def environment_record(device: Optional[torch.device | str] = None) -> Dict[str, Any]:
    """{"torch", "threads", "interop_threads", "cpu_capability", "cpu_model", "device", "cuda_device",
    "deterministic": {"algorithms", "cudnn_deterministic", "cudnn_benchmark"}, "allocator", "git"} of this process.

    `cpu_capability` is `torch.backends.cpu.get_cpu_capability()` (the SIMD kernels torch dispatches to,
    e.g. AVX512); `device` the one the work ran on (default: CUDA when present, else CPU).
    """
    device = torch.device(device) if device is not None else default_device()
    cuda_name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_model": cpu_model(),
        "device": str(device),
        "cuda_device": cuda_name,
        "native_bf16": native_bf16(device),
        "deterministic": {
            "algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        },
        "allocator": allocator_record(),
        "git": git_commit(),
    }


def machine_key(env: Mapping[str, Any]) -> tuple:
    """The part of an environment record that decides the digits, as a hashable key."""
    return tuple(repr(env.get(k)) for k in MACHINE_FIELDS)


def differing_fields(envs: Sequence[Mapping[str, Any]]) -> List[str]:
    """Names of `MACHINE_FIELDS` whose values are not the same in every record of `envs` (missing counts)."""
    return [k for k in MACHINE_FIELDS if len({repr(e.get(k)) for e in envs}) > 1]
