"""Predictions of one Table-1 row in chunks, shared over `torchrun` ranks, resumable; `predictions/manifest.json`.

The evaluation images (N, in truth.npz order) are cut into chunks of `eval.batch_size` images
(`chunk_bounds`); rank r of W takes the contiguous run of chunks `[K r / W, K (r + 1) / W)` (K chunks), so
its share is a contiguous slice of the ids and the chunk boundaries do not depend on W (a run resumed
with another W reuses the same chunk files). Each chunk is written atomically to
`predictions/.chunks/<row>/<start>-<end>.npz` (`sr` uint8 [n,C,32,32], `ids`, `meta`, `rank`, `world_size`).

Identical samples whichever rank draws them: a row's stream is one `torch.Generator` seeded with the
row seed, and the sampler draws one uniform per sub-pixel, image after image (prefix-consistent on CPU:
image j uses draws j*D .. (j+1)*D, D = C*32*32). A rank starting at image s therefore advances a fresh
generator by s*D draws (draw and discard; torch's CPU generator has no jump-ahead) and then samples;
within its share the generator just runs on, as in one process. Fragile draws are decided per image in
float64 (`sr_models.sampling.Canonical`), so the batch an image is in does not change it. One process
with no resume never advances: its generator use is exactly the pre-chunk one.

Resume: with `resume=True` a chunk file whose `meta` (checkpoint fingerprint + seed) and ids match is
reused; a chunk of another checkpoint or seed is recomputed and overwritten, never mixed in. Without
`resume`, rank 0 deletes the row's old chunks first (they are derived data: the complete
`<row>.npz` is what `prsr eval` keeps). After every rank has finished (a barrier), rank 0 concatenates
the chunks into `predictions/<row>.npz`, records the row in the manifest and removes the chunk folder.

Progress: rank 0 shows one bar per row over all ranks (images done, counted from the chunk files on
disk after each of its own chunks, so the ETA is global); the other ranks show none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm.auto import tqdm

from sr_data.files import atomic_savez, atomic_write_json
from sr_models import distributed as dist_utils

DISCARD_PIECE = 1 << 22  # uniforms drawn per discard call when advancing a generator (16 MiB of float32)

# test hook: raise after this many chunks written by this process (simulates an interrupted evaluation)
FAIL_AFTER_ENV = "PRSR_EVAL_FAIL_AFTER_CHUNKS"


_written = [0]  # chunks this process has written (for the test hook)


class InterruptedForTest(RuntimeError):
    """Raised by the PRSR_EVAL_FAIL_AFTER_CHUNKS test hook."""


def chunk_bounds(n: int, size: int) -> List[Tuple[int, int]]:
    """[(start, end)] of the chunks of `size` images covering 0..n."""
    if size < 1:
        raise ValueError(f"eval.batch_size must be >= 1, got {size}")
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def rank_chunks(bounds: Sequence[Tuple[int, int]], rank: int, world: int) -> List[Tuple[int, int]]:
    """The contiguous run of chunks rank `rank` of `world` predicts."""
    k = len(bounds)
    return list(bounds[k * rank // world : k * (rank + 1) // world])


def advance(gen: torch.Generator, draws: int) -> None:
    """Move `gen` forward by `draws` uniforms (what `torch.rand` of that many elements consumes)."""
    while draws > 0:
        piece = min(draws, DISCARD_PIECE)
        torch.rand(piece, generator=gen, device=gen.device)
        draws -= piece


def chunk_dir(predictions: Path, row: str) -> Path:
    return predictions / ".chunks" / row


def _chunk_path(predictions: Path, row: str, s: int, e: int) -> Path:
    return chunk_dir(predictions, row) / f"{s}-{e}.npz"


def _load_chunk(path: Path, ids: np.ndarray, meta: str) -> Optional[dict]:
    """The chunk's arrays if it exists and was made from the same checkpoint, seed and ids, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["meta"]) != meta or not np.array_equal(z["ids"], ids):
                return None
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError):  # a torn file cannot exist (atomic writes), but a hand-edited one can
        return None


def ids_hash(ids: np.ndarray) -> str:
    """sha1 of the ids, newline-joined (the manifest's `ids_sha1`)."""
    return hashlib.sha1("\n".join(map(str, ids)).encode()).hexdigest()


def predict_row_chunks(
    decode: Callable,
    lr: np.ndarray,
    ids: np.ndarray,
    row: str,
    row_seed: int,
    draws_per_image: int,
    batch_size: int,
    meta: str,
    predictions: Path,
    info: dist_utils.DistInfo,
    device,
    to_input: Callable,
    to_uint8: Callable,
    resume: bool,
) -> Optional[dict]:
    """Predict this rank's chunks of one row; on rank 0 return the assembled row
    `{"sr": uint8 [N,C,32,32], "ranks": [{"rank", "ids"}], "resumed_ids": [...]}` (other ranks: None).

    decode(lr_float [n,C,8,8], generator) -> float [n,C,32,32]; lr uint8 [N,C,8,8]; every rank must call this
    for the same rows in the same order (it holds two barriers).
    """
    folder = chunk_dir(predictions, row)
    if info.is_main and not resume and folder.exists():
        shutil.rmtree(folder)  # without --resume every chunk is recomputed (module doc)
    dist_utils.barrier(info)
    folder.mkdir(parents=True, exist_ok=True)

    bounds = chunk_bounds(len(lr), batch_size)
    mine = rank_chunks(bounds, info.rank, info.world_size)
    fail_after = int(os.environ.get(FAIL_AFTER_ENV, "0") or 0)
    gen = torch.Generator(device=device).manual_seed(row_seed)
    pos = 0  # images of the row's stream the generator has consumed
    reused: List[Tuple[int, int]] = []
    bar = tqdm(
        total=len(lr),
        desc=f"predict {row} ({info.world_size} rank{'s' if info.world_size > 1 else ''})",
        unit="img",
        leave=False,
        disable=not info.is_main,
    )

    def refresh():
        if info.is_main:
            bar.update(min(_images_on_disk(folder), len(lr)) - bar.n)

    refresh()
    for s, e in mine:
        path = _chunk_path(predictions, row, s, e)
        if resume and _load_chunk(path, ids[s:e], meta) is not None:
            reused.append((s, e))
            continue
        if pos < s:
            advance(gen, (s - pos) * draws_per_image)
        sr = to_uint8(decode(to_input(lr[s:e], device), gen))
        pos = e
        atomic_savez(
            path,
            sr=sr,
            ids=ids[s:e],
            meta=np.array(meta),
            rank=np.array(info.rank),
            world_size=np.array(info.world_size),
        )
        _written[0] += 1
        refresh()
        if fail_after and _written[0] >= fail_after:
            raise InterruptedForTest(f"{FAIL_AFTER_ENV}={fail_after}: stopped after {_written[0]} chunks (in {row})")
    reused_all = set().union(*map(set, dist_utils.all_gather_object(reused, info)))  # also the barrier
    if not info.is_main:
        bar.close()
        return None
    refresh()
    bar.close()
    return _assemble_row(predictions, row, bounds, ids, meta, info.world_size, reused_all)


def _images_on_disk(folder: Path) -> int:
    """Images in the finished chunk files `<start>-<end>.npz` of `folder` (temporary files, which start with
    '.' or hold '.tmp', are not counted)."""
    return sum(
        int(p.stem.split("-")[1]) - int(p.stem.split("-")[0])
        for p in folder.glob("[0-9]*-*.npz")
        if p.stem.count("-") == 1 and ".tmp" not in p.name
    )


def _assemble_row(predictions: Path, row: str, bounds, ids: np.ndarray, meta: str, world: int, reused_all) -> dict:
    """Rank 0, after every rank finished: the row's chunks read back in order and joined, with the ids each
    rank sampled and those reused from an interrupted run (see `predict_row_chunks`)."""
    parts, by_rank, resumed = [], {r: [] for r in range(world)}, []
    for s, e in bounds:
        chunk = _load_chunk(_chunk_path(predictions, row, s, e), ids[s:e], meta)
        if chunk is None:
            raise RuntimeError(
                f"chunk {s}-{e} of {row} is missing or stale in {chunk_dir(predictions, row)} after every rank finished"
            )
        parts.append(chunk["sr"])
        owner = next(r for r in range(world) if (s, e) in rank_chunks(bounds, r, world))
        # a chunk reused from an interrupted run is listed as resumed, not as sampled by this run's rank
        (resumed if (s, e) in reused_all else by_rank[owner]).extend(map(str, ids[s:e]))
    return {
        "sr": np.concatenate(parts),
        "ranks": [{"rank": r, "ids": by_rank[r]} for r in range(world)],
        "resumed_ids": resumed,
    }


def finish_row(predictions: Path, row: str) -> None:
    """Remove the row's chunks once `<row>.npz` is written (rank 0)."""
    shutil.rmtree(chunk_dir(predictions, row), ignore_errors=True)
    parent = predictions / ".chunks"
    if parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()


def write_manifest(predictions: Path, entries: Dict[str, dict]) -> Path:
    """Merge `entries` ({row: record}) into `predictions/manifest.json` (atomic; rank 0 only)."""
    path = predictions / "manifest.json"
    manifest = {"rows": {}}
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError:
            manifest = {"rows": {}}  # derived file; rewritten whole below
    manifest.setdefault("rows", {}).update(entries)
    atomic_write_json(path, manifest)
    return path
