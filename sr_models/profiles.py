"""Configuration profiles (`sr_models/configs/<name>.yaml`, shipped inside the package): smoke (tests,
seconds), quick (CPU minutes, default), paper (GPUs).

A profile is one YAML file and the only place hyper-parameters live: code defaults are not silently
overridden elsewhere. `load_profile("quick")` or `load_profile("path/to/file.yaml")` returns a plain dict,
checked against the schema in `sr_models.profile_schema` (unknown keys are refused, naming the nearest
valid ones); `overrides` are `PATH=VALUE` strings (`prsr ... --set PATH=VALUE`).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Dict, Iterable

import yaml

from .profile_schema import apply_overrides, check_profile

PROFILE_NAMES = ("smoke", "quick", "paper")
DEFAULT_PROFILE = "quick"


def configs_dir() -> Path:
    """Folder of the YAML profiles: $PRSR_CONFIGS, else `sr_models/configs/` (package data)."""
    env = os.environ.get("PRSR_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parent / "configs"


def load_profile(
    name_or_path: str | os.PathLike | Dict[str, Any] = DEFAULT_PROFILE, overrides: Iterable[str] = ()
) -> Dict[str, Any]:
    """Profile dict with keys `name`, `seed`, `data`, `eval`, `methods` (one section per learned method),
    optionally `corners`; `overrides` (`PATH=VALUE`) applied on top. Unknown keys -> `ProfileError`."""
    if isinstance(name_or_path, dict):
        return apply_overrides(check_profile(copy.deepcopy(name_or_path), "profile"), overrides)
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = configs_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"profile {str(name_or_path)!r} not found at {path}; "
            f"use one of {', '.join(PROFILE_NAMES)} or a path to a .yaml file"
        )
    with open(path) as f:
        profile = yaml.safe_load(f)
    return apply_overrides(check_profile(profile, f"profile {path}"), overrides)


def method_config(profile: Dict[str, Any], method: str) -> Dict[str, Any]:
    """The `methods.<method>` section (keys `model` and `train`) of a profile."""
    try:
        return copy.deepcopy(profile["methods"][method])
    except KeyError:
        raise ValueError(
            f"profile {profile.get('name')!r} has no section methods.{method}; it has: {', '.join(profile['methods'])}"
        ) from None
