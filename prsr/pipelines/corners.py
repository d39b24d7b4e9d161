"""The two-corners experiment (the paper's Fig. 2): why pixel-independent losses fail on multimodal targets.

Three models learn the same task — the input says *what* item (it sits in the centre) but not *where* the
target puts it (top-left or bottom-right quadrant, 50/50):
- L2 regression (`resnet_l2`): its prediction, which averages the two modes;
- per-pixel cross-entropy (`pixel_ce`): an independent sample per sub-pixel;
- the pixel-recursive model (`pixel_recursive`): a sample at τ = 1.0.
The canvas is the profile's `corners.canvas` (32: 8x8 -> 32x32 as the paper's task; 16: 4x4 -> 16x16, the
`quick` default, where the same modules learn the long-range choice within a CPU budget). Each output is
scored for mode purity and balance (`metrics.corners`), also during training on `val_purity_images` valid
inputs at every validation (the `purity`, `balance`, `n_blank` columns of each run's `valid` log rows).

Written to `runs/corners/` (`runs/corners_<S>x<S>/` when `canvas` overrides the profile's):
- `<model>/` the three runs;
- `results.csv` (`model, purity, balance, n_samples, n_blank`), `samples.npz` (`targets` and one uint8
  [N, C, S, S] array per model: exactly what was scored), `fig2.png`;
- `purity_vs_steps.csv` (`model, step, purity, balance, n_blank`, from the runs' validation logs);
- `diagnostics.json`: the pixel-recursive model's log-probability of a blank image, in bits, split into the
  top and bottom halves (raster order: the top half holds the top-left item slot) and into quadrants.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, Optional

import numpy as np
import pandas as pd
import torch

import sr_data
from baselines.registry import get_method
from metrics.corners import mode_purity
from metrics.figures import image_sheet  # the same grid drawing as Fig. 5/6
from metrics.likelihood import bits_per_dim
from sr_data.device import default_device
from sr_data.files import atomic_write
from sr_data.paths import runs_root
from sr_models import checkpoint as ckpt
from sr_models.modes import eval_mode
from sr_models.profile_schema import check_model_keys
from sr_models.profiles import load_profile
from sr_models.runlog import read_log
from sr_models.trainer import Trainer

CORNER_MODELS = ("resnet_l2", "pixel_ce", "pixel_recursive")
RESULT_COLUMNS = ["model", "purity", "balance", "n_samples", "n_blank"]

_log = logging.getLogger(__name__)


def draw_outputs(
    name: str, method, lr: torch.Tensor, generator: torch.Generator, batch_size: int = 200
) -> torch.Tensor:
    """One output per input as the experiment defines it -> float [N, C, S, S] in [0, 1]."""
    outs = []
    with eval_mode(method), torch.no_grad():
        for start in range(0, len(lr), batch_size):
            x = lr[start : start + batch_size]
            if name == "resnet_l2":
                outs.append(method.predict(x))
            elif name == "pixel_recursive":
                outs.append(method.sample(x, temperature=1.0, generator=generator, progress=False))
            else:  # pixel_ce draws every sub-pixel independently
                outs.append(method.sample(x, temperature=1.0, generator=generator))
    return torch.cat(outs).float().cpu()


def purity_probe(name: str, lr: torch.Tensor, targets: torch.Tensor, seed: int) -> Callable[..., Dict[str, float]]:
    """`fn(method)` for `Trainer(extra_validation=...)`: purity, balance and n_blank of one output per input
    in `lr` (float [n, C, S/4, S/4]), the same noise at every validation (a fresh generator seeded `seed`)."""

    def probe(method) -> Dict[str, float]:
        device = next(method.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed)
        s = mode_purity(draw_outputs(name, method, lr.to(device), gen), targets)
        return {"purity": s["purity"], "balance": s["balance"], "n_blank": float(s["n_blank"])}

    return probe


@torch.no_grad()
def blank_image_bits(model, lr: torch.Tensor, batch_size: int = 200) -> Dict[str, float]:
    """-log2 p(blank | x) of the pixel-recursive `model` for an all-zero target, split by region, mean over
    the inputs `lr` float [N, 1, S/4, S/4]: keys `total`, `top_half` (rows 0..S/2-1, which hold the top-left
    slot; ideal ~1 bit, the choice of corner), `bottom_half` (ideal: large, an item must appear),
    `top_left`, `top_right`, `bottom_left`, `bottom_right` (quadrants), and `n_inputs`. Eval mode."""
    sums: Dict[str, float] = {}
    with eval_mode(model):
        for start in range(0, len(lr), batch_size):
            x = lr[start : start + batch_size]
            side = model.hr_size
            hr = torch.zeros(x.shape[0], model.channels, side, side, dtype=torch.uint8, device=x.device)
            a, b = model(x, hr)  # [B, 256, C, S, S]
            nats = -torch.log_softmax((a + b).float(), dim=1)[:, 0]  # level 0 everywhere: [B, C, S, S]
            # bits of each sub-pixel (bits/dim of one sub-pixel), float64, then summed over channels: [B, S, S]
            bits = bits_per_dim(nats.flatten(), 1).view(nats.shape).sum(dim=1)
            h = side // 2
            parts = {
                "total": bits.sum(dim=(1, 2)),
                "top_half": bits[:, :h].sum(dim=(1, 2)),
                "bottom_half": bits[:, h:].sum(dim=(1, 2)),
                "top_left": bits[:, :h, :h].sum(dim=(1, 2)),
                "top_right": bits[:, :h, h:].sum(dim=(1, 2)),
                "bottom_left": bits[:, h:, :h].sum(dim=(1, 2)),
                "bottom_right": bits[:, h:, h:].sum(dim=(1, 2)),
            }
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.sum())
    n = len(lr)
    return {**{k: v / n for k, v in sums.items()}, "n_inputs": n}


def purity_vs_steps(root: Path) -> pd.DataFrame:
    """`model, step, purity, balance, n_blank` from the `valid` rows of each run's log.csv under `root`."""
    rows = []
    for name in CORNER_MODELS:
        if not (root / name / "log.csv").is_file():
            continue
        for r in read_log(root / name, split="valid"):
            if r.get("purity") not in (None, ""):
                rows.append(
                    {
                        "model": name,
                        "step": int(r["step"]),
                        "purity": float(r["purity"]),
                        "balance": float(r["balance"]),
                        "n_blank": int(float(r["n_blank"])),
                    }
                )
    return pd.DataFrame(rows, columns=["model", "step", "purity", "balance", "n_blank"])


def run_corners(
    profile="quick",
    runs_dir: str | os.PathLike | None = None,
    data_root=None,
    seed: Optional[int] = None,
    fresh: bool = False,
    device=None,
    log=None,
    canvas: Optional[int] = None,
) -> pd.DataFrame:
    """Train the three models on the corners data (resuming or reusing finished runs; `fresh` moves old
    runs aside first), sample, score, diagnose; returns the results table. `canvas` (16 or 32) overrides
    the profile's `corners.canvas`; its runs then go to `runs/corners_<S>x<S>/`. Progress lines go to
    `log(text)` (default: this module's logger at INFO)."""
    log = log or _log.info
    profile = load_profile(profile)
    cfg = profile["corners"]
    seed = profile["seed"] if seed is None else seed
    device = device or default_device()
    default_canvas = int(cfg.get("canvas", 32))
    canvas = sr_data.corners.check_canvas(default_canvas if canvas is None else canvas)
    root = runs_root(runs_dir) / ("corners" if canvas == default_canvas else f"corners_{canvas}x{canvas}")
    data = _corner_data(cfg, seed, data_root, canvas, device)

    results, outputs, methods = [], {}, {}
    for name in CORNER_MODELS:
        method = _train_model(name, cfg, profile["name"], data, root / name, canvas, seed, fresh, device)
        methods[name] = method
        gen = torch.Generator(device=device).manual_seed(seed)
        out = draw_outputs(name, method, data.lr, gen)
        outputs[name] = out
        scores = mode_purity(out, data.targets)
        results.append({k: scores[k] for k in RESULT_COLUMNS[1:]} | {"model": name})
        log(
            f"corners {name}: purity {scores['purity']:.3f}, balance {scores['balance']:.3f}, "
            f"{scores['n_blank']} blank, over {scores['n_samples']} test inputs"
        )

    table = pd.DataFrame(results, columns=RESULT_COLUMNS)
    _write_results(root, table, data, outputs, methods["pixel_recursive"], canvas, log)
    return table


def _corner_data(cfg: dict, seed: int, data_root, canvas: int, device) -> SimpleNamespace:
    """The three splits of the corners set (`train`, `valid`, `test`), the test inputs `lr` (float, on
    `device`) and `targets` (float), and the validation-time purity probe's `probe_lr`, `probe_targets`
    (the first `n_probe` = `val_purity_images` valid pairs)."""
    make = lambda split, n, s: sr_data.corners.make_corners(split, n=n, seed=s, root=data_root, canvas=canvas)  # noqa: E731
    train = make("train", cfg["train_size"], seed)
    valid = make("valid", cfg.get("valid_size", 500), seed + 1)
    test = make("test", cfg["test_size"], seed + 2)
    as_float = lambda a: sr_data.to_float(torch.from_numpy(np.ascontiguousarray(a)))  # noqa: E731
    n_probe = min(int(cfg.get("val_purity_images", 0)), len(valid))
    return SimpleNamespace(
        train=train,
        valid=valid,
        test=test,
        lr=as_float(test.lr).to(device),
        targets=as_float(test.hr),
        n_probe=n_probe,
        probe_lr=as_float(valid.lr[:n_probe]),
        probe_targets=as_float(valid.hr[:n_probe]),
    )


def _train_model(name: str, cfg: dict, profile_name: str, data, run_dir: Path, canvas: int, seed: int, fresh, device):
    """Model `name` built from `corners.models.<name>` at this canvas size and trained (or resumed) in
    `run_dir` with the purity probe as extra validation; returns the trained method on `device`."""
    section = cfg["models"][name]
    cls = get_method(name).load_class()
    check_model_keys(cls, section.get("model") or {}, f"corners.models.{name}.model.")
    method = cls(channels=data.train.channels, **dict(section.get("model") or {}, hr_size=canvas))
    if fresh:
        ckpt.prepare_run_dir(run_dir, resume=False, fresh=True)
    probe = purity_probe(name, data.probe_lr, data.probe_targets, seed) if data.n_probe else None
    trainer = Trainer(
        method,
        data.train,
        data.valid,
        run_dir,
        section["train"],
        seed=seed,
        meta={"method": name, "dataset": "corners", "profile": profile_name},
        resume=True,
        device=device,
        extra_validation=probe,
    )
    trainer.fit()
    return method.to(device)


def _write_results(root: Path, table: pd.DataFrame, data, outputs: dict, pixel_recursive, canvas: int, log) -> None:
    """`results.csv`, `samples.npz`, `purity_vs_steps.csv`, `diagnostics.json` (the blank-image bits of the
    pixel-recursive model) and `fig2.png` under `root`, each written atomically."""
    test, lr = data.test, data.lr
    root.mkdir(parents=True, exist_ok=True)
    to_u8 = lambda t: sr_data.to_uint8(t).numpy()  # noqa: E731
    samples = {"targets": np.ascontiguousarray(test.hr), **{m: to_u8(outputs[m]) for m in CORNER_MODELS}}

    def write_npz(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy would append ".npz" to the temporary name
            np.savez_compressed(f, **samples)

    atomic_write(root / "samples.npz", write_npz)
    atomic_write(root / "results.csv", lambda tmp: table.to_csv(tmp, index=False))
    curve = purity_vs_steps(root)
    atomic_write(root / "purity_vs_steps.csv", lambda tmp: curve.to_csv(tmp, index=False))
    diag = {
        "canvas": canvas,
        "blank_image_bits": blank_image_bits(pixel_recursive, lr),
        "note": "-log2 p(all-zero target | x) of the pixel-recursive model, mean over the test inputs; "
        "top_half = rows 0..S/2-1 (holds the top-left slot), bottom_half = the rest",
    }
    ckpt.write_json(root / "diagnostics.json", diag)
    b = diag["blank_image_bits"]
    log(
        f"corners pixel_recursive, blank image: {b['top_half']:.2f} bits in the top half, "
        f"{b['bottom_half']:.1f} in the bottom half"
    )
    n_show = min(8, len(lr))
    cells = [[test.lr[i], test.hr[i], *[samples[m][i] for m in CORNER_MODELS]] for i in range(n_show)]
    side = canvas // 4
    image_sheet([f"input {side}x{side}", "a target", "L2 regression", "per-pixel CE", "PixelCNN t=1"], cells).save(
        root / "fig2.png"
    )
    log(
        f"wrote {root / 'results.csv'}, {root / 'samples.npz'}, {root / 'purity_vs_steps.csv'}, "
        f"{root / 'diagnostics.json'} and {root / 'fig2.png'}"
    )
