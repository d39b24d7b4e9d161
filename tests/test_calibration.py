"""Calibration against the original implementations (pyiqa style): one case per (metric, image) in
`tests/data/calibration/official.csv`, tolerance and colour mode per metric from `tolerance.csv`."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import metrics

DATA = Path(__file__).parent / "data" / "calibration"


def _cases():
    with open(DATA / "tolerance.csv", newline="") as f:
        settings = {row["metric"]: (row["color"], float(row["tolerance"])) for row in csv.DictReader(f)}
    with open(DATA / "official.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cases = []
    for row in rows:
        metric = row.pop("Method")
        color, tol = settings[metric]
        for image, value in row.items():
            cases.append(
                pytest.param(metric, Path(image).stem, float(value), color, tol, id=f"{metric}-{Path(image).stem}")
            )
    return cases


@functools.lru_cache(maxsize=None)
def _load(kind: str, stem: str) -> torch.Tensor:
    arr = np.array(Image.open(DATA / kind / f"{stem}.png").convert("RGB"))
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).float().div(255.0)


def test_calibration_table_is_complete():
    cases = _cases()
    assert len(cases) == 15  # 3 metrics x 5 images
    for case in cases:
        metric, stem = case.values[0], case.values[1]
        assert metric in metrics.METRICS
        assert (DATA / "ref" / f"{stem}.png").is_file() and (DATA / "dist" / f"{stem}.png").is_file()


@pytest.mark.parametrize("metric,stem,official,color,tol", _cases())
def test_matches_official_value(metric, stem, official, color, tol):
    ref, dist = _load("ref", stem), _load("dist", stem)
    assert ref.shape == (1, 3, 384, 512)
    value = float(getattr(metrics, metric)(dist, ref, color=color)[0])
    assert abs(value - official) <= tol, (
        f"{metric} on {stem} (color={color}): got {value:.6f}, official {official}, tolerance {tol}"
    )
