"""The schema of a profile: one dataclass per section, a strict checker, and `--set PATH=VALUE` overrides.

Why plain dataclasses (not pydantic / OmegaConf): the profile stays the plain dict the code has always
read (so a run's `config.json` is byte-for-byte what it was), the schema is forty lines anyone can
extend, and no dependency is added. The checker only *checks*: it never fills defaults into the dict
(missing `train:` keys still take `sr_models.trainer.TRAIN_DEFAULTS`, recorded in `config.json`).

Adding a key = adding a field to the section's dataclass below (its default documents the value the
code uses when the key is absent). A new top-level section = a new dataclass + a field on `Profile`.
`methods.<name>.model` is free-form here: its keys are the method's constructor arguments and are
checked against the constructor's signature when the method is built (`check_model_keys`).

Errors (`ProfileError`, a ValueError) name the dotted key and the nearest valid keys (difflib).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

import yaml


class ProfileError(ValueError):
    """A profile (or a `--set` override) names a key the schema does not know, or lacks a required one."""


REQUIRED = object()  # marks a field a profile must give


@dataclass
class DataSection:
    dataset: str = "fashion-mnist"
    train_limit: Optional[int] = None


@dataclass
class EvalSection:
    subset: Optional[int] = None
    batch_size: int = REQUIRED
    grid_inputs: int = 8
    grid_samples: int = 4
    diversity_temperature: float = 1.0


_OPTIMIZER_KEYS = ("optimizer", "lr", "betas", "weight_decay", "momentum", "eps", "rms_decay")


@dataclass
class TrainSection:
    """The shared Trainer's keys (`sr_models.trainer.TRAIN_DEFAULTS`) and the optimiser's (`sr_models.optim`)."""

    steps: int = 1000
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1.0e-3
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    momentum: Optional[float] = None
    eps: float = 1e-8
    rms_decay: float = 0.95
    grad_clip: Optional[float] = None
    bf16: bool = False
    log_every: int = 50
    val_every: int = 250
    val_images: int = 256
    ckpt_every: int = 250
    grid_every: int = 500
    grid_images: int = 8
    sync_bn: bool = False
    # the GAN's discriminator optimiser (`build_optimizer(..., prefix="d_")`); each falls back to the key without d_
    d_optimizer: Optional[str] = None
    d_lr: Optional[float] = None
    d_betas: Optional[List[float]] = None
    d_weight_decay: Optional[float] = None
    d_momentum: Optional[float] = None
    d_eps: Optional[float] = None
    d_rms_decay: Optional[float] = None
    # -- training practices (docs/quality-search.md); absent = off, the run is what it was without them --
    ema_half_life: Optional[float] = None  # weight averaging for eval/sampling: half-life in steps (sr_models/ema.py)
    ema_start: int = 0  # updates before averaging starts (the average copies the weights until then)
    lr_schedule: str = "constant"  # constant | cosine | linear (sr_models/lr_schedule.py)
    lr_warmup: int = 0  # steps of linear warm-up
    lr_min_factor: float = 0.0  # the decay's floor, a fraction of lr in [0, 1]
    lr_decay_steps: Optional[int] = None  # where the decay reaches the floor (null: the run's steps)


@dataclass
class MethodSection:
    model: Dict[str, Any] = field(default_factory=dict)  # constructor kwargs, checked against the class
    train: TrainSection = field(default_factory=TrainSection)


@dataclass
class CornersSection:
    train_size: int = REQUIRED
    valid_size: int = 500
    test_size: int = REQUIRED
    canvas: int = 32  # target side: 16 (4x4 inputs) or 32 (8x8, the paper's task)
    val_purity_images: int = 0  # valid inputs scored for purity at every validation (0: none)
    models: Dict[str, MethodSection] = REQUIRED


@dataclass
class ObserverSection:
    """The machine 2AFC observer (`metrics.observer`); a missing key takes `metrics.observer.OBSERVER_DEFAULTS`."""

    folds: Optional[int] = None
    widths: Optional[List[int]] = None
    steps: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    flip: Optional[bool] = None
    n_boot: Optional[int] = None
    threads: Optional[int] = None


@dataclass
class Profile:
    name: str = REQUIRED
    seed: int = REQUIRED
    data: DataSection = REQUIRED
    eval: EvalSection = REQUIRED
    methods: Dict[str, MethodSection] = REQUIRED
    corners: Optional[CornersSection] = None
    observer: Optional[ObserverSection] = None


def _hints(cls) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp):
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _unknown(path: str, key: str, valid: Iterable[str]) -> ProfileError:
    valid = sorted(valid)
    near = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(n) for n in near)}? " if near else ""
    return ProfileError(f"unknown profile key {path + key!r}; {hint}valid keys here: {', '.join(valid)}")


def _check(value: Any, tp, path: str) -> None:
    tp = _unwrap_optional(tp)
    if dataclasses.is_dataclass(tp):
        if value is None:
            return
        if not isinstance(value, dict):
            raise ProfileError(f"profile key {path.rstrip('.') or '(top)'!r} must be a mapping, got {value!r}")
        hints = _hints(tp)
        for key in value:
            if key not in hints:
                raise _unknown(path, str(key), hints)
        for f in dataclasses.fields(tp):
            if f.default is REQUIRED and f.name not in value:
                raise ProfileError(f"profile lacks the key {path + f.name!r}")
            if f.name in value:
                _check(value[f.name], hints[f.name], f"{path}{f.name}.")
    elif typing.get_origin(tp) is dict:
        if value is None:
            return
        if not isinstance(value, dict):
            raise ProfileError(f"profile key {path.rstrip('.')!r} must be a mapping, got {value!r}")
        _, item = typing.get_args(tp)
        for key, sub in value.items():
            _check(sub, item, f"{path}{key}.")


def check_profile(profile: Dict[str, Any], where: str = "") -> Dict[str, Any]:
    """Raise `ProfileError` for an unknown or missing key anywhere in `profile`; returns it unchanged."""
    try:
        _check(profile, Profile, "")
        _check_practice_ranges(profile)
    except ProfileError as exc:
        raise ProfileError(f"{where}: {exc}" if where else str(exc)) from None
    return profile


def apply_overrides(profile: Dict[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    """Apply `PATH=VALUE` overrides in place (VALUE parsed as YAML: `3`, `1e-4`, `[32, 32]`, `null`, `adam`;
    a string that reads as a number, like YAML 1.1's `1e-4`, becomes a float).

    PATH is dotted (`methods.resnet_l2.train.steps`). A PATH the schema does not know is refused with the
    same message as a bad profile key; a map level that the profile lacks is created (e.g. a `train` key
    the profile leaves at its default).
    """
    for item in overrides:
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            raise ProfileError(f"--set {item!r}: expected PATH=VALUE, e.g. methods.resnet_l2.train.steps=3")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ProfileError(f"--set {item!r}: the value is not valid YAML ({exc})") from None
        if isinstance(value, str):  # YAML 1.1 reads `1e-4` (no dot) as a string; a number is meant
            try:
                value = float(value)
            except ValueError:
                pass
        keys = path.strip().split(".")
        node = profile
        for depth, key in enumerate(keys[:-1]):
            nxt = node.get(key)
            if nxt is None:
                nxt = node[key] = {}
            elif not isinstance(nxt, dict):
                raise ProfileError(f"--set {item!r}: {'.'.join(keys[: depth + 1])!r} is a value, not a section")
            node = nxt
        node[keys[-1]] = value
        try:
            check_profile(profile)
        except ProfileError as exc:
            raise ProfileError(f"--set {item!r}: {exc}") from None
    return profile


def check_model_keys(cls, model_cfg: Dict[str, Any], path: str) -> None:
    """Refuse `model:` keys that `cls.__init__` does not take (unless it takes **kwargs)."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [
        n
        for n, p in params.items()
        if n not in ("self", "channels")
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    for key in model_cfg:
        if key not in valid:
            raise _unknown(path, str(key), valid)


# -- ranges of the training-practice keys (EMA, rate schedule, prior dropout; docs/quality-search.md) --------
def _check_practice_ranges(profile: Dict[str, Any]) -> None:
    """Refuse out-of-range EMA / schedule keys in every `train:` section and `prior_dropout` outside [0, 1)."""
    from . import ema, lr_schedule  # noqa: PLC0415 - they import torch; the schema module stays torch-free

    sections = dict((profile.get("methods") or {}).items())
    corners = profile.get("corners") or {}
    sections.update({f"corners.models.{k}": v for k, v in ((corners.get("models") or {}).items())})
    for name, section in sections.items():
        if not isinstance(section, dict):
            continue
        path = name if name.startswith("corners.") else f"methods.{name}"
        train = section.get("train") or {}
        try:
            ema.check_cfg(train, f"profile key {path}.train:")
            lr_schedule.check_cfg(train, f"profile key {path}.train:")
        except ValueError as exc:
            raise ProfileError(str(exc)) from None
        drop = (section.get("model") or {}).get("prior_dropout")
        if drop is not None and (isinstance(drop, bool) or not isinstance(drop, (int, float)) or not 0 <= drop < 1):
            raise ProfileError(f"profile key {path}.model.prior_dropout must be a number in [0, 1), got {drop!r}")
