"""A simulated study through the database path: `study_app` builds and fills it, `analysis` reads it, and
`prsr analyze --notebook` writes the CSVs, the figure and the executed notebook."""

import json

import nbformat
import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.fool_rates import EXCLUSION_COLUMNS, FOOL_RATE_COLUMNS, PAIRWISE_COLUMNS
from analysis.machine import find_table1, machine_vs_human
from prsr.cli import main as prsr_main
from study_app.builder import init_study
from study_app.export import read_tables
from study_app.simulate import simulate_study

METHODS = ["resnet_l2", "pixel_recursive_t1.0", "pixel_recursive_t0.8"]


@pytest.fixture(scope="module")
def study_db(tmp_path_factory):
    """A small simulated study: 3 methods, 24 raters (some inattentive, some abandoning), 20 counted trials."""
    root = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(0)
    n = 40
    ids = np.array([f"{i:03d}" for i in range(n)])
    np.savez(
        root / "truth.npz",
        lr=rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8),
        hr=rng.integers(0, 256, (n, 1, 32, 32), dtype=np.uint8),
        ids=ids,
    )
    for m in METHODS:
        np.savez(root / f"{m}.npz", sr=rng.integers(0, 256, (n, 1, 32, 32), dtype=np.uint8), ids=ids)
    url = f"sqlite:///{root / 'simulated_study.db'}"
    init_study(
        root, url, methods=METHODS, raters_per_method=7, n_test=20, n_practice=3, n_golden=2, seed=0, dataset="e2e"
    )
    simulate_study(
        url,
        24,
        {"resnet_l2": 0.05, "pixel_recursive_t1.0": 0.2, "pixel_recursive_t0.8": 0.3},
        golden_fail_rate=0.2,
        abandon_rate=0.15,
        seed=1,
        progress=False,
    )
    return url


def test_database_path_counts_exactly_the_counted_trials(study_db):
    raters, trials = read_tables(study_db)
    result = analysis.analyze(study_db, n_boot=500, glmm=False)
    assert result.simulated and result.fool_rates.attrs["simulated"] is True
    assert set(result.study.info["true_fool_rates"]) == set(METHODS)
    ex = result.exclusions.set_index("rule")
    status = raters.set_index("rater_id")["status"]
    complete = raters[raters.status == "complete"]
    failed = complete[complete.golden_correct < complete.golden_total]
    assert ex.loc["incomplete", "raters_removed"] == (status != "complete").sum() > 0
    assert ex.loc["golden_failed", "raters_removed"] == len(failed) > 0
    assert ex.loc["practice", "trials_removed"] == trials.is_practice.sum()
    assert ex.loc["exposure", "trials_removed"] == 0  # the simulator's exposures are 1000 ms +- 0.3 ms
    # recount independently: complete raters who passed every golden question, their test trials
    good = set(complete.rater_id) - set(failed.rater_id)
    test = trials[~trials.is_practice & ~trials.is_golden & trials.rater_id.isin(good)]
    expected = test.groupby("method").chose_model.mean()
    table = result.fool_rates.set_index("method")
    assert list(table.index) == METHODS  # Table-1 order
    for m in METHODS:
        assert table.loc[m, "fool_rate"] == pytest.approx(expected[m])
        assert table.loc[m, "trials"] == (test.method == m).sum()
        assert table.loc[m, "raters_kept"] + table.loc[m, "raters_dropped"] == (raters.method == m).sum()


def _table1(path):
    # Table 1's machine columns (percent) for two of the study's methods and one the study lacks
    pd.DataFrame(
        {
            "method": ["bicubic", "resnet_l2", "pixel_recursive_t1.0"],
            "machine_fooled": [0.0, 1.2, 30.0],
            "machine_ci_low": [0.0, 0.6, 27.0],
            "machine_ci_high": [0.0, 1.9, 33.1],
        }
    ).to_csv(path, index=False)
    return path


def test_machine_vs_human_side_by_side(study_db, tmp_path):
    result = analysis.analyze(study_db, n_boot=200, glmm=False)
    table1 = pd.read_csv(_table1(tmp_path / "table1.csv"))
    both = machine_vs_human(result.fool_rates, table1, simulated=True).set_index("method")
    assert list(both.index) == ["bicubic", "resnet_l2", "pixel_recursive_t1.0", "pixel_recursive_t0.8"]
    human = result.fool_rates.set_index("method")
    assert both.loc["resnet_l2", "human_fooled"] == pytest.approx(100 * human.loc["resnet_l2", "fool_rate"])
    assert both.loc["pixel_recursive_t1.0", "machine_ci_high"] == 33.1
    assert np.isnan(both.loc["bicubic", "human_fooled"]) and both.loc["bicubic", "human_source"] == ""
    assert np.isnan(both.loc["pixel_recursive_t0.8", "machine_fooled"])
    assert both.loc["resnet_l2", "human_source"] == "simulated"
    with pytest.raises(ValueError, match="machine_fooled"):
        machine_vs_human(result.fool_rates, table1.drop(columns="machine_fooled"), simulated=True)
    # found next to a SQLite study (its folder or the one above), or given explicitly
    db = tmp_path / "study" / "s.db"
    db.parent.mkdir()
    assert find_table1(f"sqlite:///{db}") == tmp_path / "table1.csv"
    assert find_table1("postgresql://x/y") is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_table1(None, tmp_path / "nope.csv")


@pytest.mark.slow
def test_prsr_analyze_writes_csvs_figure_and_notebook(study_db, tmp_path, capsys):
    out = tmp_path / "analysis"
    table1 = _table1(tmp_path / "table1.csv")
    code = prsr_main(
        [
            "analyze",
            "--db",
            study_db,
            "--out",
            str(out),
            "--n-boot",
            "1000",
            "--seed",
            "4",
            "--notebook",
            "--table1",
            str(table1),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "SIMULATED" in printed
    table = pd.read_csv(out / "fool_rates.csv")
    assert list(table.columns) == FOOL_RATE_COLUMNS
    assert list(pd.read_csv(out / "exclusions.csv").columns) == EXCLUSION_COLUMNS
    pw = pd.read_csv(out / "pairwise.csv")
    assert list(pw.columns) == PAIRWISE_COLUMNS and len(pw) == 3
    again = analysis.fool_rates(study_db, n_boot=1000, seed=4, glmm=False)  # same draws -> same bootstrap
    np.testing.assert_allclose(
        table[["fool_rate", "se", "ci_low", "ci_high"]], again[["fool_rate", "se", "ci_low", "ci_high"]]
    )
    # the GLMM check ran and its marginal rate sits near the pooled rate
    assert table.glmm_rate.notna().all()
    assert np.all(np.abs(table.glmm_rate - table.fool_rate) < 0.05)
    assert np.all((table.glmm_ci_low < table.glmm_rate) & (table.glmm_rate < table.glmm_ci_high))
    assert (out / "fool_rates.png").stat().st_size > 10_000
    assert json.loads((out / "info.json").read_text())["simulated"] is True
    assert "SIMULATED" in (out / "SIMULATED.txt").read_text()
    nb = nbformat.read(out / "fool_rate_analysis.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    n_images = sum("image/png" in o.get("data", {}) for o in outputs)
    # bars, machine vs raters, temperature, raters, and most/least convincing for each of the 3 methods
    assert n_images == 4 + 2 * len(METHODS)
    assert any("machine rates from" in o.get("text", "") for o in outputs)
    assert "SIMULATED" in (out / "fool_rate_analysis.html").read_text()


def test_prsr_analyze_follows_the_stored_attention_rule(tmp_path, capsys):
    """A study whose app let raters miss one golden pair (attention_max_misses=1, more misses end the
    session): `prsr analyze` applies that rule by default, says so, and warns when --golden-rule
    overrides it; `simulate` ends the sessions the rule ends instead of failing."""
    rng = np.random.default_rng(3)
    n = 30
    ids = np.array([f"{i:03d}" for i in range(n)])
    np.savez(
        tmp_path / "truth.npz",
        lr=rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8),
        hr=rng.integers(0, 256, (n, 1, 32, 32), dtype=np.uint8),
        ids=ids,
    )
    np.savez(tmp_path / "gan.npz", sr=rng.integers(0, 256, (n, 1, 32, 32), dtype=np.uint8), ids=ids)
    url = f"sqlite:///{tmp_path / 'lenient.db'}"
    init_study(
        tmp_path,
        url,
        methods=["gan"],
        raters_per_method=16,
        n_test=12,
        n_practice=2,
        n_golden=4,
        crowd=dict(attention_max_misses=1),
    )
    sim = simulate_study(url, 16, {"gan": 0.2}, golden_fail_rate=0.5, seed=2, progress=False)
    raters, trials = read_tables(url)
    golden = trials[trials.is_golden & ~trials.is_practice]
    misses = golden.groupby("rater_id").chose_model.sum().reindex(raters.rater_id, fill_value=0)
    one_miss = int(((misses == 1).to_numpy() & (raters.status == "complete").to_numpy()).sum())
    assert sim["screened_out"] == int((raters.status == "screened_out").sum()) > 0
    assert one_miss > 0  # finished, paid raters with one miss: the stored rule keeps them
    base = ["analyze", "--db", url, "--n-boot", "50", "--no-glmm"]
    assert prsr_main([*base, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr()
    assert "golden rule: drop raters with more than 1 golden misses (the study)" in out.out
    assert "overrides" not in out.err
    followed = pd.read_csv(tmp_path / "a" / "fool_rates.csv").set_index("method").loc["gan"]
    assert followed.raters_kept == int((raters.status == "complete").sum())
    with pytest.warns(UserWarning, match="overrides the study's stored attention rule"):
        assert prsr_main([*base, "--out", str(tmp_path / "b"), "--golden-rule", "all"]) == 0
    strict = pd.read_csv(tmp_path / "b" / "fool_rates.csv").set_index("method").loc["gan"]
    assert strict.raters_kept == followed.raters_kept - one_miss
    info = json.loads((tmp_path / "b" / "info.json").read_text())
    assert (info["parameters"]["golden_max_misses"], info["parameters"]["golden_rule_source"]) == (0, "given")
    assert info["study_info"]["attention_max_misses"] == 1
