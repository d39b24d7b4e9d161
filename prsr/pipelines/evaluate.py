"""`prsr eval`: predict the evaluation subset once per method, score every image, write Table 1.

Reads: the test split (`sr_data.load_pairs`), trained runs (`runs/<dataset>/<method>/`).
Writes (DESIGN.md "Files the stages write"): `predictions/truth.npz`, `predictions/<row>.npz`,
`metrics.csv`, `table1.{csv,md,tex}`, `table1_seeds.csv`, `table1.json`, `observer.csv` (machine fool rate
per row and of the study's golden pairs, with the observer's seconds; `observer.json` caches it),
`likelihood.csv` (test NLL of the likelihood models, and of the pixel-recursive model's conditioning network
alone), `fig6_grid.png`, `fig5_diversity.png` under `runs/<dataset>/`.

Predictions are reused when they were made from the same checkpoint, seed and image ids (the npz
stores a `meta` JSON string), so re-running `prsr eval` after training one more method only predicts
that method. Rows imported with `prsr import` (`prsr/pipelines/imported.py`) are read, never
predicted or rewritten, and scored like every other row; Table 1 lists the built-in rows in registry
order, then the imported rows alphabetically.

Under `torchrun` the images of each row to predict are shared over the ranks in chunks, resumable with
`resume=True`, and `predictions/manifest.json` records what made each row (`prsr/pipelines/sharded.py`).

With `n_seeds > 1` every learned method is evaluated once per training seed on the same images (the
layout of `prsr/pipelines/seeds.py`); `table1_seeds.csv` holds the per-seed rows and `table1.csv` their
mean, `n_seeds` and `<metric>_sd`. Every evaluation writes `table1.json`: the conventions behind each
number and the environments the rows came from (`prsr/pipelines/conventions.py`).

The stages, each a function below: `_start` (profile, devices, truth) -> `choose_rows` -> `predict_or_reuse`
(per seed) -> `score_seed` (metrics.csv, observer) -> `write_outputs` (Table 1 files, likelihood, figures).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
import torch

import sr_data
from analysis import fool_rates
from baselines.registry import (
    METHODS,
    MethodSpec,
    get_method,
    load_method,
    row_labels,
    short_labels,
    table_rows,
)
from metrics import bits_per_dim
from metrics.figures import write_diversity_grid, write_method_grid
from metrics.machine_eval import machine_rates
from metrics.observer_pairs import write_observer_pairs
from metrics.registry import IMAGE_METRICS, score_images
from metrics.table import (
    METRIC_COLUMNS,
    PER_SEED_COLUMNS,
    combine_seeds,
    fill_fooled,
    fill_machine,
    table1_from_metrics,
    write_table1,
)
from prsr.pipelines import sharded
from prsr.pipelines.conventions import write_table1_json
from prsr.pipelines.imported import imported_rows, read_meta, short_label
from prsr.pipelines.seeds import seed_list, seed_root
from sr_data.errors import DataError
from sr_data.files import atomic_savez
from sr_data.paths import runs_root
from sr_models import distributed as dist_utils
from sr_models.distributed import default_device  # re-exported: `prsr.pipelines.evaluate.default_device`
from sr_models.profiles import load_profile
from sr_models.trainer import make_batch
from study_app.builder import golden_images  # the study's golden degradation, not a copy of it

_log = logging.getLogger(__name__)


@dataclass
class EvalLayout:
    """Where one dataset's evaluation files live: `runs/<dataset>/...`."""

    root: Path

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def truth(self) -> Path:
        return self.predictions / "truth.npz"

    def prediction(self, row: str) -> Path:
        return self.predictions / f"{row}.npz"

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    def run_dir(self, method: str) -> Path:
        return self.root / method


def evaluation_indices(n_test: int, subset: Optional[int], seed: int) -> np.ndarray:
    """The fixed evaluation subset: the first `subset` entries of a seeded permutation of the test split, sorted.

    `subset=None` (or >= n_test) means the whole test split.
    """
    if subset is None or subset >= n_test:
        return np.arange(n_test)
    perm = np.random.default_rng(seed).permutation(n_test)
    return np.sort(perm[:subset])


def evaluation_subset(dataset: str, profile, seed: Optional[int] = None, data_root=None):
    """(test split, sorted indices of the evaluation subset) as `prsr eval` uses them for `profile`
    (a loaded profile dict; `seed` defaults to the profile's)."""
    seed = profile["seed"] if seed is None else seed
    test = sr_data.load_pairs(dataset, "test", root=data_root)
    return test, evaluation_indices(len(test.ids), profile["eval"].get("subset"), seed)


def _file_digest(path: Path, algorithm: str = "sha1") -> str:
    """Hex digest of a file's bytes (sha1 for the reuse fingerprints; provenance uses sha256)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_truth(layout: EvalLayout) -> Dict[str, np.ndarray]:
    """`truth.npz` as a dict with `lr` uint8 [N,C,8,8], `hr` uint8 [N,C,32,32], `ids` str [N]."""
    if not layout.truth.is_file():
        raise FileNotFoundError(f"{layout.truth} does not exist; run `prsr eval` first")
    with np.load(layout.truth, allow_pickle=False) as z:
        return {k: z[k] for k in ("lr", "hr", "ids")}


def ensure_truth(layout: EvalLayout, test_data, indices: np.ndarray) -> Dict[str, np.ndarray]:
    """Write (or reuse) `truth.npz` for the evaluation subset.

    If an older `truth.npz` holds other image ids (the subset changed), the whole old `predictions/`
    folder is moved aside to `predictions.old-<time>` rather than overwritten.
    """
    truth = {
        "lr": np.ascontiguousarray(test_data.lr[indices]),
        "hr": np.ascontiguousarray(test_data.hr[indices]),
        "ids": np.asarray(test_data.ids)[indices].astype(str),
    }
    if layout.truth.is_file():
        old = load_truth(layout)
        if np.array_equal(old["ids"], truth["ids"]) and np.array_equal(old["hr"], truth["hr"]):
            return old
        backup = layout.predictions.with_name(f"predictions.old-{time.strftime('%Y%m%d-%H%M%S')}")
        warnings.warn(f"evaluation subset changed: moved the old predictions to {backup}")
        layout.predictions.rename(backup)
    layout.predictions.mkdir(parents=True, exist_ok=True)
    atomic_savez(layout.truth, **truth)
    return truth


def available_methods(layout: EvalLayout, requested: Optional[Sequence[str]] = None) -> List[MethodSpec]:
    """Methods to evaluate: every non-learned method, and learned ones that have a trained run.

    A method asked for by name (`requested`) that has no trained run is an error, not a silent skip.
    """
    names = list(requested) if requested else list(METHODS)
    specs = []
    for name in names:
        spec = get_method(name)
        if spec.learned and not (layout.run_dir(name) / "model.safetensors").is_file():
            if requested:
                raise FileNotFoundError(
                    f"method {name!r} has no trained run in {layout.run_dir(name)}; "
                    f"train it with `prsr train --method {name} --dataset {layout.root.name}`"
                )
            continue
        specs.append(spec)
    return specs


def _train_limit(run: "EvalRun"):
    """The profile's `data.train_limit`: the training pairs the learned rows saw, and the nearest neighbour's too."""
    return (run.profile.get("data") or {}).get("train_limit")


def build_method(spec: MethodSpec, run: "EvalRun"):
    """Instantiate a method for evaluation (learned ones from their checkpoint, in eval mode). The nearest
    neighbour searches the training pairs the learned rows trained on: the first `data.train_limit` of them."""
    cls = spec.load_class()
    if not spec.learned:  # built from nothing, or from the training pairs (nearest neighbour)
        if getattr(cls, "needs_train_pairs", False):
            pairs = sr_data.load_pairs(run.dataset, "train", root=run.data_root)
            return cls(sr_data.first_pairs(pairs, _train_limit(run)))
        return cls()
    return load_method(run.layout.run_dir(spec.name), device=run.device)


def _method_fingerprint(spec: MethodSpec, run: "EvalRun") -> str:
    if spec.learned:
        source = _file_digest(run.layout.run_dir(spec.name) / "model.safetensors")
    else:
        source = f"{spec.name}:{run.dataset}"  # deterministic given the training data
        limit = _train_limit(run)
        if limit is not None and getattr(spec.load_class(), "needs_train_pairs", False):
            source += f":first {limit}"  # another search set: not the predictions of the whole split
    return json.dumps({"method": spec.name, "source": source, "seed": run.seed}, sort_keys=True)


def _row_seed(seed: int, row: str) -> int:
    # a distinct, stable stream per Table-1 row, so adding a row does not change the others' samples
    return (seed * 1_000_003 + int(hashlib.sha1(row.encode()).hexdigest()[:8], 16)) % (2**63)


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def _to_device_float(x: np.ndarray, device) -> torch.Tensor:
    return sr_data.to_float(torch.from_numpy(np.ascontiguousarray(x))).to(device)


@torch.no_grad()
def predict_rows(
    method,
    truth,
    rows: Sequence[str],
    batch_size: int,
    seed: int,
    device,
    layout: Optional[EvalLayout] = None,
    meta: str = "",
    info=None,
    resume: bool = False,
) -> Optional[Dict[str, dict]]:
    """Run the method's decoders for `rows` over the evaluation inputs, in chunks shared over the ranks
    (`prsr/pipelines/sharded.py`) -> on rank 0 {row: {"sr": uint8 [N,C,32,32], "ranks": [...], "resumed_ids": [...]}},
    on other ranks None. `layout` None: a temporary chunk folder (one process)."""
    info = info or dist_utils.DistInfo(device=torch.device(device))
    decoders = method.decodings()
    draws = int(np.prod(truth["hr"].shape[1:]))  # the sampler's uniforms per image: one per sub-pixel
    to_u8 = lambda sr: sr_data.to_uint8(sr.float().cpu()).numpy()  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        predictions = layout.predictions if layout is not None else Path(tmp)
        out = {
            row: sharded.predict_row_chunks(
                decoders[row],
                truth["lr"],
                truth["ids"],
                row,
                _row_seed(seed, row),
                draws,
                batch_size,
                meta,
                predictions,
                info,
                device,
                _to_device_float,
                to_u8,
                resume,
            )
            for row in rows
        }
    return out if info.is_main else None


@torch.no_grad()
def ground_truth_bpd(method, truth, batch_size: int, device) -> np.ndarray:
    """Bits/dim of the ground truth under a likelihood model, [N] float64."""
    n_sub = int(np.prod(truth["hr"].shape[1:]))
    vals = []
    for sl in _batches(len(truth["lr"]), batch_size):
        lr = _to_device_float(truth["lr"][sl], device)
        hr = torch.from_numpy(np.ascontiguousarray(truth["hr"][sl])).to(device)
        vals.append(bits_per_dim(-method.log_prob(lr, hr), n_sub).cpu().numpy())
    return np.concatenate(vals)


@torch.no_grad()
def likelihood_summary(method, truth, batch_size: int, device) -> Dict[str, float]:
    """The method's own validation scalars (e.g. `nll_bpd`, `cond_nll_bpd`) over the evaluation images,
    averaged with batch-size weights: for the pixel-recursive model this gives the test NLL of the full
    model and of its conditioning network alone."""
    totals: Dict[str, float] = {}
    n = len(truth["lr"])
    for sl in _batches(n, batch_size):
        scalars = method.validation_step(make_batch(truth["lr"][sl], truth["hr"][sl], device))
        for key, value in scalars.items():
            totals[key] = totals.get(key, 0.0) + float(value) * (sl.stop - sl.start)
    return {key: value / n for key, value in totals.items()}


def _load_prediction(path: Path, ids: np.ndarray, meta: str) -> Optional[dict]:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z or str(z["meta"]) != meta or not np.array_equal(z["ids"], ids):
            return None
        return {k: z[k] for k in z.files}


def score_rows(
    truth, predictions: Dict[str, np.ndarray], nll: Dict[str, Optional[np.ndarray]], batch_size: int = 500
) -> pd.DataFrame:
    """Per-image metrics for every row -> DataFrame with DESIGN.md's metrics.csv columns."""
    frames = []
    hr_all = torch.from_numpy(truth["hr"])
    lr_all = torch.from_numpy(truth["lr"])
    for row, sr_u8 in predictions.items():
        cols = {k: [] for k in IMAGE_METRICS}
        sr_all = torch.from_numpy(sr_u8)
        for sl in _batches(len(sr_u8), batch_size):
            sr, hr, lr = sr_data.to_float(sr_all[sl]), sr_data.to_float(hr_all[sl]), sr_data.to_float(lr_all[sl])
            for k, v in score_images(sr, hr, lr).items():
                cols[k].append(v.double().numpy())
        frame = pd.DataFrame(
            {"method": row, "image_id": truth["ids"], **{k: np.concatenate(v) for k, v in cols.items()}}
        )
        frame["nll_bpd"] = nll.get(row) if nll.get(row) is not None else np.nan
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[["method", "image_id", *METRIC_COLUMNS]]


def observe_rows(
    truth, predictions: Dict[str, np.ndarray], observer_cfg, layout: EvalLayout, seed: int, device, log
) -> pd.DataFrame:
    """The machine observer (metrics/observer.py) on every row and on the study's golden pairs (bicubic + noise,
    made by the study's own `golden_images`); writes `observer.csv` (with the seconds per row) and
    `observer_pairs.csv` (each pair's scores and outcome, `metrics.observer_pairs`)."""
    rows = {**predictions, "golden": golden_images(truth["lr"], seed)}
    machine = machine_rates(
        truth["hr"], rows, observer_cfg, seed=seed, device=device, cache_path=layout.root / "observer.json", log=log
    )
    machine.to_csv(layout.root / "observer.csv", index=False)
    write_observer_pairs(layout.root / "observer_pairs.csv", machine, truth["ids"])  # per-pair outcomes
    return machine


@dataclass
class EvalRun:
    """What the stages of one `prsr eval` share: the profile, one seed's layout and seed, devices, options."""

    dataset: str
    profile: dict
    layout: EvalLayout
    seed: int
    device: torch.device
    info: dist_utils.DistInfo
    data_root: object
    resume: bool
    log: Callable[[str], object]

    def for_seed(self, seed: int, base_seed: int) -> "EvalRun":
        """The same evaluation for training seed `seed`: its runs and predictions under `seed_root`."""
        root = seed_root(self.layout.root, seed, base_seed)
        return replace(self, layout=EvalLayout(root), seed=seed)


def _start(dataset, profile, runs_dir, device, seed, data_root, resume, log):
    """Profile, distributed set-up and the evaluation images -> (EvalRun of the base seed, truth, n_test).

    One process initialises nothing (rank 0 of 1); under torchrun rank 0 alone writes `truth.npz`."""
    sharded._written[0] = 0  # the interruption test hook counts the chunks of this evaluation
    profile = load_profile(profile)
    seed = profile["seed"] if seed is None else seed
    info = dist_utils.setup(device)
    device = device or (info.device if info.distributed else default_device())
    run = EvalRun(
        dataset, profile, EvalLayout(runs_root(runs_dir) / dataset), seed, device, info, data_root, resume, log
    )
    test, indices = evaluation_subset(dataset, profile, seed, data_root)
    if info.is_main:  # one writer of truth.npz (and of the move-aside of an old subset)
        truth = ensure_truth(run.layout, test, indices)
    dist_utils.barrier(info)
    if not info.is_main:
        truth = load_truth(run.layout)
    log(
        f"evaluation subset: {len(indices)} of {len(test.ids)} test images of {dataset} "
        f"(profile {profile['name']}, seed {seed})"
    )
    return run, truth, len(test.ids)


def choose_rows(layout: EvalLayout, truth, methods: Optional[Sequence[str]]):
    """(built-in method specs to evaluate, imported rows {name: record}) for the `methods` asked for
    (None: every available method and every imported row). Unknown names are an error."""
    imported = {
        name: rec for name, rec in imported_rows(layout.predictions, truth["ids"]).items() if name not in table_rows()
    }  # a built-in name is the built-in row (and guarded in `_refuse_imported`)
    if methods is None:
        return available_methods(layout), imported
    unknown = [m for m in methods if m not in METHODS and m not in imported]
    if unknown:
        raise ValueError(
            f"unknown method {unknown[0]!r}; known methods: {', '.join(METHODS)}; "
            f"imported in {layout.predictions}: {', '.join(imported) or 'none'}"
        )
    builtin = [m for m in methods if m in METHODS]
    specs = available_methods(layout, builtin) if builtin else []
    return specs, {name: rec for name, rec in imported.items() if name in methods}


def _refuse_imported(layout: EvalLayout, rows: Sequence[str]) -> None:
    """An imported file is only ever read: import refuses built-in names, so this is a hand-made one."""
    for row in rows:
        if layout.prediction(row).is_file() and read_meta(layout.prediction(row)) is not None:
            raise DataError(
                f"{layout.prediction(row)} was written by `prsr import` but {row!r} is a built-in "
                "row; `prsr eval` does not overwrite it: move it away or rename it"
            )


def _predict_missing(run: EvalRun, spec: MethodSpec, truth, meta: str, missing: Sequence[str]):
    """Predict the rows `missing` of `spec` (every rank its share); rank 0 saves `<row>.npz` and the
    manifest entries -> (the built method, {row: saved arrays} on rank 0, {} elsewhere)."""
    t0, info, batch_size = time.time(), run.info, run.profile["eval"]["batch_size"]
    method = build_method(spec, run)
    new = predict_rows(method, truth, missing, batch_size, run.seed, run.device, run.layout, meta, info, run.resume)
    if not info.is_main:
        return method, {}
    has_nll = getattr(method, "has_likelihood", False)
    row_nll = ground_truth_bpd(method, truth, batch_size, run.device) if has_nll else None
    source, saved = json.loads(meta)["source"], {}
    for row, got in new.items():
        arrays = {"sr": got["sr"], "ids": truth["ids"], "meta": np.array(meta)}
        if row_nll is not None:
            arrays["nll_bpd"] = row_nll
        atomic_savez(run.layout.prediction(row), **arrays)
        saved[row] = arrays
        entry = {
            "method": spec.name,
            "checkpoint": source,
            "seed": run.seed,
            "ids_sha1": sharded.ids_hash(truth["ids"]),
            "n_images": len(truth["ids"]),
            "world_size": info.world_size,
            "ranks": got["ranks"],
            "resumed_ids": got["resumed_ids"],
        }
        sharded.write_manifest(run.layout.predictions, {row: entry})
        sharded.finish_row(run.layout.predictions, row)
    over = f" over {info.world_size} ranks" if info.distributed else ""
    run.log(f"{spec.name}: predicted {', '.join(missing)} in {time.time() - t0:.1f} s{over}")
    return method, saved


def predict_or_reuse(run: EvalRun, specs: Sequence[MethodSpec], truth, want_models: bool = True):
    """Every row of `specs`, reused from `<row>.npz` when made from the same checkpoint, seed and ids, else
    predicted -> on rank 0 ({row: sr uint8 [N,C,32,32]}, {row: nll bits/dim [N] or None}, {method: model of
    the likelihood methods} when `want_models`); None on the other ranks."""
    predictions: Dict[str, np.ndarray] = {}
    nll: Dict[str, Optional[np.ndarray]] = {}
    models = {}
    for spec in specs:
        meta = _method_fingerprint(spec, run)
        cached = {row: _load_prediction(run.layout.prediction(row), truth["ids"], meta) for row in spec.rows}
        # rank 0's view decides, so every rank enters the same rows' barriers
        missing = dist_utils.broadcast_object([row for row, c in cached.items() if c is None], run.info)
        _refuse_imported(run.layout, missing)
        method = None
        if missing:
            method, saved = _predict_missing(run, spec, truth, meta, missing)
            cached.update(saved)
        if not run.info.is_main:
            continue
        if not missing:
            run.log(f"{spec.name}: reusing saved predictions" + (f" (seed {run.seed})" if spec.learned else ""))
        for row in spec.rows:
            predictions[row] = cached[row]["sr"]
            nll[row] = cached[row].get("nll_bpd")
        if want_models and spec.learned and getattr(spec.load_class(), "has_likelihood", False):
            models[spec.name] = method or build_method(spec, run)
    return (predictions, nll, models) if run.info.is_main else None


def _seed_specs(run: EvalRun, specs: Sequence[MethodSpec]) -> List[MethodSpec]:
    """The learned methods of `specs`, each of which must have a run for `run.seed` (an extra seed)."""
    learned = [spec for spec in specs if spec.learned]
    for spec in learned:
        if not (run.layout.run_dir(spec.name) / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"method {spec.name!r} has no trained run for seed {run.seed} in {run.layout.run_dir(spec.name)}; "
                f"train the seeds with `prsr train --method {spec.name} --dataset {run.dataset} --seeds N`"
            )
    return learned


def score_seed(run: EvalRun, truth, predictions, nll, order: Sequence[str]) -> pd.DataFrame:
    """Per-image metrics (`metrics.csv`) and the machine observer (`observer.csv`) of one seed's rows,
    both under `run.layout.root` -> that seed's Table 1 rows (`PER_SEED_COLUMNS`, rates in percent)."""
    run.layout.root.mkdir(parents=True, exist_ok=True)
    per_image = score_rows(truth, predictions, nll)
    per_image.to_csv(run.layout.metrics_csv, index=False)
    table = table1_from_metrics(per_image, order=order)
    table["machine_se"] = np.nan
    if run.profile.get("observer") is not None:
        machine = observe_rows(truth, predictions, run.profile["observer"], run.layout, run.seed, run.device, run.log)
        table = fill_machine(table, machine)
        se = machine.set_index("method")["machine_se"]
        table["machine_se"] = [float(se.get(m, np.nan)) for m in table["method"]]
    else:
        run.log(f"profile {run.profile['name']} has no observer: section; Table 1's machine_* columns stay empty")
    table["seed"] = run.seed
    return table


def write_outputs(run: EvalRun, truth, table, predictions, models, labels, shorts) -> List[Path]:
    """Table 1 (`table1.{csv,md,tex}`), `likelihood.csv` of the likelihood models, Fig. 6 and Fig. 5 grids
    of the base seed -> the paths written."""
    ev, root = run.profile["eval"], run.layout.root
    n_images = len(truth["ids"])
    title = f"Table 1 - {run.dataset} (profile {run.profile['name']}, {n_images} test images)"
    outputs = write_table1(table, root / "table1", title=title, labels=labels)
    if models:
        rows = [
            {"method": name, "images": n_images, **likelihood_summary(m, truth, ev["batch_size"], run.device)}
            for name, m in models.items()
        ]
        pd.DataFrame(rows).to_csv(root / "likelihood.csv", index=False)
        outputs.append(root / "likelihood.csv")
        for row in rows:
            extra = ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k.endswith("bpd"))
            run.log(f"{row['method']}: test {extra} (bits/dim over {row['images']} images)")
    grid_inputs = ev.get("grid_inputs", 8)
    outputs.append(write_method_grid(root / "fig6_grid.png", truth, predictions, n=grid_inputs, labels=shorts))
    if run.profile.get("observer") is not None:
        outputs.append(root / "observer.csv")
    if "pixel_recursive" in models:
        diversity = write_diversity_grid(
            root / "fig5_diversity.png",
            models["pixel_recursive"],
            truth,
            n_inputs=grid_inputs,
            n_samples=ev.get("grid_samples", 4),
            temperature=ev.get("diversity_temperature", 1.0),
            seed=run.seed,
            device=run.device,
        )
        outputs.append(diversity)
    return outputs


def evaluate(
    dataset: str,
    profile,
    runs_dir: str | os.PathLike | None = None,
    methods: Optional[Sequence[str]] = None,
    data_root=None,
    study_db: Optional[str] = None,
    device: Optional[torch.device] = None,
    seed: Optional[int] = None,
    log=None,
    resume: bool = False,
    n_seeds: int = 1,
) -> Optional[pd.DataFrame]:
    """The whole `prsr eval` for one dataset; returns Table 1 as a DataFrame. Progress lines go to
    `log(text)` (default: this module's logger at INFO).

    `n_seeds`: learned methods trained with seeds S..S+n_seeds-1 (S = `seed`, default the profile's) are
    each evaluated on the same images; Table 1 holds their mean and sample SD (`prsr/pipelines/seeds.py`).
    Under `torchrun` (WORLD_SIZE > 1) every rank predicts its share of each missing row's images
    (`prsr/pipelines/sharded.py`), and rank 0 alone gathers, scores and writes every file; the other
    ranks write only their chunk files and return None. `resume`: reuse the chunk files an interrupted
    evaluation left (same checkpoint, seed and ids); without it a row missing its `<row>.npz` is
    predicted from scratch.
    """
    was_initialised = torch.distributed.is_available() and torch.distributed.is_initialized()
    run, truth, n_test = _start(dataset, profile, runs_dir, device, seed, data_root, resume, log or _log.info)
    seeds = seed_list(run.seed, n_seeds)
    specs, imported = choose_rows(run.layout, truth, methods)
    runs = [run] + [run.for_seed(k, run.seed) for k in seeds[1:]]
    extra_specs = [_seed_specs(r, specs) for r in runs[1:]]  # refused before any prediction when a seed is missing
    predicted = [predict_or_reuse(run, specs, truth)]
    predicted += [predict_or_reuse(r, s, truth, want_models=False) for r, s in zip(runs[1:], extra_specs)]
    if run.info.distributed and not was_initialised:
        dist_utils.finish()  # the rest is rank 0's alone: no collective follows
    if not run.info.is_main:
        return None
    for name, rec in imported.items():  # alphabetical, after the built-in rows
        run.log(f"{name}: imported from {rec['meta'].get('source', '?')}")
    per_seed = []
    for r, (predictions, nll, _) in zip(runs, predicted):
        # the extra seeds re-predict only the learned rows; the others are the base seed's (same images)
        predictions = {**predicted[0][0], **predictions, **{name: rec["sr"] for name, rec in imported.items()}}
        nll = {**predicted[0][1], **nll, **{name: None for name in imported}}  # an outside method's NLL: unknown
        per_seed.append(score_seed(r, truth, predictions, nll, order=[*table_rows(), *imported]))
    seeds_table = pd.concat(per_seed, ignore_index=True)[PER_SEED_COLUMNS]
    seeds_table.to_csv(run.layout.root / "table1_seeds.csv", index=False)
    table = per_seed[0].drop(columns=["machine_se", "seed"])
    if study_db:  # the reported +- is the jackknife SE over raters; the GLMM check belongs to `prsr analyze`
        table = fill_fooled(table, fool_rates(study_db, glmm=False))
    table = combine_seeds(seeds_table, table)
    labels = {**row_labels(), **{name: rec["label"] for name, rec in imported.items()}}
    shorts = {**short_labels(), **{name: short_label(rec["label"]) for name, rec in imported.items()}}
    base_predictions = {**predicted[0][0], **{name: rec["sr"] for name, rec in imported.items()}}
    outputs = write_outputs(run, truth, table, base_predictions, predicted[0][2], labels, shorts)
    outputs += [run.layout.metrics_csv, run.layout.root / "table1_seeds.csv"]
    outputs.append(write_table1_json(run, truth, n_test, seeds, [s.name for s in specs if s.learned]))
    run.log("wrote " + ", ".join(str(p) for p in outputs))
    table.attrs["labels"] = labels  # the long labels, imported rows' included
    return table
