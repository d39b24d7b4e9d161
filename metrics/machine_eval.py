"""The machine observer over every Table-1 row: one `machine_fool_rate` per row, cached, timed, logged.

`machine_rates(hr, rows, observer_cfg, ...)` is what `prsr eval` calls: `rows` maps a row name to its
images (uint8 [N, C, 32, 32], paired by index with `hr`), `observer_cfg` is the profile's `observer:`
section (keys of `metrics.observer.OBSERVER_DEFAULTS`). Results are cached in `observer.json` by a digest
of (images, ground truth, settings, seed), so re-running the evaluation re-trains observers only for rows
whose images changed. Extra rows such as the study's golden pairs go through the same function.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np
import pandas as pd

from sr_data.files import atomic_write_json

from .observer import OBSERVER_DEFAULTS, machine_fool_rate

#: Columns of `observer.csv` (rates in percent, like table1.csv's machine_* columns).
OBSERVER_COLUMNS = [
    "method",
    "machine_fooled",
    "machine_ci_low",
    "machine_ci_high",
    "machine_se",
    "n_pairs",
    "folds",
    "fold_rates",
    "seconds",
]


def observer_settings(observer_cfg: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The profile's `observer:` section checked against the known keys (unknown keys are an error)."""
    cfg = dict(observer_cfg or {})
    unknown = sorted(set(cfg) - set(OBSERVER_DEFAULTS))
    if unknown:
        raise ValueError(f"profile observer: unknown keys {unknown}; known: {sorted(OBSERVER_DEFAULTS)}")
    return {**OBSERVER_DEFAULTS, **cfg}


def _digest(hr: np.ndarray, fake: np.ndarray, cfg: dict, seed: int) -> str:
    h = hashlib.sha1()
    for a in (hr, fake):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps({**cfg, "widths": list(cfg["widths"]), "seed": seed}, sort_keys=True).encode())
    return h.hexdigest()


def _load_cache(path: Optional[Path]) -> dict:
    if path is None or not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}  # a damaged cache is only a lost speed-up: recompute


def _save_cache(path: Path, cache: dict) -> None:
    atomic_write_json(path, cache)


def machine_rates(
    hr: np.ndarray,
    rows: Mapping[str, np.ndarray],
    observer_cfg: Optional[Mapping[str, Any]],
    *,
    seed: int,
    device=None,
    cache_path: Optional[str | os.PathLike] = None,
    log: Callable[[str], Any] = print,
) -> pd.DataFrame:
    """Machine fool rate of every row -> DataFrame with `OBSERVER_COLUMNS` (rates in percent).

    hr: ground truth uint8 [N, C, H, W]; rows: {name: uint8 [N, C, H, W]}. Logs one line per row with the
    rate, the interval and the seconds the observer took (0 s and "cached" when reused).
    """
    cfg = observer_settings(observer_cfg)
    path = Path(cache_path) if cache_path is not None else None
    cache = _load_cache(path)
    out, results = [], {}
    for name, fake in rows.items():
        key = _digest(hr, fake, cfg, seed)
        hit = cache.get(name)
        if hit is not None and hit.get("key") == key and "score_real" in hit["result"]:  # older caches lack scores
            result, how = hit["result"], "cached"
        else:
            result = machine_fool_rate(hr, fake, seed=seed, device=device, desc=f"observer {name}", **cfg)
            how = f"{result['seconds']:.1f} s"
            cache[name] = {"key": key, "result": result}
            if path is not None:
                _save_cache(path, cache)
        results[name] = result
        out.append(
            dict(
                method=name,
                machine_fooled=100 * result["fooled"],
                machine_ci_low=100 * result["ci_low"],
                machine_ci_high=100 * result["ci_high"],
                machine_se=100 * result["se"],
                n_pairs=result["n_pairs"],
                folds=len(result["fold_rates"]),
                fold_rates=" ".join(f"{100 * r:.1f}" for r in result["fold_rates"]),
                seconds=result["seconds"],
            )
        )
        log(
            f"observer {name}: machine fooled {100 * result['fooled']:.1f} % "
            f"[{100 * result['ci_low']:.1f}, {100 * result['ci_high']:.1f}] over {result['n_pairs']} pairs "
            f"({how}; observer time {result['seconds']:.1f} s)"
        )
    table = pd.DataFrame(out, columns=OBSERVER_COLUMNS)
    table.attrs["results"] = results  # per row: machine_fool_rate's dict (per-pair scores for observer_pairs.csv)
    return table
