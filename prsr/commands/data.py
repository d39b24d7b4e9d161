"""`prsr data`: decode a dataset's splits into the pair cache once, and say where it is."""

from __future__ import annotations

import time

from sr_data import cache
from sr_data.datasets import DATASETS
from sr_data.loaders import load_pairs
from sr_data.splits import check_split

HELP = "decode a dataset into the (8x8, 32x32) pair cache and print the split sizes"


def add_arguments(parser):
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset")
    parser.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="folder of the raw data (default: $PRSR_DATA, else the dataset's default folder)",
    )
    parser.add_argument(
        "--splits",
        default="train,valid,test",
        metavar="LIST",
        help="comma-separated splits to build (default: train,valid,test)",
    )


def run(args) -> int:
    splits = [check_split(s.strip()) for s in args.splits.split(",") if s.strip()]
    if not splits:
        raise ValueError("--splits is empty: give e.g. train,valid,test")
    print(f"prsr data: {args.dataset}, cache under {cache.cache_root()} (set PRSR_CACHE to move it)")
    total = 0.0
    for split in splits:
        start = time.perf_counter()
        ds = load_pairs(args.dataset, split, root=args.data_root)
        took = time.perf_counter() - start
        total += took
        print(
            f"  {split:<5}  {len(ds):>9,d} pairs  C={ds.channels}  lr {tuple(ds.lr.shape)}  "
            f"hr {tuple(ds.hr.shape)}  {took:6.1f} s  -> {ds.cache_dir}"
        )
    print(f"prsr data: done in {total:.1f} s")
    return 0
