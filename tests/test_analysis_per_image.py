"""Per-image fool rates, the most and least fooling images, and people vs the machine observer per image."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.per_image import (
    AGREEMENT_COLUMNS,
    EXTREME_COLUMNS,
    human_machine_agreement,
    image_extremes,
    per_image_table,
)
from prsr.cli import main as prsr_main
from study_app.demo import write_demo_predictions


def _tables():
    """One method, 4 raters x 3 counted trials over images a, b, c: a fooled 4/4, b 2/4, c 0/4."""
    raters = pd.DataFrame(
        [(f"r{i}", "gan", "complete", 0, 0) for i in range(4)],
        columns=["rater_id", "method", "status", "golden_correct", "golden_total"],
    )
    rows = []
    for i in range(4):
        for t, (image, fooled) in enumerate((("a", True), ("b", i < 2), ("c", False))):
            rows.append((f"r{i}", "gan", image, t, False, False, "left", "right" if fooled else "left", fooled))
    trials = pd.DataFrame(
        rows,
        columns=["rater_id", "method", "image_id", "trial_index", "is_practice", "is_golden", "real_side"]
        + ["choice", "chose_model"],
    ).assign(exposure_ms=1000.0, reaction_ms=500.0, tab_hidden=False)
    return raters, trials


def test_per_image_counts_and_extremes_by_hand():
    result = analysis.analyze(_tables(), n_boot=50, glmm=False)
    table = per_image_table(result)
    assert table[["image_id", "trials", "fooled"]].values.tolist() == [["a", 4, 4], ["b", 4, 2], ["c", 4, 0]]
    ext = image_extremes(table, k=2)
    assert list(ext.columns) == EXTREME_COLUMNS
    assert ext[ext.which == "most"].image_id.tolist() == ["a", "b"]
    assert ext[ext.which == "least"].image_id.tolist() == ["c", "b"]
    assert image_extremes(table, min_trials=5).empty  # no image has 5 counted trials


def test_agreement_is_the_rank_correlation_with_a_bootstrap_interval():
    rng = np.random.default_rng(0)
    n = 120
    per_image = pd.DataFrame(
        dict(method="gan", image_id=[str(i) for i in range(n)], trials=3, fooled=0, fool_rate=rng.random(n))
    )
    monotone = pd.DataFrame(
        dict(row="gan", image_id=per_image.image_id, score_real=0.0, score_fake=np.exp(per_image.fool_rate))
    )
    agree = human_machine_agreement(per_image, monotone, n_boot=200)
    assert list(agree.columns) == AGREEMENT_COLUMNS
    assert agree.spearman[0] == pytest.approx(1.0) and agree.ci_low[0] == pytest.approx(1.0)
    reverse = monotone.assign(score_real=monotone.score_fake, score_fake=0.0)
    assert human_machine_agreement(per_image, reverse, n_boot=50).spearman[0] == pytest.approx(-1.0)
    noise = monotone.assign(score_fake=rng.normal(size=n))
    r = human_machine_agreement(per_image, noise, n_boot=1000).iloc[0]
    assert r.ci_low < 0 < r.ci_high and r.ci_high - r.ci_low == pytest.approx(2 * 1.96 / np.sqrt(n), rel=0.3)
    few = human_machine_agreement(per_image, monotone.head(3), n_boot=50).iloc[0]  # only 3 images in common
    assert few.images == 3 and np.isnan(few.spearman)


def test_prsr_analyze_writes_per_image_tables_and_agreement(tmp_path, capsys):
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=30, methods=("gan", "resnet_l2"))
    db = tmp_path / "runs" / "toy" / "study.db"
    init = ["study", "init", "--predictions", str(folder), "--db", str(db), "--raters-per-method", "10"]
    assert prsr_main(init + ["--n-trials", "12", "--n-practice", "1", "--n-golden", "2"]) == 0
    assert prsr_main(["study", "simulate", "--db", str(db), "--raters", "20", "--fool-rate", "gan=0.3"]) == 0
    ids = [str(i) for i in np.load(folder / "truth.npz")["ids"]]
    rng = np.random.default_rng(1)
    table1 = tmp_path / "runs" / "toy" / "table1.csv"
    pd.DataFrame(dict(method=["gan"], machine_fooled=[10.0], machine_ci_low=[5.0], machine_ci_high=[15.0])).to_csv(
        table1, index=False
    )
    pairs = pd.DataFrame(dict(row="gan", image_id=ids, score_real=0.0, score_fake=rng.normal(size=len(ids))))
    pairs.assign(fooled=(pairs.score_fake > 0).astype(float)).to_csv(
        table1.with_name("observer_pairs.csv"), index=False
    )
    out = tmp_path / "out"
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = ["analyze", "--db", str(db), "--out", str(out), "--n-boot", "100", "--no-glmm"]
        assert prsr_main(args + ["--table1", str(table1), "--notebook"]) == 0
    printed = capsys.readouterr().out
    per_image = pd.read_csv(out / "per_image.csv")
    rates = pd.read_csv(out / "fool_rates.csv").set_index("method")
    assert per_image.groupby("method").trials.sum().to_dict() == rates.trials.to_dict()
    agreement = pd.read_csv(out / "agreement.csv")
    assert agreement.method.tolist() == ["resnet_l2", "gan"] and agreement.images[1] > 5
    assert "people vs machine observer per image" in printed and "most:" in printed
    notebook = json.loads((out / "fool_rate_analysis.ipynb").read_text())
    text = json.dumps([c.get("outputs") for c in notebook["cells"]])
    assert "spearman" in text and "p_holm" in text and "no deviations" not in text  # n_boot 100 is a deviation
