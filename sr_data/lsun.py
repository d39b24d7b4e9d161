"""LSUN bedrooms -> 3-channel pairs (centre square crop, resize to 32x32).

Two accepted layouts of the root:

1. LSUN's published export: `bedroom_train_lmdb/` and `bedroom_val_lmdb/`, lmdb environments whose
   keys are image ids and whose values are encoded images (WebP in the official export; JPEG, PNG
   also read). Splits: train and valid from `bedroom_train_lmdb` (valid = a 1 % hash bucket of the
   keys, `sr_data.splits.lsun_train_key_split`), test = `bedroom_val_lmdb`. Ids are the keys.
2. Otherwise, a folder of LSUN images: handled exactly like the `folder` dataset (hash split 90/5/5 by
   relative file name), cached under the name `lsun-bedroom`.

Values that cannot be decoded are skipped with a warning that counts them and names a few keys.
"""

from __future__ import annotations

from pathlib import Path

import lmdb

from . import cache
from .datasets import build_cached, fill_from_images, open_cached
from .errors import DataError
from .folder import centre_square, decode_image, load_image_folder
from .splits import lsun_train_key_split

NAME = "lsun-bedroom"
TRAIN_DB, VAL_DB = "bedroom_train_lmdb", "bedroom_val_lmdb"


def _open(path: Path) -> lmdb.Environment:
    if not (path / "data.mdb").is_file():
        raise FileNotFoundError(
            f"LSUN lmdb {path} not found (no data.mdb): expected <root>/{TRAIN_DB}/ and "
            f"<root>/{VAL_DB}/ from LSUN's download script, or a folder of bedroom images"
        )
    try:
        return lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=64)
    except lmdb.Error as exc:
        raise DataError(f"{path}: not a readable lmdb environment ({exc})") from exc


def _stat_parts(path: Path) -> list[str]:
    """Fingerprint of an lmdb: its statistics plus data.mdb's size and mtime."""
    env = _open(path)
    try:
        stat, info = env.stat(), env.info()
    finally:
        env.close()
    return [f"{path.name}|{sorted(stat.items())}|{info['last_txnid']}", *cache.file_stat_parts(path, ["data.mdb"])]


def _key_text(key: bytes) -> str:
    return key.decode("utf-8", "backslashreplace")


def load(split: str, root: Path):
    """The LSUN-bedroom pairs of `split` from the lmdb export or a folder of images under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"LSUN folder {root} not found: expected <root>/{TRAIN_DB}/ and <root>/{VAL_DB}/ "
            f"(LSUN's lmdb export) or a folder of bedroom images; pass --data-root or set PRSR_DATA"
        )
    if not ((root / TRAIN_DB).is_dir() or (root / VAL_DB).is_dir()):
        return load_image_folder(NAME, split, root)
    db = root / (VAL_DB if split == "test" else TRAIN_DB)
    fp = cache.fingerprint([NAME, split, *_stat_parts(db)])
    ds = open_cached(NAME, split, root, fp)
    if ds is not None:
        return ds

    env = _open(db)
    try:
        with env.begin(buffers=False) as txn:
            # keys first (cheap): they tell the split's members and the capacity of the cache entry
            keys = [
                k
                for k in txn.cursor().iternext(keys=True, values=False)
                if split == "test" or lsun_train_key_split(k) == split
            ]
            if not keys:
                raise DataError(f"{db} holds no images for the {split} split")

            def decode(key):
                value = txn.get(key)
                if value is None:
                    raise KeyError("key vanished from the lmdb")
                return decode_image(value)

            def fill(writer):
                return fill_from_images(
                    writer, ((_key_text(k), k) for k in keys), len(keys), decode, centre_square, f"{NAME}/{split}", db
                )

            return build_cached(NAME, split, root, fp, len(keys), 3, max(len(_key_text(k)) for k in keys), fill)
    finally:
        env.close()
