"""The analysis plan: stored with its sha256 at `prsr study init`, exported as a pre-registration, and
`prsr analyze` reporting every deviation from it (issue 23)."""

from __future__ import annotations

import inspect
import json
import sqlite3
import warnings

import pandas as pd
import pytest

import analysis
from analysis.deviations import plan_deviations, planned_settings
from analysis.fool_rates import apply_exclusions
from prsr.cli import main as prsr_main
from study_app.analysis_plan import DEFAULT_PRIMARY, DEFAULT_RULES, plan_sha256
from study_app.db import dispose_engine
from study_app.demo import write_demo_predictions
from study_app.export import study_info


@pytest.fixture
def study_db(tmp_path):
    """A small simulated study made by `prsr study init` (plan stored) and `prsr study simulate`."""
    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=20, methods=("gan", "resnet_l2"))
    db = tmp_path / "s.db"
    init = ["study", "init", "--predictions", str(folder), "--db", str(db), "--raters-per-method", "6"]
    init += ["--n-trials", "10", "--n-practice", "2", "--n-golden", "2", "--seed", "3", "--attention-max-misses", "1"]
    assert prsr_main(init) == 0
    sim = ["study", "simulate", "--db", str(db), "--raters", "12", "--fool-rate", "gan=0.4", "--seed", "2"]
    assert prsr_main(sim) == 0
    return db


def test_plan_defaults_are_the_analysis_defaults():
    """The plan (study_app cannot import analysis) must restate analyze's defaults, or a study analysed
    with defaults would show deviations it never made."""
    sig = inspect.signature(apply_exclusions).parameters
    for name in ("incomplete", "max_voids", "drop_hidden_tab", "exposure_tolerance_ms"):
        assert DEFAULT_RULES[name] == sig[name].default, name
    assert DEFAULT_PRIMARY["n_boot"] == inspect.signature(analysis.analyze).parameters["n_boot"].default


def test_init_stores_the_plan_with_its_sha256_and_export_writes_the_preregistration(study_db, tmp_path, capsys):
    url = f"sqlite:///{study_db}"
    info = study_info(url)
    plan = info["analysis_plan"]
    assert info["analysis_plan_sha256"] == plan_sha256(plan) and len(plan_sha256(plan)) == 64
    assert plan["exclusions"]["golden_max_misses"] == 1  # the stored attention rule
    assert plan["trials_per_rater"] == {"counted": 8, "golden": 2, "practice": 2}
    assert plan["pairs"] == [["resnet_l2", "gan"]] and plan["seed"] == 3  # pairs in Table-1 order
    capsys.readouterr()
    assert prsr_main(["study", "export", "--db", str(study_db), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "preregistration.md").read_text()
    assert info["analysis_plan_sha256"] in text
    assert "more than **1** missed golden" in text and "**20 ms**" in text and "`resnet_l2` vs `gan`" in text
    capsys.readouterr()
    assert prsr_main(["study", "prereg", "--db", str(study_db)]) == 0
    assert capsys.readouterr().out == text


def _analyze(db, out, *extra, capsys):
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert prsr_main(["analyze", "--db", str(db), "--out", str(out), "--no-glmm", "--n-boot", "200", *extra]) == 0
    return capsys.readouterr().out, pd.read_csv(out / "deviations.csv")


def test_analyze_follows_the_plan_and_lists_a_changed_threshold(study_db, tmp_path, capsys):
    printed, dev = _analyze(study_db, tmp_path / "a", "--seed", "0", capsys=capsys)
    # only the smaller bootstrap (10,000 planned) and the skipped GLMM check differ from the plan
    assert dev.setting.tolist() == ["bootstrap resamples", "GLMM check"] and dev.planned.tolist() == ["10000", "True"]
    printed, dev = _analyze(
        study_db, tmp_path / "b", "--exposure-tolerance-ms", "50", "--golden-rule", "all", capsys=capsys
    )
    rows = dev.set_index("setting")
    assert rows.loc["exposure tolerance (ms)", ["planned", "applied"]].tolist() == ["20.0", "50.0"]
    assert rows.loc["golden rule (max misses)", ["planned", "applied"]].tolist() == ["1", "0"]
    assert "DEVIATIONS from the stored analysis plan" in printed and "planned 20.0, applied 50.0" in printed
    info = json.loads((tmp_path / "b" / "info.json").read_text())
    assert info["analysis_plan"]["kind"] == "stored" and len(info["analysis_plan"]["deviations"]) == 4


def test_a_changed_stored_plan_and_unplanned_pairs_are_deviations(study_db):
    url = f"sqlite:///{study_db}"
    dispose_engine(url)
    con = sqlite3.connect(study_db)
    plan = json.loads(con.execute("SELECT analysis_plan FROM study").fetchone()[0])
    plan["exclusions"]["max_voids"] = 5  # edited after init: the sha256 no longer matches
    con.execute("UPDATE study SET analysis_plan = ?", (json.dumps(plan),))
    con.commit()
    con.close()
    result = analysis.analyze(url, n_boot=50, glmm=False, max_voids=5)
    assert "plan integrity" in result.deviations.setting.tolist()
    pw = pd.DataFrame({"method_a": ["gan", "gan"], "method_b": ["resnet_l2", "bicubic"]})
    dev = plan_deviations(study_info(url), result.params, pw)
    assert "pairs compared (Holm family)" in dev.setting.tolist()


def test_an_older_study_without_a_plan_is_analysed_against_the_implied_plan(study_db, tmp_path, capsys):
    url = f"sqlite:///{study_db}"
    dispose_engine(url)
    con = sqlite3.connect(study_db)
    con.execute("UPDATE study SET analysis_plan = NULL, analysis_plan_sha256 = NULL")
    con.commit()
    con.close()
    info = study_info(url)
    assert "analysis_plan" not in info
    settings, kind = planned_settings(info)
    assert kind == "implied" and settings["golden_max_misses"] == 1 and settings["pairs"] is None
    printed, dev = _analyze(study_db, tmp_path / "c", "--max-voids", "4", capsys=capsys)
    assert "the implied plan (older study)" in printed
    assert dev.set_index("setting").loc["max voided attempts", "applied"] == "4"
    assert prsr_main(["study", "prereg", "--db", str(study_db)]) != 0
    assert "has no analysis plan" in capsys.readouterr().err


def test_a_plan_that_named_the_bootstrap_interval_lists_the_interval_as_a_deviation(study_db):
    """A study planned before the jackknife default: analyze says its interval is not the planned one."""
    url = f"sqlite:///{study_db}"
    info = study_info(url)
    params = analysis.analyze(url, n_boot=50, glmm=False).params
    today = plan_deviations(info, params).setting.tolist()
    assert today == ["bootstrap resamples", "GLMM check"]  # the two asked for here; the interval is the plan's
    plan = json.loads(json.dumps(info["analysis_plan"]))
    plan["primary"]["interval"] = "95 % percentile bootstrap over raters (raters resampled within a method)"
    older = dict(info, analysis_plan=plan, analysis_plan_sha256=plan_sha256(plan))
    dev = plan_deviations(older, params).set_index("setting")
    assert list(dev.index) == [*today, "interval"]
    assert dev.loc["interval", "planned"].startswith("95 % percentile bootstrap")
    assert dev.loc["interval", "applied"] == DEFAULT_PRIMARY["interval"]
