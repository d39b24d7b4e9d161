"""Nearest-neighbour baseline: the training HR image whose LR image is closest (L2) to the input.

The search is exact. LR images live on uint8 levels (the datasets store them so, and a float query is
rounded to the nearest level first, as every metric does), so with q and t the level vectors

    argmin_t ||q - t||² = argmin_t (||t||² - 2 q·t)

is an integer problem: ||t||² is computed once in int64, and q·t by a float32 matrix product, which is exact
because every partial sum is an integer below 2^24 (C·h·w·255² = 12,484,800 for 3x8x8; float64 is used
instead when the LR images are too large for that). Ties go to the lowest training index, like
`numpy.argmin`. The training set is walked in chunks, keeping a running minimum, so only one chunk of LR
images is converted to float at a time unless the whole float copy fits in `cache_bytes`; the HR images are
read only for the winners (they may stay memory-mapped on disk).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from sr_data import to_float, to_uint8
from sr_data.device import default_device
from sr_models.interface import SuperResolver

# Largest integer below which float32 sums of integers are exact.
_F32_EXACT = 1 << 24


def _pair_arrays(train_pairs) -> tuple[np.ndarray, np.ndarray]:
    """(lr, hr) numpy arrays from an object with `.lr`/`.hr` (a PairDataset) or a mapping with those keys."""
    if isinstance(train_pairs, dict):
        lr, hr = train_pairs.get("lr"), train_pairs.get("hr")
    else:
        lr, hr = getattr(train_pairs, "lr", None), getattr(train_pairs, "hr", None)
    if lr is None or hr is None:
        raise TypeError(
            "NearestNeighbour: train_pairs must have .lr uint8 [N, C, h, w] and .hr uint8 [N, C, H, W]"
            f" (e.g. sr_data.load_pairs(name, 'train')), got {type(train_pairs).__name__}"
        )
    arrays = []
    for name, arr in (("lr", lr), ("hr", hr)):
        if isinstance(arr, torch.Tensor):
            arr = arr.cpu().numpy()
        if not isinstance(arr, np.ndarray):
            arr = np.asarray(arr)
        if arr.dtype != np.uint8 or arr.ndim != 4:
            raise ValueError(
                f"NearestNeighbour: train_pairs.{name} must be uint8 [N, C, H, W], got {arr.dtype} {tuple(arr.shape)}"
            )
        arrays.append(arr)
    lr, hr = arrays
    if len(lr) != len(hr) or len(lr) == 0 or lr.shape[1] != hr.shape[1]:
        raise ValueError(
            f"NearestNeighbour: need as many LR as HR training images (at least one) with equal channels,"
            f" got lr {tuple(lr.shape)} and hr {tuple(hr.shape)}"
        )
    return lr, hr


class NearestNeighbour(SuperResolver):
    """Exact L2 nearest neighbour over the training LR images; predicts that neighbour's HR image.

    train_pairs: `.lr` uint8 [N, C, h, w], `.hr` uint8 [N, C, H, W] (numpy, possibly memory-mapped, or torch).
    chunk_size: training images per matrix product; cache_bytes: keep a float copy of the training LR images
    on the device when it needs at most this many bytes (else convert each chunk on every call).
    """

    name = "nearest"
    needs_train_pairs = True  # evaluation builds it as NearestNeighbour(training pairs)

    def __init__(
        self,
        train_pairs,
        chunk_size: int = 16384,
        cache_bytes: int = 1 << 30,
        device: Optional[torch.device] = None,
    ):
        self._lr, self._hr = _pair_arrays(train_pairs)
        if chunk_size < 1:
            raise ValueError(f"NearestNeighbour: chunk_size must be positive, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self.device = torch.device(device) if device is not None else default_device()
        n = len(self._lr)
        self.lr_shape = tuple(self._lr.shape[1:])
        self.dim = int(np.prod(self.lr_shape))
        self._dtype = torch.float32 if self.dim * 255**2 < _F32_EXACT else torch.float64
        # ||t||² per training image, exact in int64, then float64 (exact: < 2^53).
        norms = np.empty(n, dtype=np.int64)
        for start in range(0, n, self.chunk_size):
            block = np.asarray(self._lr[start : start + self.chunk_size]).reshape(-1, self.dim).astype(np.int64)
            norms[start : start + len(block)] = np.einsum("ij,ij->i", block, block)
        self._norms = torch.from_numpy(norms).to(torch.float64).to(self.device)
        itemsize = torch.tensor([], dtype=self._dtype).element_size()
        self._cache: Optional[torch.Tensor] = None
        if n * self.dim * itemsize <= cache_bytes:
            self._cache = self._train_block(0, n)

    @classmethod
    def from_training_data(cls, train_pairs) -> "NearestNeighbour":
        return cls(train_pairs)

    def __len__(self) -> int:
        return len(self._lr)

    def _train_block(self, start: int, stop: int) -> torch.Tensor:
        """Training LR images [start, stop) as levels, [k, D] float on the device."""
        if self._cache is not None:
            return self._cache[start:stop]
        # np.array copies: memory-mapped training sets are read-only, torch wants writable memory.
        block = torch.from_numpy(np.array(self._lr[start:stop])).reshape(stop - start, self.dim)
        return block.to(self.device).to(self._dtype)

    def _check_query(self, lr: torch.Tensor) -> None:
        where = "NearestNeighbour"
        if not isinstance(lr, torch.Tensor) or lr.dim() != 4 or not lr.is_floating_point():
            raise ValueError(
                f"{where}: lr must be a float tensor [B, {', '.join(map(str, self.lr_shape))}] in [0, 1], got "
                + (f"{lr.dtype} {tuple(lr.shape)}" if isinstance(lr, torch.Tensor) else type(lr).__name__)
            )
        if tuple(lr.shape[1:]) != self.lr_shape:
            raise ValueError(
                f"{where}: lr images have shape {tuple(lr.shape[1:])} but the training LR images have {self.lr_shape}"
            )

    @torch.no_grad()
    def neighbour_indices(self, lr: torch.Tensor) -> torch.Tensor:
        """lr [B, C, h, w] float in [0, 1] -> LongTensor [B] (CPU): index of the nearest training LR image."""
        self._check_query(lr)
        b = lr.shape[0]
        q = to_uint8(lr).reshape(b, self.dim).to(self.device).to(self._dtype)
        best_d = torch.full((b,), float("inf"), dtype=torch.float64, device=self.device)
        best_i = torch.zeros(b, dtype=torch.long, device=self.device)
        n = len(self._lr)
        for start in range(0, n, self.chunk_size):
            stop = min(n, start + self.chunk_size)
            t = self._train_block(start, stop)
            # Exact integers: q·t from an exact matmul, ||t||² from int64 (||q||² is the same for every t).
            d = self._norms[start:stop].unsqueeze(0) - 2.0 * (q @ t.T).to(torch.float64)
            d_min, i_min = d.min(dim=1)  # first index on ties
            better = d_min < best_d  # strict: an earlier chunk keeps its tie
            best_d = torch.where(better, d_min, best_d)
            best_i = torch.where(better, i_min + start, best_i)
        return best_i.cpu()

    def predict(self, lr: torch.Tensor) -> torch.Tensor:
        """lr [B, C, h, w] float in [0, 1] -> the neighbours' HR images [B, C, H, W] float in [0, 1]."""
        idx = self.neighbour_indices(lr).numpy()
        hr = torch.from_numpy(np.ascontiguousarray(self._hr[idx]))
        return to_float(hr).to(lr.device)
