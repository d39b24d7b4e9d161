"""HYPE-time staircase studies (study_app/staircase.py): the rule, the store issuing each pair with its step,
the export, the per-trial exposure check, the threshold analysis and its recovery of simulated thresholds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.report import write_outputs
from analysis.validate_thresholds import coverage
from prsr.cli import main as prsr_main
from study_app import store
from study_app.analysis_plan import preregistration_markdown
from study_app.builder import init_study
from study_app.db import get_engine
from study_app.demo import write_demo_predictions
from study_app.export import read_tables, study_info
from study_app.simulate import simulate_study
from study_app.staircase import DEFAULT_GRID_MS, StaircaseRule, exposures_for, rater_threshold_ms, reversal_indices

METHODS = ["resnet_l2", "gan"]
RULE = StaircaseRule()


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    return write_demo_predictions(tmp_path_factory.mktemp("runs") / "toy" / "predictions", n=60, channels=1)


def test_rule_fast_start_then_three_down_one_up_within_the_grid():
    rule = StaircaseRule(grid_ms=(100, 200, 400, 800), start_ms=800)
    # fast start: every correct answer steps down until the first wrong one; the floor holds
    assert exposures_for(rule, [True, True, True, True]) == [800, 400, 200, 100, 100]
    # after the first wrong answer: one step up per wrong, one step down per 3 consecutive correct
    seq = [True, False, True, True, False, True, True, True, False, False, False]
    assert exposures_for(rule, seq) == [800, 400, 800, 800, 800, 800, 800, 800, 400, 800, 800, 800]
    assert exposures_for(StaircaseRule(grid_ms=(100, 200, 400, 800), start_ms=800, fast_start=False), [True] * 3) == [
        800,
        800,
        800,
        400,
    ]
    assert DEFAULT_GRID_MS[0] == 100 and DEFAULT_GRID_MS[-1] == 1000 and len(DEFAULT_GRID_MS) == 11
    assert RULE.target_p_correct == pytest.approx(0.5 ** (1 / 3))
    with pytest.raises(ValueError, match="not on the grid"):
        StaircaseRule(start_ms=333)
    with pytest.raises(ValueError, match="ascending"):
        StaircaseRule(grid_ms=(200, 100), start_ms=100)


def test_rater_threshold_is_the_geometric_mean_from_the_kth_reversal():
    ex = [800, 400, 200, 400, 200, 400, 800, 400, 800, 400]
    assert reversal_indices(ex) == [2, 3, 4, 6, 7, 8]
    rule = StaircaseRule(grid_ms=(100, 200, 400, 800), start_ms=800, discard_reversals=4)
    kept = ex[6:]  # from the 4th reversal (index 6) on
    assert rater_threshold_ms(rule, ex) == pytest.approx(float(np.exp(np.mean(np.log(kept)))))
    # fewer reversals than discarded (pinned at the floor): the second half of the trials
    assert rater_threshold_ms(rule, [800, 400, 200, 100, 100, 100]) == pytest.approx(100.0)
    assert np.isnan(rater_threshold_ms(rule, []))


def test_store_issues_practice_at_start_golden_at_longest_and_counted_by_the_answers(predictions, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    init_study(
        predictions, url, methods=METHODS, raters_per_method=2, n_test=12, n_practice=2, n_golden=2, staircase=RULE
    )
    engine = get_engine(url)
    store.enrol(engine, "p1")
    issued = []
    while (t := store.next_trial(engine, "p1")) is not None:
        correct = t.is_practice or t.is_golden or len([i for i in issued if not i[0] and not i[1]]) < 5
        choice = t.real_side if correct else ("left" if t.real_side == "right" else "right")
        issued.append((t.is_practice, t.is_golden, t.exposure_ms, correct))
        store.record_answer(engine, "p1", t.trial_index, t.attempt, choice, t.exposure_ms + 1.0, 500.0, False)
    practice = [e for p, g, e, _ in issued if p]
    golden = [e for p, g, e, _ in issued if g and not p]
    counted = [(e, c) for p, g, e, c in issued if not p and not g]
    assert practice == [RULE.start_ms] * 2 and golden == [RULE.grid_ms[-1]] * 2
    assert [e for e, _ in counted] == exposures_for(RULE, [c for _, c in counted])[:-1]
    _, trials = read_tables(url)
    assert (trials["target_exposure_ms"] == [e for *_, e, _ in issued]).all()
    info = study_info(url)
    assert info["exposure_mode"] == "staircase" and info["staircase"]["grid_ms"] == list(RULE.grid_ms)
    assert info["analysis_plan"]["staircase"]["start_ms"] == RULE.start_ms
    md = preregistration_markdown(info["analysis_plan"], info["analysis_plan_sha256"])
    assert "HYPE-time staircase" in md and "Threshold analysis" in md


def test_exposure_rule_compares_each_trial_with_its_own_step(predictions, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    init_study(
        predictions, url, methods=METHODS, raters_per_method=1, n_test=8, n_practice=0, n_golden=0, staircase=RULE
    )
    engine = get_engine(url)
    store.enrol(engine, "p1")
    k = 0
    while (t := store.next_trial(engine, "p1")) is not None:
        shown = t.exposure_ms + (50.0 if k == 3 else 2.0)  # trial 3 is 50 ms off its own step
        store.record_answer(engine, "p1", t.trial_index, t.attempt, t.real_side, shown, 400.0, False)
        k += 1
    result = analysis.analyze(url, n_boot=200, glmm=False)
    ex = result.exclusions.set_index("rule")
    assert ex.loc["exposure", "trials_removed"] == 1  # the others are far from 1000 ms but on their step
    assert len(result.counted) == 7


def test_simulated_staircase_study_reports_thresholds(predictions, tmp_path):
    db = tmp_path / "s.db"
    assert (
        prsr_main(
            ["study", "init", "--predictions", str(predictions), "--db", str(db), "--methods", ",".join(METHODS)]
            + ["--raters-per-method", "8", "--n-trials", "30", "--n-practice", "2", "--n-golden", "2"]
            + ["--exposure", "staircase"]
        )
        == 0
    )
    truth = {"resnet_l2": 250.0, "gan": 500.0}
    sim = simulate_study(str(db), 16, seed=3, progress=False, thresholds_ms=truth)
    assert sim["true_thresholds_ms"] == truth
    result = analysis.analyze(str(db), n_boot=500, glmm=False)
    paths = write_outputs(result, tmp_path / "out")
    table = pd.read_csv(paths["thresholds.csv"]).set_index("method")
    per_rater = pd.read_csv(paths["rater_thresholds.csv"])
    assert set(table.index) == set(METHODS) and (table["raters"] == 8).all() and len(per_rater) == 16
    assert (table["ci_low"] < table["threshold_ms"]).all() and (table["threshold_ms"] < table["ci_high"]).all()
    assert table.loc["resnet_l2", "threshold_ms"] < table.loc["gan", "threshold_ms"]  # 250 vs 500 ms, well apart
    info = json.loads((tmp_path / "out" / "info.json").read_text())
    assert info["study_info"]["true_thresholds_ms"] == truth


def test_fixed_study_refuses_thresholds_and_writes_none(predictions, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    init_study(predictions, url, methods=METHODS, raters_per_method=1, n_test=4, n_practice=0, n_golden=0)
    with pytest.raises(ValueError, match="staircase"):
        simulate_study(url, 2, progress=False, thresholds_ms={"gan": 300.0})
    simulate_study(url, 2, progress=False)
    _, trials = read_tables(url)
    assert (trials["target_exposure_ms"] == 1000.0).all()
    paths = write_outputs(analysis.analyze(url, n_boot=100, glmm=False), tmp_path / "out")
    assert "thresholds.csv" not in paths and not (tmp_path / "out" / "thresholds.csv").exists()


def test_threshold_interval_recovers_simulated_thresholds():
    """The bench (`python -m analysis.validate_thresholds`) at a small size: mid-grid thresholds are covered
    in about 90 % of studies (docs/plan-run-report.md has the 500-study figure)."""
    table = coverage({"a": 250.0, "b": 400.0}, studies=60, raters=12, trials=40, n_boot=300, seed=7)
    assert (table["coverage"] >= 0.85).all(), table
    assert np.allclose(table["mean_estimate_ms"], table["true_ms"], rtol=0.06), table
