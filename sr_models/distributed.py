"""`torch.distributed` set-up for training: one process per device, launched by `torchrun`.

`torchrun --nproc_per_node=N -m prsr.cli train ...` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; `setup()` reads them and initialises the default process group (nccl on CUDA, gloo on
CPU). Without those variables (a plain `prsr train`) it returns a single-process `DistInfo` and
nothing is initialised. Every helper here works in both cases, so the Trainer has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist

from sr_data.device import default_device  # the one default device; setup() and evaluation use it from here


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, checkpoints and sample grids."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def setup(device: Optional[torch.device | str] = None) -> DistInfo:
    """Initialise the default process group if torchrun asked for several processes (idempotent).

    `device`: None picks `default_device(LOCAL_RANK)`. Returns this process's `DistInfo`.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = _env_int("LOCAL_RANK", rank)
    else:
        rank, world, local = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0)
        if not 0 <= rank < world:
            raise ValueError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    dev = torch.device(device) if device is not None else default_device(local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if var not in os.environ:
                raise ValueError(f"WORLD_SIZE={world} but {var} is not set; launch with torchrun")
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def cleanup() -> None:
    """Destroy the default process group if one exists (safe in `finally`: no collective)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def finish() -> None:
    """The success path's end of a distributed run: a barrier, then `cleanup`.

    Without the barrier the first rank to finish destroys its gloo group while a peer may still be closing
    its side; a clean-clone CI run once saw rank 0 abort there ("terminate called without an active
    exception", SIGABRT) after both ranks had finished their work. Not for `finally` blocks: after a failure
    the other ranks never reach the barrier, and this rank would wait on it.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    cleanup()


def _active(info: DistInfo) -> bool:
    return info.distributed and dist.is_initialized()


def barrier(info: DistInfo) -> None:
    if _active(info):
        dist.barrier()


def broadcast_object(obj: Any, info: DistInfo, src: int = 0) -> Any:
    """`obj` of rank `src` on every rank (picklable objects)."""
    if not _active(info):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any, info: DistInfo) -> List[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not _active(info):
        return [obj]
    out: List[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(values: Dict[str, float], info: DistInfo) -> Dict[str, float]:
    """Mean over ranks of each scalar (every rank must pass the same keys in the same order)."""
    if not _active(info) or not values:
        return dict(values)
    keys = list(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device(info))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= info.world_size
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def any_true(flag: bool, info: DistInfo) -> bool:
    """True on every rank if `flag` is true on at least one rank."""
    if not _active(info):
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=_comm_device(info))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _comm_device(info: DistInfo) -> torch.device:
    # nccl only moves CUDA tensors; gloo moves CPU ones.
    return info.device if dist.get_backend() == "nccl" else torch.device("cpu")
