"""The machine observer over every Table-1 row: one `machine_fool_rate` per row, cached, timed, logged.

`machine_rates(hr, rows, observer_cfg, ...)` is what `prsr eval` calls: `rows` maps a row name to its
images (uint8 [N, C, 32, 32], paired by index with `hr`), `observer_cfg` is the profile's `observer:`
section (keys of `metrics.observer.OBSERVER_DEFAULTS`). Results are cached in `observer.json` by a digest
of (images, ground truth, settings, seed), so re-running the evaluation re-trains observers only for rows
whose images changed. Extra rows such as the study's golden pairs go through the same function.

On a CPU the rows' observers train side by side, one process per free core (`observer_workers`): each
observer runs on `threads` torch threads (1 in the profiles) and its convs are too small to use more, so a
second core otherwise idles. A row's result does not depend on how many run beside it (each observer is
seeded and runs on the same thread count as alone; `tests/test_observer.py` checks it bit for bit).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

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


#: `observer:` keys that change how the rows are run, not their results (kept out of the settings and the cache key)
RUN_KEYS = ("workers",)


def observer_settings(observer_cfg: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The profile's `observer:` section checked against the known keys (unknown keys are an error), without
    `RUN_KEYS`: the settings that decide an observer's result."""
    cfg = {k: v for k, v in dict(observer_cfg or {}).items() if k not in RUN_KEYS}
    unknown = sorted(set(cfg) - set(OBSERVER_DEFAULTS))
    if unknown:
        raise ValueError(f"profile observer: unknown keys {unknown}; known: {sorted([*OBSERVER_DEFAULTS, *RUN_KEYS])}")
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


def observer_workers(observer_cfg: Optional[Mapping[str, Any]], device=None) -> int:
    """How many observers `machine_rates` trains at once: the section's `workers` when set; otherwise, on a
    CPU, torch's thread count (the cores this process may use) divided by the observer's `threads`, and 1 on
    a GPU or when `threads` is null (each observer then takes torch's threads)."""
    workers = (observer_cfg or {}).get("workers")
    if workers is not None:
        return _positive_workers(workers)
    threads = observer_settings(observer_cfg)["threads"]
    on_cpu = torch.device(device).type == "cpu" if device is not None else not torch.cuda.is_available()
    return max(1, torch.get_num_threads() // int(threads)) if on_cpu and threads is not None else 1


def _positive_workers(workers) -> int:
    """`workers` as an int >= 1, or a ValueError naming the value (0 would otherwise read as "unset")."""
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"observer workers must be a positive integer (null: one per free core), got {workers!r}")
    return int(workers)


def _fool_rate_in_worker(hr: np.ndarray, fake: np.ndarray, seed: int, device, cfg: dict) -> Dict[str, Any]:
    """`machine_fool_rate` in a pool process (no per-step bar: the parent shows one bar over the rows)."""
    return machine_fool_rate(hr, fake, seed=seed, device=device, progress=False, **cfg)


def _start_pool(todo: Mapping[str, np.ndarray], hr, cfg: dict, seed: int, device, workers: int):
    """{row: Future of its result} from a pool of `workers` fresh processes (spawned: a forked copy of a
    process whose torch already started threads can hang), or (None, {}) when one process is enough."""
    workers = min(workers, len(todo))
    if workers < 2:
        return None, {}
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    device = None if device is None else str(device)
    return pool, {name: pool.submit(_fool_rate_in_worker, hr, fake, seed, device, cfg) for name, fake in todo.items()}


def _table_row(name: str, result: Dict[str, Any]) -> Dict[str, Any]:
    """One `observer.csv` row (rates in percent) from `machine_fool_rate`'s result."""
    return dict(
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


def machine_rates(
    hr: np.ndarray,
    rows: Mapping[str, np.ndarray],
    observer_cfg: Optional[Mapping[str, Any]],
    *,
    seed: int,
    device=None,
    cache_path: Optional[str | os.PathLike] = None,
    log: Callable[[str], Any] = print,
    workers: Optional[int] = None,
) -> pd.DataFrame:
    """Machine fool rate of every row -> DataFrame with `OBSERVER_COLUMNS` (rates in percent).

    hr: ground truth uint8 [N, C, H, W]; rows: {name: uint8 [N, C, H, W]}. Logs one line per row, in row
    order, with the rate, the interval and the seconds the observer took (0 s and "cached" when reused).
    workers: observers trained at once, each in its own process (default: `observer_workers`); the results
    are the same for any value. The processes are spawned and import the caller's main module, so a script
    that calls this with workers > 1 needs the `if __name__ == "__main__":` guard.
    """
    cfg = observer_settings(observer_cfg)
    path = Path(cache_path) if cache_path is not None else None
    cache = _load_cache(path)
    keys = {name: _digest(hr, fake, cfg, seed) for name, fake in rows.items()}

    def cached(name):
        hit = cache.get(name)  # older caches lack the per-pair scores: recompute those
        return hit is not None and hit.get("key") == keys[name] and "score_real" in hit["result"]

    todo = {name: fake for name, fake in rows.items() if not cached(name)}
    workers = observer_workers(observer_cfg, device) if workers is None else _positive_workers(workers)
    pool, futures = _start_pool(todo, hr, cfg, seed, device, workers)
    bar = tqdm(total=len(futures), desc="observers", unit="row", disable=not futures, leave=False)
    out, results = [], {}
    try:
        for name, fake in rows.items():
            if name not in todo:
                result, how = cache[name]["result"], "cached"
            else:
                if name in futures:
                    result = futures[name].result()
                    bar.update(1)
                else:
                    result = machine_fool_rate(hr, fake, seed=seed, device=device, desc=f"observer {name}", **cfg)
                how = f"{result['seconds']:.1f} s"
                cache[name] = {"key": keys[name], "result": result}
                if path is not None:
                    _save_cache(path, cache)  # row by row: an interrupted evaluation keeps the rows done
            results[name] = result
            out.append(_table_row(name, result))
            log(
                f"observer {name}: machine fooled {100 * result['fooled']:.1f} % "
                f"[{100 * result['ci_low']:.1f}, {100 * result['ci_high']:.1f}] over {result['n_pairs']} pairs "
                f"({how}; observer time {result['seconds']:.1f} s)"
            )
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    table = pd.DataFrame(out, columns=OBSERVER_COLUMNS)
    table.attrs["results"] = results  # per row: machine_fool_rate's dict (per-pair scores for observer_pairs.csv)
    return table
