"""`prsr study plan`: the fast path's family-wise error, power, half-width scaling, and agreement with the
full `prsr analyze` estimator (small designs, a few seconds each)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.planning import Design, raters_for_power, simulate_design
from analysis.simulation import simulate_trials
from prsr.cli import main as prsr_main
from study_app.demo import write_demo_predictions

SMALL = dict(n_trials=22, n_golden=2, n_images=100, exclusion_rate=0.0)


def test_equal_rates_reject_at_most_alpha_family_wise():
    res = simulate_design(
        {"a": 0.2, "b": 0.2, "c": 0.2}, Design(raters_per_method=30, **SMALL), n_studies=400, n_boot=400, seed=1
    )
    assert res["family_wise_rejection"] <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400)  # alpha + 3 simulation SEs
    assert all(p["power"] <= 0.06 for p in res["pairs"])  # each pair is Holm-controlled too


def test_power_rises_with_raters_and_half_width_falls_as_one_over_root_raters():
    rates = {"a": 0.1, "b": 0.2}
    few = simulate_design(rates, Design(raters_per_method=10, **SMALL), n_studies=300, n_boot=400)
    many = simulate_design(rates, Design(raters_per_method=40, **SMALL), n_studies=300, n_boot=400)
    assert few["pairs"][0]["power"] + 0.2 < many["pairs"][0]["power"]
    for m in rates:  # 4x the raters: half the width (the bootstrap's small-sample shrinkage allows ~15 %)
        assert few["methods"][m]["ci_halfwidth"] / many["methods"][m]["ci_halfwidth"] == pytest.approx(2.0, rel=0.15)
    needed = raters_for_power(rates, Design(raters_per_method=10, **SMALL), 0.8, n_studies=200, n_boot=300)
    assert 10 < needed < 40


def test_the_fast_path_predicts_the_full_analysis_half_width():
    """40 studies through `analysis.analyze` (the estimator of `prsr analyze`) vs the plan's prediction."""
    design = Design(raters_per_method=8, n_trials=12, n_golden=2, n_images=40, exclusion_rate=0.0)
    rates = {"gan": 0.25, "resnet_l2": 0.08}
    predicted = simulate_design(rates, design, n_studies=400, n_boot=500)["methods"]
    widths = {m: [] for m in rates}
    for s in range(40):
        tables = simulate_trials(rates, n_raters=8, n_trials=10, n_images=40, seed=100 + s)
        table = analysis.analyze(tables, n_boot=500, glmm=False, seed=s).fool_rates.set_index("method")
        for m in rates:
            widths[m].append((table.ci_high[m] - table.ci_low[m]) / 2)
    for m in rates:
        assert predicted[m]["ci_halfwidth"] == pytest.approx(np.mean(widths[m]), rel=0.2), m


def test_cli_json_shape_and_pilot(tmp_path, capsys):
    args = ["study", "plan", "--fool-rate", "gan=0.1", "--fool-rate", "resnet_l2=0.3", "--raters-per-method", "10"]
    args += ["--n-studies", "100", "--n-boot", "200", "--pay-per-hour", "12", "--minutes-per-rater", "6", "--json"]
    capsys.readouterr()
    assert prsr_main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["methods"]) == {"gan", "resnet_l2"} and out["methods"]["gan"]["ci_halfwidth"] > 0
    assert out["pairs"][0]["a"] == "gan" and 0 <= out["pairs"][0]["power"] <= 1
    assert out["raters_per_method"] == 10 and out["cost"]["total"] == pytest.approx(20 * 6 / 60 * 12)
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=20, methods=("gan", "resnet_l2"))
    db = tmp_path / "pilot.db"
    init = ["study", "init", "--predictions", str(folder), "--db", str(db), "--raters-per-method", "5"]
    assert prsr_main(init + ["--n-trials", "10", "--n-practice", "1", "--n-golden", "2"]) == 0
    assert prsr_main(["study", "simulate", "--db", str(db), "--raters", "10", "--fool-rate", "gan=0.4"]) == 0
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert prsr_main(["study", "plan", "--pilot", str(db), "--n-studies", "50", "--n-boot", "100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"].startswith("pilot study") and out["methods"]["gan"]["fool_rate"] > 0.1
    pd.DataFrame(dict(method=["gan"], machine_fooled=[12.0])).to_csv(tmp_path / "table1.csv", index=False)
    assert prsr_main(["study", "plan", "--from-table1", str(tmp_path), "--n-studies", "50", "--n-boot", "100"]) == 0
    assert "PRIOR from the machine observer" in capsys.readouterr().out
