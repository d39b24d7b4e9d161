"""Methods the toolkit did not train: `predictions/<NAME>.npz` files written by `prsr import`.

They are not registry entries (the registry is the built-in methods); they are Table-1 rows found on
disk. An imported file holds `sr` uint8 [N, C, 32, 32], `ids` str [N] (truth.npz's order) and `meta`,
a JSON string with `"kind": "imported"`, the row's label and the provenance (source path, time,
hashes). `prsr eval` never predicts, deletes or rewrites such a file (it only reads it).

Order wherever rows are listed: the built-in rows in registry order, then imported rows alphabetically.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Dict, Optional

import numpy as np

_log = logging.getLogger(__name__)

IMPORTED_KIND = "imported"
#: a safe row name: lower-case letter first, then letters, digits, '_', '.', '-'; at most 40 characters
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")
#: names the study and the command line use for themselves
RESERVED_NAMES = frozenset({"truth", "golden", "all"})
SHORT_LABEL_CHARS = 16  # figure column headings (96-px tiles)


def read_meta(path: Path) -> Optional[dict]:
    """The `meta` JSON of a predictions file if it is an imported one, else None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                return None
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("kind") == IMPORTED_KIND else None


def imported_rows(predictions: Path, ids: Optional[np.ndarray] = None) -> Dict[str, dict]:
    """{name: {"sr": uint8 [N,C,32,32], "label": str, "meta": dict}} for every imported file in the
    folder, names sorted. With `ids` (truth.npz's), a file made for other ids is left out with a warning."""
    out: Dict[str, dict] = {}
    for path in sorted(Path(predictions).glob("*.npz")):
        if path.stem == "truth" or path.name.startswith(".") or path.name.endswith(".tmp.npz"):
            continue
        meta = read_meta(path)
        if meta is None:
            continue
        with np.load(path, allow_pickle=False) as z:
            sr, file_ids = z["sr"], z["ids"]
        if ids is not None and not np.array_equal(file_ids.astype(str), np.asarray(ids).astype(str)):
            _log.warning(
                "%s was imported for other image ids than truth.npz holds now; left out (import it again with --force)",
                path,
            )
            continue
        out[path.stem] = {"sr": sr, "label": meta.get("label") or path.stem, "meta": meta}
    return out


def short_label(label: str) -> str:
    return label if len(label) <= SHORT_LABEL_CHARS else label[: SHORT_LABEL_CHARS - 2] + ".."
