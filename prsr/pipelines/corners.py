"""The two-corners experiment (the paper's Fig. 2): why pixel-independent losses fail on multimodal targets.

Three models learn the same task — the 8x8 input says *what* item (it sits in the centre) but not
*where* the 32x32 target puts it (top-left or bottom-right quadrant, 50/50):
- L2 regression (`resnet_l2`): its prediction, which averages the two modes;
- per-pixel cross-entropy (`pixel_ce`): an independent sample per sub-pixel;
- the pixel-recursive model (`pixel_recursive`): a sample at τ = 1.0.
Each output is scored for mode purity and balance (`metrics.corners`). Runs go to `runs/corners/<model>/`,
results to `runs/corners/results.csv` (`model, purity, balance, n_samples`) and `runs/corners/fig2.png`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pandas as pd
import torch

import sr_data
from baselines.registry import get_method
from metrics.corners import mode_purity

from sr_models.profile_schema import check_model_keys
from sr_models.profiles import load_profile

CORNER_MODELS = ("resnet_l2", "pixel_ce", "pixel_recursive")

_log = logging.getLogger(__name__)


def draw_outputs(name: str, method, lr: torch.Tensor, generator: torch.Generator, batch_size: int = 200) -> torch.Tensor:
    """One output per input as the experiment defines it -> float [N, C, 32, 32] in [0, 1]."""
    method.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(lr), batch_size):
            x = lr[start:start + batch_size]
            if name == "resnet_l2":
                outs.append(method.predict(x))
            else:  # pixel_ce draws every sub-pixel independently; pixel_recursive autoregressively
                outs.append(method.sample(x, temperature=1.0, generator=generator))
    return torch.cat(outs).float().cpu()


def run_corners(profile="quick", runs_dir: str | os.PathLike = "runs", data_root=None, seed: Optional[int] = None,
                fresh: bool = False, device=None, log=None) -> pd.DataFrame:
    """Train the three models on the corners data (resuming or reusing finished runs; `fresh` moves old
    runs aside first), sample, score; returns the results table. Progress lines go to `log(text)`
    (default: this module's logger at INFO)."""
    from sr_models import checkpoint as ckpt
    from metrics.figures import image_sheet  # the same grid drawing as Fig. 5/6

    from sr_models.trainer import Trainer

    log = log or _log.info
    profile = load_profile(profile)
    cfg = profile["corners"]
    seed = profile["seed"] if seed is None else seed
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    root = Path(runs_dir) / "corners"
    train = sr_data.corners.make_corners("train", n=cfg["train_size"], seed=seed, root=data_root)
    valid = sr_data.corners.make_corners("valid", n=cfg.get("valid_size", 500), seed=seed + 1, root=data_root)
    test = sr_data.corners.make_corners("test", n=cfg["test_size"], seed=seed + 2, root=data_root)
    lr = sr_data.to_float(torch.from_numpy(np.ascontiguousarray(test.lr))).to(device)
    targets = sr_data.to_float(torch.from_numpy(np.ascontiguousarray(test.hr)))

    results, outputs = [], {}
    for name in CORNER_MODELS:
        section = cfg["models"][name]
        cls = get_method(name).load_class()
        check_model_keys(cls, section.get("model") or {}, f"corners.models.{name}.model.")
        method = cls(channels=train.channels, **section.get("model", {}))
        run_dir = root / name
        if fresh:
            ckpt.prepare_run_dir(run_dir, resume=False, fresh=True)
        trainer = Trainer(method, train, valid, run_dir, section["train"], seed=seed,
                          meta={"method": name, "dataset": "corners", "profile": profile["name"]},
                          resume=True, device=device)
        trainer.fit()
        method.to(device)
        gen = torch.Generator(device=device).manual_seed(seed)
        out = draw_outputs(name, method, lr, gen)
        outputs[name] = out
        scores = mode_purity(out, targets)
        results.append({"model": name, "purity": scores["purity"], "balance": scores["balance"], "n_samples": scores["n_samples"]})
        log(f"corners {name}: purity {scores['purity']:.3f}, balance {scores['balance']:.3f} over {scores['n_samples']} test inputs")

    table = pd.DataFrame(results, columns=["model", "purity", "balance", "n_samples"])
    root.mkdir(parents=True, exist_ok=True)
    table.to_csv(root / "results.csv", index=False)
    n_show = min(8, len(lr))
    to_u8 = lambda t: sr_data.to_uint8(t).numpy()  # noqa: E731
    cells = [[test.lr[i], test.hr[i], *[to_u8(outputs[m][i]) for m in CORNER_MODELS]] for i in range(n_show)]
    image_sheet(["input 8x8", "a target", "L2 regression", "per-pixel CE", "PixelCNN t=1"], cells).save(root / "fig2.png")
    log(f"wrote {root / 'results.csv'} and {root / 'fig2.png'}")
    return table
