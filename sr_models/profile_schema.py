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

from sr_data.corners import CANVASES

from .optim import OPTIMIZERS


class ProfileError(ValueError):
    """A profile (or a `--set` override) names a key the schema does not know, lacks a required one, or gives
    a value out of the key's range."""


REQUIRED = object()  # marks a field a profile must give


@dataclass(frozen=True)
class Range:
    """What a numeric, boolean or enumerated key accepts; checked when the profile loads (`check_profile`).

    kind: 'int' (not bool), 'float' (int or float, not bool), 'bool', 'choice' (one of `choices`),
    'floats' / 'ints' (a list of such, `length` items when given, at least one). low / high: bounds
    (`low_open`: strictly above low; `high_open`: strictly below high). null: None is accepted.
    """

    kind: str
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    null: bool = False
    choices: tuple = ()
    length: Optional[int] = None

    def _scalar_ok(self, v: Any) -> bool:
        if isinstance(v, bool):
            return self.kind == "bool"
        if self.kind in ("int", "ints") and not isinstance(v, int):
            return False
        if self.kind in ("float", "floats") and not isinstance(v, (int, float)):
            return False
        if self.kind == "bool":
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        if self.high is not None and (v >= self.high if self.high_open else v > self.high):
            return False
        return True

    def accepts(self, v: Any) -> bool:
        if v is None:
            return self.null
        if self.kind == "choice":
            return not isinstance(v, (bool, list, dict)) and v in self.choices
        if self.kind in ("ints", "floats"):
            return (
                isinstance(v, list)
                and len(v) >= 1
                and (self.length is None or len(v) == self.length)
                and all(self._scalar_ok(x) for x in v)
            )
        return self._scalar_ok(v)

    def describe(self) -> str:
        """The 'must be ...' text of the error: 'an integer >= 1', 'a number in [0, 1)', 'one of adam, sgd'."""
        if self.kind == "choice":
            text = "one of " + ", ".join(map(str, self.choices))
        elif self.kind == "bool":
            text = "true or false"
        else:
            text = "an integer" if self.kind in ("int", "ints") else "a number"
            if self.low is not None and self.high is not None:
                left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
                text += f" in {left}{self.low:g}, {self.high:g}{right}"
            elif self.low is not None:
                text += f" {'>' if self.low_open else '>='} {self.low:g}"
            if self.kind in ("ints", "floats"):
                text = f"a list of {self.length or 'one or more'} items, each {text}"
        return text + (" or null" if self.null else "")


def _key(default: Any, rule: Range) -> Any:
    """A dataclass field with `default` whose value must satisfy `rule`."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"range": rule})
    return field(default=default, metadata={"range": rule})


LR_SCHEDULES = ("constant", "cosine", "linear")  # sr_models/lr_schedule.py

# the ranges shared by many keys
_POS_INT = Range("int", low=1)
_NONNEG_INT = Range("int", low=0)
_POS_FLOAT = Range("float", low=0, low_open=True)
_NONNEG_FLOAT = Range("float", low=0)
_UNIT_OPEN = Range("float", low=0, high=1, high_open=True)  # decay rates and betas: [0, 1)
_BOOL = Range("bool")


def _or_null(rule: Range) -> Range:
    return dataclasses.replace(rule, null=True)


@dataclass
class DataSection:
    dataset: str = "fashion-mnist"  # checked by sr_data.load_pairs (tests register their own names)
    train_limit: Optional[int] = _key(None, _or_null(_POS_INT))


@dataclass
class EvalSection:
    subset: Optional[int] = _key(None, _or_null(_POS_INT))  # null: the whole test split
    batch_size: int = _key(REQUIRED, _POS_INT)
    grid_inputs: int = _key(8, _POS_INT)
    grid_samples: int = _key(4, _POS_INT)
    diversity_temperature: float = _key(1.0, _POS_FLOAT)


_OPTIMIZER_KEYS = ("optimizer", "lr", "betas", "weight_decay", "momentum", "eps", "rms_decay")
_OPTIMIZER = Range("choice", choices=OPTIMIZERS)
_BETAS = Range("floats", low=0, high=1, high_open=True, length=2)


@dataclass
class TrainSection:
    """The shared Trainer's keys (`sr_models.trainer.TRAIN_DEFAULTS`) and the optimiser's (`sr_models.optim`)."""

    steps: int = _key(1000, _POS_INT)
    batch_size: int = _key(32, _POS_INT)
    optimizer: str = _key("adam", _OPTIMIZER)
    lr: float = _key(1.0e-3, _POS_FLOAT)
    betas: List[float] = _key([0.9, 0.999], _BETAS)
    weight_decay: float = _key(0.0, _NONNEG_FLOAT)
    momentum: Optional[float] = _key(None, _or_null(_NONNEG_FLOAT))
    eps: float = _key(1e-8, _POS_FLOAT)
    rms_decay: float = _key(0.95, _UNIT_OPEN)
    grad_clip: Optional[float] = _key(None, _or_null(_POS_FLOAT))
    bf16: bool = _key(False, _BOOL)
    log_every: int = _key(50, _POS_INT)
    val_every: int = _key(250, _POS_INT)
    val_images: int = _key(256, _NONNEG_INT)
    ckpt_every: int = _key(250, _POS_INT)
    grid_every: int = _key(500, _POS_INT)
    grid_images: int = _key(8, _NONNEG_INT)
    sync_bn: bool = _key(False, _BOOL)
    # the GAN's discriminator optimiser (`build_optimizer(..., prefix="d_")`); each falls back to the key without d_
    d_optimizer: Optional[str] = _key(None, _or_null(_OPTIMIZER))
    d_lr: Optional[float] = _key(None, _or_null(_POS_FLOAT))
    d_betas: Optional[List[float]] = _key(None, _or_null(_BETAS))
    d_weight_decay: Optional[float] = _key(None, _or_null(_NONNEG_FLOAT))
    d_momentum: Optional[float] = _key(None, _or_null(_NONNEG_FLOAT))
    d_eps: Optional[float] = _key(None, _or_null(_POS_FLOAT))
    d_rms_decay: Optional[float] = _key(None, _or_null(_UNIT_OPEN))
    # -- training practices (docs/quality-search.md); absent = off, the run is what it was without them --
    ema_half_life: Optional[float] = _key(None, _or_null(_POS_FLOAT))  # weight averaging: half-life in steps
    ema_start: int = _key(0, _NONNEG_INT)  # updates before averaging starts (the average copies the weights until then)
    lr_schedule: str = _key("constant", Range("choice", choices=LR_SCHEDULES))
    lr_warmup: int = _key(0, _NONNEG_INT)  # steps of linear warm-up
    lr_min_factor: float = _key(0.0, Range("float", low=0, high=1))  # the decay's floor, a fraction of lr
    lr_decay_steps: Optional[int] = _key(None, _or_null(_POS_INT))  # where the decay reaches the floor (null: steps)


@dataclass
class MethodSection:
    model: Dict[str, Any] = field(default_factory=dict)  # constructor kwargs, checked against the class
    train: TrainSection = field(default_factory=TrainSection)


@dataclass
class CornersSection:
    train_size: int = _key(REQUIRED, _POS_INT)
    valid_size: int = _key(500, _POS_INT)
    test_size: int = _key(REQUIRED, _POS_INT)
    canvas: int = _key(32, Range("choice", choices=CANVASES))  # target side: 16 (4x4 inputs) or 32 (8x8, the paper's)
    val_purity_images: int = _key(0, _NONNEG_INT)  # valid inputs scored for purity at every validation (0: none)
    models: Dict[str, MethodSection] = REQUIRED


@dataclass
class ObserverSection:
    """The machine 2AFC observer (`metrics.observer`); a missing key takes `metrics.observer.OBSERVER_DEFAULTS`."""

    folds: Optional[int] = _key(None, _or_null(Range("int", low=2)))  # k-fold: at least two folds
    widths: Optional[List[int]] = _key(None, _or_null(Range("ints", low=1)))
    steps: Optional[int] = _key(None, _or_null(_POS_INT))
    batch_size: Optional[int] = _key(None, _or_null(_POS_INT))
    lr: Optional[float] = _key(None, _or_null(_POS_FLOAT))
    flip: Optional[bool] = _key(None, _or_null(_BOOL))
    n_boot: Optional[int] = _key(None, _or_null(Range("int", low=2)))  # a spread needs two resamples
    threads: Optional[int] = _key(None, _or_null(_POS_INT))
    workers: Optional[int] = _key(None, _or_null(_POS_INT))  # observers trained at once (null: one per free core)


@dataclass
class Profile:
    name: str = REQUIRED
    seed: int = _key(REQUIRED, Range("int"))
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
                rule = f.metadata.get("range")
                if rule is not None and not rule.accepts(value[f.name]):
                    raise ProfileError(
                        f"profile key {path + f.name!r} must be {rule.describe()}, got {value[f.name]!r}"
                    )
                _check(value[f.name], hints[f.name], f"{path}{f.name}.")
    elif typing.get_origin(tp) is dict:
        if value is None:
            return
        if not isinstance(value, dict):
            raise ProfileError(f"profile key {path.rstrip('.')!r} must be a mapping, got {value!r}")
        _, item = typing.get_args(tp)
        for key, sub in value.items():
            _check(sub, item, f"{path}{key}.")


def check_train_keys(cfg: Dict[str, Any], keys: Iterable[str], where: str = "train config") -> None:
    """Refuse values of the `train:` keys `keys` in `cfg` outside their ranges in `TrainSection` (the one place
    those ranges are written); absent keys pass. Raises `ProfileError` naming `where`, the key and the range."""
    rules = {f.name: f.metadata.get("range") for f in dataclasses.fields(TrainSection)}
    for key in keys:
        rule = rules[key]
        if key in cfg and rule is not None and not rule.accepts(cfg[key]):
            raise ProfileError(f"{where} {key!r} must be {rule.describe()}, got {cfg[key]!r}")


def check_warmup_horizon(cfg: Dict[str, Any], where: str = "train config") -> None:
    """Refuse a warm-up that does not end before the decay's horizon (`lr_warmup` < `lr_decay_steps`)."""
    warm, horizon = cfg.get("lr_warmup"), cfg.get("lr_decay_steps")
    if horizon is not None and warm is not None and warm >= horizon:
        raise ProfileError(f"{where} 'lr_warmup' ({warm}) must be below 'lr_decay_steps' ({horizon})")


def check_profile(profile: Dict[str, Any], where: str = "") -> Dict[str, Any]:
    """Raise `ProfileError` for an unknown or missing key anywhere in `profile`; returns it unchanged."""
    try:
        _check(profile, Profile, "")
        _check_warmups_and_dropout(profile)
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


# -- checks across keys: warm-up against the decay's horizon, prior dropout (docs/quality-search.md) ---------
def _check_warmups_and_dropout(profile: Dict[str, Any]) -> None:
    """Refuse a warm-up past the decay's horizon in every `train:` section (the keys' own ranges are checked with
    the rest of `TrainSection`) and `prior_dropout` outside [0, 1)."""
    sections = dict((profile.get("methods") or {}).items())
    corners = profile.get("corners") or {}
    sections.update({f"corners.models.{k}": v for k, v in ((corners.get("models") or {}).items())})
    for name, section in sections.items():
        if not isinstance(section, dict):
            continue
        path = name if name.startswith("corners.") else f"methods.{name}"
        train = section.get("train") or {}
        check_warmup_horizon(train, f"profile key {path}.train:")
        drop = (section.get("model") or {}).get("prior_dropout")
        if drop is not None and (isinstance(drop, bool) or not isinstance(drop, (int, float)) or not 0 <= drop < 1):
            raise ProfileError(f"profile key {path}.model.prior_dropout must be a number in [0, 1), got {drop!r}")
