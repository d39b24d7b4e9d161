"""The method registry is the one record of a method: a new entry (no other file edited) shows up in
Table 1's order and labels, the figure headings, the study's rows, the fool-rate order and
`prsr train --method all`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.fool_rates import order_methods
from baselines import registry
from baselines.registry import METHODS, MethodSpec, Row
from metrics.table import table1_from_metrics, to_markdown
from study_app.builder import init_study
from study_app.demo import write_demo_predictions


def _throwaway(monkeypatch):
    spec = MethodSpec(
        "toy_sr",
        "baselines.bicubic:Bicubic",
        True,
        (Row("toy_sr_a", "Toy SR (variant A)", "Toy A", study=True), Row("toy_sr_b", "Toy SR (B)", "Toy B")),
        train_order=-1,
    )
    monkeypatch.setitem(METHODS, "toy_sr", spec)
    return spec


def test_a_new_entry_reaches_table1_study_analysis_and_training(monkeypatch, tmp_path):

    _throwaway(monkeypatch)
    rows = registry.table_rows()
    assert rows[-2:] == ("toy_sr_a", "toy_sr_b") and rows[0] == "bicubic"
    assert registry.row_labels()["toy_sr_a"] == "Toy SR (variant A)" and registry.short_labels()["toy_sr_b"] == "Toy B"
    assert registry.study_rows() == (
        "resnet_l2",
        "gan",
        "pixel_recursive_t1.0",
        "pixel_recursive_t0.9",
        "pixel_recursive_t0.8",
        "toy_sr_a",
    )
    assert registry.train_order()[0] == "toy_sr"  # train_order -1 goes before pixel_recursive (0)
    assert registry.method_of_row("toy_sr_b").name == "toy_sr"
    assert order_methods({"toy_sr_a", "gan", "zzz"}) == ["gan", "toy_sr_a", "zzz"]

    per_image = pd.DataFrame(
        {
            "method": ["toy_sr_b", "toy_sr_a", "bicubic"],
            "image_id": ["x"] * 3,
            "psnr": [20.0, 21.0, 22.0],
            "ssim": [0.5] * 3,
            "ms_ssim": [0.5] * 3,
            "consistency": [0.01] * 3,
            "nll_bpd": [np.nan] * 3,
        }
    )
    table = table1_from_metrics(per_image, order=registry.table_rows())
    assert list(table["method"]) == ["bicubic", "toy_sr_a", "toy_sr_b"]
    assert "| Toy SR (variant A) |" in to_markdown(table, labels=registry.row_labels())

    # the study picks the new study row up from a predictions folder, with no --methods given

    folder = write_demo_predictions(tmp_path / "predictions", n=12, methods=("gan", "toy_sr_a", "toy_sr_b"))
    summary = init_study(
        folder, f"sqlite:///{tmp_path / 's.db'}", raters_per_method=2, n_test=6, n_practice=1, n_golden=1, seed=0
    )
    assert summary["methods"] == ["gan", "toy_sr_a"]


def test_bare_row_names_are_their_own_labels():
    spec = MethodSpec("x", "m:C", False, ("x_row",))
    assert spec.rows == ("x_row",) and spec.row_specs[0].label == "x_row" and not spec.row_specs[0].study
