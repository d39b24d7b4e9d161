"""The run folder's checkpoint files, written atomically, and `load_method`.

A run folder (`runs/<dataset>/<method>/`) holds:

- `model.safetensors`: every parameter AND persistent buffer (batch-norm running statistics) of the
  method, metadata `step` and `method`. This is what evaluation loads (`load_method`).
- `config.json`: method, model_config, resolved train config, profile, dataset, seed, git commit,
  library versions, command line, world size. Written when the run starts; checked on resume.
- `state.pt`: what resuming needs: step, elapsed seconds, optimiser states, the data sampler's state,
  the RNG states of every rank (torch, numpy, python, CUDA), and a copy of the weights, so that
  `state.pt` alone is consistent even if a kill lands between the renames of the two files.

Every file is written to a temporary file in the same folder and moved over the old one with
`os.replace` (atomic on POSIX), so a killed run leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model

from sr_data.device import default_device
from sr_data.errors import DataError
from sr_data.files import atomic_write

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
STATE = "state.pt"
STATE_FORMAT = 1


class RunExistsError(ValueError):
    """A run folder already holds a checkpoint and neither resume nor fresh was asked for."""


# -- JSON (written with sr_data.files.atomic_write) -------------------------------------------------
def write_json(path: str | os.PathLike, obj: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False, default=_json_default)
            f.write("\n")

    atomic_write(path, write)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, (Path, torch.device, torch.dtype)):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable: {obj!r}")


def jsonable(obj: Any) -> Any:
    """`obj` as it reads back from JSON (tuples become lists, ...), for comparisons with a stored config."""
    return json.loads(json.dumps(obj, default=_json_default))


# -- provenance ------------------------------------------------------------------------------------
def git_commit(where: str | os.PathLike | None = None) -> Optional[Dict[str, Any]]:
    """{'commit': sha, 'dirty': bool} of the repository holding this code, or None outside a git checkout."""
    where = Path(where) if where else Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> Dict[str, Optional[str]]:
    out: Dict[str, Optional[str]] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    for dist_name in ("safetensors", "pixel-recursive-sr"):
        try:
            out[dist_name] = metadata.version(dist_name)
        except metadata.PackageNotFoundError:
            out[dist_name] = None
    out["cuda"] = torch.version.cuda
    return out


def command_line() -> str:
    """The command that started this process, with `python -m prsr.cli` / the console script shown as `prsr`."""
    if not sys.argv:
        return ""
    first = Path(sys.argv[0])
    prog = "prsr" if first.name == "prsr" or first.parent.name == "prsr" else str(first)
    return " ".join([prog] + sys.argv[1:])


# -- RNG states ------------------------------------------------------------------------------------
def capture_rng() -> Dict[str, Any]:
    """torch / numpy / python / CUDA RNG states of this process, as tensors and plain types
    (loadable with `torch.load(weights_only=True)`)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch (and CUDA), numpy and python's `random`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- weights and state -----------------------------------------------------------------------------
def save_weights(module: torch.nn.Module, run_dir: str | os.PathLike, step: int, method: str) -> None:
    """`run_dir/model.safetensors`: parameters and persistent buffers, metadata step and method."""

    def write(tmp: str) -> None:
        save_model(module, tmp, metadata={"step": str(step), "method": method})
        _sort_metadata(tmp)

    atomic_write(Path(run_dir) / WEIGHTS, write)


def _sort_metadata(path: str) -> None:
    """Rewrite a safetensors header with its `__metadata__` keys sorted, in place, same length.

    safetensors writes the metadata from a hash map, in an order that changes from run to run, so two
    identical trainings gave files with equal tensors but different bytes; sorted, the bytes match too."""
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        if "__metadata__" not in header:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":")).encode()
        if len(text) <= n:  # the same keys and values: the same length (padded with spaces as the format allows)
            f.seek(8)
            f.write(text + b" " * (n - len(text)))


def load_weights(
    module: torch.nn.Module, path: str | os.PathLike, device: torch.device | str = "cpu"
) -> Dict[str, str]:
    """Load `path` into `module` (strict: every key must match). Returns the file's metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint weights {path} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        missing, unexpected = load_model(module, str(path), strict=False, device=str(device))
    except Exception as exc:  # safetensors raises its own error types for a truncated or garbled file
        raise DataError(f"checkpoint weights {path} are unreadable (corrupt or not a safetensors file): {exc}") from exc
    if missing or unexpected:
        raise DataError(
            f"checkpoint weights {path} do not fit the model {type(module).__name__}: "
            f"missing keys {sorted(missing)[:8]}, unexpected keys {sorted(unexpected)[:8]}"
        )
    return metadata


# -- which weights a weights file holds (weight averaging, sr_models/ema.py) -------------------------
RAW_WEIGHTS = "model_raw.safetensors"  # the trained weights, written beside model.safetensors when it holds an average


def save_weights_tagged(
    module: torch.nn.Module, path: str | os.PathLike, step: int, method: str, weights: str, **extra: str
) -> None:
    """`path` (safetensors) with the module's parameters and persistent buffers, metadata step, method,
    `weights` ('raw': the trained weights; 'ema': an exponential moving average of them) and `extra`."""
    if weights not in ("raw", "ema"):
        raise ValueError(f"weights must be 'raw' or 'ema', got {weights!r}")
    meta = {"step": str(step), "method": method, "weights": weights, **{k: str(v) for k, v in extra.items()}}

    def write(tmp: str) -> None:
        save_model(module, tmp, metadata=meta)
        _sort_metadata(tmp)  # byte-identical files for identical weights, as save_weights

    atomic_write(Path(path), write)


def weights_held(path: str | os.PathLike) -> str:
    """'raw' or 'ema': which weights the safetensors file `path` holds (files without the tag hold 'raw')."""
    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("weights", "raw")


def save_state(state: Dict[str, Any], run_dir: str | os.PathLike) -> None:
    atomic_write(Path(run_dir) / STATE, lambda tmp: torch.save(state, tmp))


def load_state(run_dir: str | os.PathLike, map_location: torch.device | str = "cpu") -> Dict[str, Any]:
    path = Path(run_dir) / STATE
    if not path.is_file():
        raise FileNotFoundError(f"training state {path} not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise DataError(f"training state {path} is unreadable (corrupt or truncated): {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise DataError(f"training state {path} is not a format-{STATE_FORMAT} state file of this toolkit")
    return state


def read_config(run_dir: str | os.PathLike) -> Dict[str, Any]:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"run config {path} not found (is {Path(run_dir)} a training run folder?)")
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"run config {path} is not valid JSON: {exc}") from exc
    for key in ("method", "model_config"):
        if key not in config:
            raise DataError(f"run config {path} lacks the key {key!r}")
    return config


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    run_dir = Path(run_dir)
    return (run_dir / STATE).exists() or (run_dir / WEIGHTS).exists()


def prepare_run_dir(run_dir: str | os.PathLike, *, resume: bool, fresh: bool) -> Optional[Path]:
    """Refuse to overwrite a checkpoint unless asked; `fresh` first renames the old folder.

    Returns the new name of the old folder when `fresh` moved one away, else None. Call on rank 0 only.
    """
    run_dir = Path(run_dir)
    if resume and fresh:
        raise ValueError("--resume and --fresh contradict each other; pass one of them")
    if fresh and run_dir.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        old = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
        n = 1
        while old.exists():
            old = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}")
            n += 1
        os.replace(run_dir, old)
        return old
    if not resume and has_checkpoint(run_dir):
        raise RunExistsError(
            f"{run_dir} already holds a checkpoint ({WEIGHTS} / {STATE}); pass --resume to continue it, "
            f"or --fresh to move it to {run_dir.name}.old-<timestamp> and start again"
        )
    return None


# -- loading a trained method ----------------------------------------------------------------------
def load_method(run_dir: str | os.PathLike, resolve, device: torch.device | str | None = None):
    """The trained method of `run_dir` in eval mode on `device` (None: CUDA when present, else CPU).

    `resolve(name) -> class` maps `config["method"]` to its class (the method registry,
    `baselines.registry.load_method`, passes its own lookup: this module sits below the registry);
    the class is rebuilt from `config["model_config"]`, with the weights of `model.safetensors`.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} not found; train it first with `prsr train`")
    config = read_config(run_dir)
    cls = resolve(config["method"], run_dir / CONFIG)
    method = cls(**config["model_config"])
    if device is None:
        device = default_device()
    load_weights(method, run_dir / WEIGHTS, device=device)
    return method.to(device).eval()
