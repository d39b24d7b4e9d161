"""Configuration profiles (`configs/<name>.yaml`): smoke (tests, seconds), quick (CPU minutes, default), paper (GPUs).

A profile is one YAML file and the only place hyper-parameters live: code defaults are not silently
overridden elsewhere. `load_profile("quick")` or `load_profile("path/to/file.yaml")` returns a plain dict.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Dict

import yaml

PROFILE_NAMES = ("smoke", "quick", "paper")
DEFAULT_PROFILE = "quick"


def configs_dir() -> Path:
    """Folder of the YAML profiles: $PRSR_CONFIGS, else `configs/` at the repository root."""
    env = os.environ.get("PRSR_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "configs"


def load_profile(name_or_path: str | os.PathLike | Dict[str, Any] = DEFAULT_PROFILE) -> Dict[str, Any]:
    """Profile dict with keys `name`, `seed`, `data`, `eval`, `methods` (one section per learned method)."""
    if isinstance(name_or_path, dict):
        return copy.deepcopy(name_or_path)
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = configs_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"profile {str(name_or_path)!r} not found at {path}; use one of {', '.join(PROFILE_NAMES)} or a path to a .yaml file"
        )
    with open(path) as f:
        profile = yaml.safe_load(f)
    for key in ("name", "seed", "data", "eval", "methods"):
        if key not in profile:
            raise ValueError(f"profile {path} lacks the top-level key {key!r}")
    return profile


def method_config(profile: Dict[str, Any], method: str) -> Dict[str, Any]:
    """The `methods.<method>` section (keys `model` and `train`) of a profile."""
    try:
        return copy.deepcopy(profile["methods"][method])
    except KeyError:
        raise ValueError(
            f"profile {profile.get('name')!r} has no section methods.{method}; it has: {', '.join(profile['methods'])}"
        ) from None
