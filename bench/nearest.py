"""Speed of the nearest-neighbour search at CelebA size against a plain NumPy loop, in one run.

    .venv/bin/python bench/nearest.py [--train 162770] [--queries 256] [--numpy-queries 16] [--threads 1]

Training set: `--train` synthetic uint8 LR images 3x8x8 (CelebA's training split has 162,770). The torch
search (`baselines.NearestNeighbour.neighbour_indices`) answers all `--queries`; the NumPy loop
(`((train - q) ** 2).sum(1).argmin()` per query, train held as int32 so the squares do not overflow) is timed
on the first `--numpy-queries` of them and scaled to `--queries` (it is linear in the number of queries).
The two must pick the same neighbours.
"""

from __future__ import annotations

import argparse
import time
import types

import numpy as np
import torch

from baselines.nearest import NearestNeighbour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=162_770)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--numpy-queries", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, size=(args.train, 3, 8, 8), dtype=np.uint8)
    hr = np.zeros((args.train, 3, 1, 1), dtype=np.uint8)  # HR images are not part of the search
    queries = rng.integers(0, 256, size=(args.queries, 3, 8, 8), dtype=np.uint8)
    print(f"{args.train} training LR images 3x8x8, {args.queries} queries, torch threads {torch.get_num_threads()}")

    t0 = time.perf_counter()
    nn = NearestNeighbour(types.SimpleNamespace(lr=lr, hr=hr), device="cpu")
    t_build = time.perf_counter() - t0
    q = torch.from_numpy(queries).float() / 255.0
    t0 = time.perf_counter()
    idx = nn.neighbour_indices(q).numpy()
    t_torch = time.perf_counter() - t0

    train = lr.reshape(args.train, -1).astype(np.int32)
    flat = queries.reshape(args.queries, -1).astype(np.int32)
    k = min(args.numpy_queries, args.queries)
    t0 = time.perf_counter()
    ref = np.array([((train - flat[i]) ** 2).sum(1).argmin() for i in range(k)])
    t_numpy = (time.perf_counter() - t0) * args.queries / k

    same = bool((ref == idx[:k]).all())
    print(f"same neighbours as NumPy on the {k} checked queries: {same}")
    print(f"torch set-up (norms, float copy): {t_build:.3f} s (once per training set)")
    print(f"torch search, {args.queries} queries: {t_torch:.3f} s")
    print(f"NumPy loop, {k} queries timed, scaled to {args.queries}: {t_numpy:.3f} s")
    print(f"speed ratio (NumPy loop / torch search): {t_numpy / t_torch:.1f}x (goal >= 5x)")
    if not same:
        raise SystemExit("torch and NumPy disagree on a neighbour")


if __name__ == "__main__":
    main()
