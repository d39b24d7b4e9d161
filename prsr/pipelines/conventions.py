"""`runs/<dataset>/table1.json`: the conventions behind every Table-1 number and where the rows came from.

Written by every `prsr eval` (`write_table1_json`), so that a reader can recompute any cell of Table 1
from `predictions/` and this file alone: data range and rounding, channels, border crop, the SSIM window,
the MS-SSIM scales and weights, the consistency definition and its resize kernel, the evaluation subset
(N, how it was chosen, sha256 of the ids), the machine observer's settings and seeds, the training seeds,
and the environment (torch, threads, CPU kernels, device, git commit) of every run behind a row. When the
runs' environments differ in a field that decides the digits, `prsr eval` logs a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from typing import Any, Dict, List, Sequence

import numpy as np

from metrics.machine_eval import observer_settings
from metrics.quality import GRAY_WEIGHTS, MS_SSIM_WEIGHTS, SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW, ms_ssim_scales
from metrics.registry import PSNR_CAP_DB
from prsr.pipelines.seeds import seed_root
from sr_data.files import atomic_write_json
from sr_models.environment import differing_fields, environment_record

_log = logging.getLogger(__name__)


def ids_sha256(ids: np.ndarray) -> str:
    """sha256 of the evaluation image ids joined by newlines (UTF-8), in `truth.npz` order."""
    return hashlib.sha256("\n".join(str(i) for i in ids).encode("utf-8")).hexdigest()


def metric_conventions(channels: int, height: int, width: int) -> Dict[str, Any]:
    """How every image metric of Table 1 is computed (`metrics/quality.py`, `metrics/consistency.py`)."""
    m = ms_ssim_scales(height, width, max_scales=len(MS_SSIM_WEIGHTS))
    used = [w / sum(MS_SSIM_WEIGHTS[:m]) for w in MS_SSIM_WEIGHTS[:m]] if m < len(MS_SSIM_WEIGHTS) else []
    return {
        "data_range": "uint8 levels 0..255 (predictions are stored as uint8; float [0, 1] outputs are rounded "
        "to levels first); metrics in float64 with L = 255",
        "channels": f"{channels} ({'grey' if channels == 1 else 'RGB'}), every channel as stored; no Y / YCbCr "
        "conversion (color='rgb'); RGB: pSNR from the MSE over channels and pixels, SSIM and MS-SSIM the "
        "mean over channels of the per-channel values",
        "gray_conversion_when_asked": {"weights_rgb": list(GRAY_WEIGHTS), "used_in_table1": False},
        "border_crop": "none",
        "image_size": [height, width],
        "psnr": {
            "definition": "10 log10(255^2 / MSE) per image (MSE over channels and pixels), mean over images in dB",
            "inf_counts_as": PSNR_CAP_DB,
        },
        "ssim": {
            "window": f"Gaussian {SSIM_WINDOW}x{SSIM_WINDOW}, sigma {SSIM_SIGMA}",
            "K1": SSIM_K1,
            "K2": SSIM_K2,
            "covariance": "population",
            "region": "valid (no padding)",
        },
        "ms_ssim": {
            "scales": m,
            "weights_standard": list(MS_SSIM_WEIGHTS),
            "weights_used": used or list(MS_SSIM_WEIGHTS),
            "downsampling": "2x2 mean from the top-left pixel",
            "negative_clamped_to": 0.0,
        },
        "consistency": {
            "definition": "mean over channels and LR pixels of (lr - downsample(sr, 4))^2, [0, 1] units; sr "
            "and both sides of the difference rounded to uint8 levels",
            "resize_kernel": "sr_data.downsample: Keys cubic a = -0.75 (PyTorch bicubic), antialiased, "
            "align_corners=False, clamped to [0, 1] - the kernel that made the LR inputs",
        },
        "nll_bpd": "-log2 p(hr | lr) / (C H W), bits per sub-pixel, mean over images",
    }


def _run_environments(run, seeds: Sequence[int], learned: Sequence[str]) -> List[Dict[str, Any]]:
    """One entry per (learned method, seed): its run folder and config.json's `environment` (None when the
    run predates the record)."""
    out = []
    for seed in seeds:
        for name in learned:
            path = seed_root(run.layout.root, seed, seeds[0]) / name / "config.json"
            try:
                env = json.loads(path.read_text()).get("environment")
            except (OSError, json.JSONDecodeError):
                env = None
            out.append({"method": name, "seed": seed, "run": str(path.parent), "environment": env})
    return out


def write_table1_json(run, truth, n_test: int, seeds: Sequence[int], learned: Sequence[str]):
    """Write `runs/<dataset>/table1.json` for the evaluation `run` (an `EvalRun`) -> its path. Warns when
    the training runs' environments differ in a field of `sr_models.environment.MACHINE_FIELDS`."""
    _, channels, height, width = truth["hr"].shape
    observer = run.profile.get("observer")
    runs = _run_environments(run, seeds, learned)
    recorded = [r["environment"] for r in runs if r["environment"]]
    differ = differing_fields(recorded)
    if differ:
        message = f"the training runs behind Table 1 come from different environments ({', '.join(differ)}): see "
        warnings.warn(message + str(run.layout.root / "table1.json"))
    doc = {
        "dataset": run.dataset,
        "profile": run.profile["name"],
        "n_seeds": len(seeds),
        "seeds": list(seeds),
        "columns": "table1.csv: mean over seeds, n_seeds, <metric>_sd = sample SD over seeds (ddof 1, empty "
        "with one seed); table1_seeds.csv: one row per (method, seed); rates in percent",
        "metrics": metric_conventions(int(channels), int(height), int(width)),
        "evaluation_subset": {
            "n_images": int(len(truth["ids"])),
            "n_test": int(n_test),
            "how_chosen": "the first `eval.subset` of numpy.random.default_rng(seed).permutation(n_test), sorted "
            "(the whole test split when subset is null); the same images for every training seed",
            "subset": run.profile["eval"].get("subset"),
            "seed": int(seeds[0]),
            "ids_sha256": ids_sha256(truth["ids"]),
        },
        "observer": None
        if observer is None
        else {**observer_settings(observer), "seeds": list(seeds), "seed_rule": "the observer seed is the run's seed"},
        "environments": {"evaluation": environment_record(run.device), "runs": runs, "differing_fields": differ},
    }
    path = run.layout.root / "table1.json"
    atomic_write_json(path, doc, indent=1, sort_keys=False)
    return path
