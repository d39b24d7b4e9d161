"""The one default device of the toolkit: CUDA when present, else the CPU (DESIGN.md, "Conventions").

It lives in the bottom layer, beside the atomic writes (`files.py`), so that every layer can import it:
the machine observer (`metrics`) is its lowest user; `sr_models.distributed` re-exports it for torchrun.
"""

from __future__ import annotations

from typing import Optional

import torch


def default_device(local_rank: Optional[int] = None) -> torch.device:
    """Where tensors run when nobody says: a CUDA device when CUDA is present, else the CPU.

    local_rank: torchrun's LOCAL_RANK; picks CUDA device `local_rank` modulo the device count. None: the
    current CUDA device (`torch.cuda.current_device()`, device 0 unless a process chose another), which is
    what `torch.device("cuda")` means.
    """
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if local_rank is None:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cuda", local_rank % torch.cuda.device_count())
