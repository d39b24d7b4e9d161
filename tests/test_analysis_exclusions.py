"""Exclusion rules and fool-rate counting on a hand-built study (every number below is worked out by hand)."""

import warnings

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.fool_rates import (
    EXCLUSION_COLUMNS,
    FOOL_RATE_COLUMNS,
    PAIRWISE_COLUMNS,
    RULES,
    TRIAL_COLUMNS,
    StudyData,
)

T, F = True, False


def _study():
    """Two methods, six raters. Practice trials are all 'fooled' so that counting one would show.

    gan:       A complete, golden 2/2;  test: fooled T@1000ms, F@1020ms (on the tolerance edge: kept),
                                         F@1030ms (exposure), T with hidden tab
               B complete, golden 1/2 (one miss);  test: T, T, T, T
               C abandoned, golden 1/1;  test: T, F
               D complete, golden 1/1;  test: F, F (hidden tab), F (exposure not measured)
    resnet_l2: E complete, golden 1/1;  test: T, T, F all at 1200 ms (exposure)
               F complete, golden 1/1;  test: T, F
    """
    raters = pd.DataFrame(
        [
            ("A", "gan", "complete", 2, 2),
            ("B", "gan", "complete", 1, 2),
            ("C", "gan", "abandoned", 1, 1),
            ("D", "gan", "complete", 1, 1),
            ("E", "resnet_l2", "complete", 1, 1),
            ("F", "resnet_l2", "complete", 1, 1),
        ],
        columns=["rater_id", "method", "status", "golden_correct", "golden_total"],
    )
    rows = []

    def add(rater, kind, fooled, exposure=1000.0, hidden=False):
        method = raters.set_index("rater_id").loc[rater, "method"]
        index = sum(r[0] == rater for r in rows)
        real = "left" if index % 2 else "right"
        choice = ("right" if real == "left" else "left") if fooled else real
        rows.append(
            (
                rater,
                method,
                f"img{index}",
                index,
                kind == "practice",
                kind == "golden",
                real,
                choice,
                fooled,
                exposure,
                800.0,
                hidden,
            )
        )

    add("A", "practice", T), add("A", "practice", T), add("A", "golden", F), add("A", "golden", F)
    add("A", "test", T), add("A", "test", F, 1020.0), add("A", "test", F, 1030.0), add("A", "test", T, hidden=True)
    add("B", "practice", T), add("B", "golden", T), add("B", "golden", F)
    for _ in range(4):
        add("B", "test", T)
    add("C", "practice", T), add("C", "golden", F), add("C", "test", T), add("C", "test", F)
    add("D", "practice", T), add("D", "golden", F)
    add("D", "test", F), add("D", "test", F, hidden=True), add("D", "test", F, float("nan"))
    add("E", "practice", T), add("E", "golden", F)
    add("E", "test", T, 1200.0), add("E", "test", T, 1200.0), add("E", "test", F, 1200.0)
    add("F", "practice", T), add("F", "golden", F), add("F", "test", T), add("F", "test", F)
    trials = pd.DataFrame(rows, columns=TRIAL_COLUMNS)
    return raters, trials


def _rates(table):
    return dict(zip(table.method, table.fool_rate))


def test_default_rules_remove_what_each_rule_should():
    result = analysis.analyze(_study(), n_boot=200, glmm=False)
    ex = result.exclusions
    assert list(ex.columns) == EXCLUSION_COLUMNS and list(ex.rule) == RULES
    expected = {  # rule: (raters, trials)
        "practice": (0, 7),  # one per rater, two for A
        "golden_trials": (0, 8),  # A 2, B 2, C..F 1 each
        "incomplete": (1, 2),  # C (abandoned) and its two test trials
        "golden_failed": (1, 4),  # B missed one golden pair; its four test trials go
        "too_many_voids": (0, 0),  # no voided attempts in a hand-built study
        "hidden_tab": (0, 2),  # A's 4th, D's 2nd
        "timeout": (0, 0),  # no response window in a hand-built study
        "exposure": (0, 5),  # A 1030 ms, D unmeasured, E's three at 1200 ms (1020 ms is kept)
        "no_counted_trials": (1, 0),  # E has nothing left
    }
    assert {r.rule: (r.raters_removed, r.trials_removed) for r in ex.itertuples()} == expected
    table = result.fool_rates
    assert list(table.columns) == FOOL_RATE_COLUMNS
    gan, resnet = table.set_index("method").loc["gan"], table.set_index("method").loc["resnet_l2"]
    # gan counts A's first two test trials (T, F) and D's first (F): 1 / 3
    assert (gan.raters_kept, gan.raters_dropped, gan.trials) == (2, 2, 3)
    assert gan.fool_rate == pytest.approx(1 / 3)
    assert gan.binomial_se == pytest.approx(np.sqrt((1 / 3) * (2 / 3) / 3))
    assert (resnet.raters_kept, resnet.raters_dropped, resnet.trials) == (1, 1, 2)
    assert resnet.fool_rate == pytest.approx(0.5)
    assert set(result.counted.rater_id) == {"A", "D", "F"}
    assert not result.counted.is_practice.any() and not result.counted.is_golden.any()
    assert table.attrs["simulated"] is False


def test_rule_options_change_the_counts_as_worked_out():
    study = _study()
    # one golden miss allowed: B returns with four fooled trials -> gan (1 + 4 + 0) / (2 + 4 + 1)
    assert _rates(analysis.fool_rates(study, golden_rule=1, n_boot=50, glmm=False))["gan"] == pytest.approx(5 / 7)
    assert _rates(analysis.fool_rates(study, golden_rule="max_misses=1", n_boot=50, glmm=False))[
        "gan"
    ] == pytest.approx(5 / 7)
    # abandoned rater kept (it passed its golden question): C adds T, F -> (1 + 1) / (3 + 2)
    assert _rates(analysis.fool_rates(study, incomplete="keep", n_boot=50, glmm=False))["gan"] == pytest.approx(2 / 5)
    # exposure rule and hidden-tab rule off: A T,F,F,T and D F,F,F -> 2/7; resnet E T,T,F + F T,F -> 3/5
    loose = analysis.fool_rates(study, exposure_tolerance_ms=None, drop_hidden_tab=False, n_boot=50, glmm=False)
    assert _rates(loose) == pytest.approx({"gan": 2 / 7, "resnet_l2": 3 / 5})
    # a tolerance of 300 ms keeps E's 1200 ms trials but still drops D's unmeasured one
    ex = analysis.exclusions(study, exposure_tolerance_ms=300)
    assert ex.set_index("rule").loc["exposure", "trials_removed"] == 1
    assert ex.set_index("rule").loc["no_counted_trials", "raters_removed"] == 0
    # golden rule off: nobody is dropped for golden misses
    assert analysis.exclusions(study, golden_rule="none").set_index("rule").loc["golden_failed"].tolist() == [0, 0]


def test_practice_and_golden_never_count_even_if_flags_say_fooled():
    raters, trials = _study()
    base = analysis.fool_rates((raters, trials), n_boot=50, glmm=False)
    flipped = trials.copy()  # flip every practice answer (golden answers feed the golden rule, so keep them)
    flipped.loc[flipped.is_practice, "chose_model"] = ~flipped.loc[flipped.is_practice, "chose_model"]
    again = analysis.fool_rates((raters, flipped), n_boot=50, glmm=False)
    pd.testing.assert_frame_equal(base, again)


def test_csv_round_trip_and_bad_input(tmp_path):
    raters, trials = _study()
    raters.to_csv(tmp_path / "raters.csv", index=False)
    trials.to_csv(tmp_path / "trials.csv", index=False)
    from_csv = analysis.fool_rates(tmp_path, n_boot=100, glmm=False)
    from_frames = analysis.fool_rates((raters, trials), n_boot=100, glmm=False)
    pd.testing.assert_frame_equal(from_csv, from_frames)
    with pytest.raises(ValueError, match="golden_rule"):
        analysis.fool_rates((raters, trials), golden_rule="most")
    with pytest.raises(ValueError, match="lacks columns"):
        analysis.fool_rates((raters, trials.drop(columns="tab_hidden")))
    bad = raters.copy()
    bad.loc[0, "status"] = "finished"
    with pytest.raises(ValueError, match="unknown status"):
        analysis.fool_rates((bad, trials))
    with pytest.raises(FileNotFoundError, match="neither a SQLAlchemy URL"):
        analysis.fool_rates(str(tmp_path / "nope.db"))


def test_pairwise_has_one_row_per_pair_with_consistent_numbers():
    result = analysis.analyze(_study(), n_boot=2000, glmm=False, seed=3)
    pw = result.pairwise
    assert list(pw.columns) == PAIRWISE_COLUMNS
    assert pw[["method_a", "method_b"]].values.tolist() == [["resnet_l2", "gan"]]  # Table-1 order
    assert pw["diff"].iloc[0] == pytest.approx(0.5 - 1 / 3)
    d = result.boot["resnet_l2"] - result.boot["gan"]
    expected_p = min(1.0, 2 * min(np.sum(d <= 0) + 1, np.sum(d >= 0) + 1) / (d.size + 1))
    assert pw.boot_p_value.iloc[0] == pytest.approx(expected_p)  # the bootstrap test, kept beside the default
    assert pw.boot_ci_low.iloc[0] == pytest.approx(np.quantile(d, 0.025))
    # the default (jackknife over raters) has no SE for resnet_l2's single kept rater: no test, not a fake one
    assert np.isnan(pw.p_value.iloc[0]) and np.isnan(pw.ci_low.iloc[0]) and np.isnan(pw.p_holm.iloc[0])


def test_pairwise_holm_column_adjusts_over_all_pairs():
    """Three methods, three pairs: p_holm is Holm's step-down of the three unadjusted p-values."""
    raters, trials = _study()
    extra_r = raters[raters.method == "resnet_l2"].assign(method="bicubic", rater_id=lambda d: d.rater_id + "x")
    extra_t = trials[trials.method == "resnet_l2"].assign(
        method="bicubic", rater_id=lambda d: d.rater_id + "x", chose_model=False
    )
    raters, trials = pd.concat([raters, extra_r]), pd.concat([trials, extra_t])
    # a second copy of every rater: the default interval (jackknife over raters) needs two raters per method
    twin = dict(rater_id=lambda d: d.rater_id + "y")
    raters, trials = pd.concat([raters, raters.assign(**twin)]), pd.concat([trials, trials.assign(**twin)])
    result = analysis.analyze((raters, trials), n_boot=500, glmm=False, seed=1)
    pw = result.pairwise
    assert not pw.p_value.isna().any()
    assert len(pw) == 3 and list(pw.columns) == PAIRWISE_COLUMNS
    p = pw.p_value.to_numpy()
    order = np.argsort(p)
    expected = np.maximum.accumulate(np.minimum(1, (3 - np.arange(3)) * p[order]))
    assert pw.p_holm.to_numpy()[order] == pytest.approx(expected)
    assert (pw.p_holm >= pw.p_value).all() and (pw.ci_low <= pw["diff"]).all() and (pw["diff"] <= pw.ci_high).all()


def test_void_rule_drops_raters_who_reloaded_too_often():
    raters, trials = _study()
    voided = pd.DataFrame({"rater_id": ["A", "A", "A", "F", "F"]})  # A skipped 3 pairs, F 2 (the default limit)
    study = StudyData(raters, trials, voided=voided)
    ex = analysis.exclusions(study).set_index("rule")
    # A is dropped before the trial rules: all 4 of its test trials go with it; F (2 voids) stays
    assert tuple(ex.loc["too_many_voids"]) == (1, 4)
    assert tuple(ex.loc["hidden_tab"]) == (0, 1) and tuple(ex.loc["exposure"]) == (0, 4)
    assert tuple(analysis.exclusions(study, max_voids=None).set_index("rule").loc["too_many_voids"]) == (0, 0)
    assert tuple(analysis.exclusions(study, max_voids=3).set_index("rule").loc["too_many_voids"]) == (0, 0)


def test_the_stored_attention_rule_is_followed_and_an_override_warns():
    """B missed one golden pair. A study that let raters miss one (attention_max_misses=1) keeps B by
    default — (1 + 4 + 0) / (2 + 4 + 1) for gan, as with golden_rule=1; a study without a stored rule
    uses "all"; a given rule that differs from the stored one is applied and warned about."""
    raters, trials = _study()
    lenient = StudyData(raters, trials, {"attention_max_misses": 1})
    result = analysis.analyze(lenient, n_boot=50, glmm=False)
    assert _rates(result.fool_rates)["gan"] == pytest.approx(5 / 7)
    assert (result.params["golden_max_misses"], result.params["golden_rule_source"]) == (1, "study")
    assert result.exclusions.set_index("rule").loc["golden_failed"].tolist() == [0, 0]
    plain = analysis.analyze(StudyData(raters, trials, {"attention_max_misses": None}), n_boot=50, glmm=False)
    assert _rates(plain.fool_rates)["gan"] == pytest.approx(1 / 3)
    assert (plain.params["golden_max_misses"], plain.params["golden_rule_source"]) == (0, "default")
    with pytest.warns(UserWarning, match="overrides the study's stored attention rule"):
        strict = analysis.analyze(lenient, golden_rule="all", n_boot=50, glmm=False)
    assert _rates(strict.fool_rates)["gan"] == pytest.approx(1 / 3) and strict.params["golden_rule_source"] == "given"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same rule given explicitly: no warning
        analysis.analyze(lenient, golden_rule=1, n_boot=50, glmm=False)


def test_timeouts_are_their_own_rule_and_never_golden_misses():
    """With a response window: A's two kept test trials and B's golden miss time out. The timeout rule
    removes A's trials (not A), and B's late golden miss is no miss, so B (T, T, T, T) is kept."""
    raters, trials = _study()
    trials["timed_out"] = False
    a_kept = trials.index[(trials.rater_id == "A") & ~trials.is_practice & ~trials.is_golden][:2]
    b_miss = trials.index[(trials.rater_id == "B") & trials.is_golden & trials.chose_model]
    trials.loc[a_kept.union(b_miss), "timed_out"] = True
    result = analysis.analyze((raters, trials), n_boot=50, glmm=False)
    ex = result.exclusions.set_index("rule")
    assert tuple(ex.loc["timeout"]) == (0, 2) and tuple(ex.loc["golden_failed"]) == (0, 0)
    assert tuple(ex.loc["too_many_voids"]) == (0, 0)
    # gan: A has nothing left (dropped as no_counted_trials), B's four T and D's F -> 4 / 5
    assert _rates(result.fool_rates)["gan"] == pytest.approx(4 / 5)
    assert set(result.counted.rater_id) == {"B", "D", "F"} and not result.counted.timed_out.any()
