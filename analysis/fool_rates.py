"""Fool rates of a 2AFC study: loading, exclusion rules, per-method estimates, pairwise tests.

Input is the study contract (`study_app.export.read_tables`): a raters table
(`rater_id, method, status, golden_correct, golden_total`) and a trials table of answered trials
(`rater_id, method, image_id, trial_index, is_practice, is_golden, real_side, choice, chose_model,
exposure_ms, reaction_ms, tab_hidden`, and `timed_out` where the study had a response window).

The fool rate of a method is the share of its *counted* trials in which the model's image was chosen as
real. A trial counts when it is a test trial (not practice, not golden), its rater is kept, and it
passes the exposure-quality rules. The rules are applied in this fixed order, and `exclusions` reports
what each one removed that the earlier ones had not:

1. `practice`          practice trials never count (trials only);
2. `golden_trials`     golden trials never count; they only feed rule 4 (trials only);
3. `incomplete`        raters whose status is not `complete` (default `incomplete="drop"`; with
                       `"keep"` an abandoned or in-progress rater's answered test trials count, judged by
                       rule 4 on the golden questions they answered);
4. `golden_failed`     raters who failed the golden rule: an integer N drops raters with more than N
                       misses, `"all"` (= 0) any miss, `"none"` switches it off. By default
                       (`golden_rule=None`) the analysis follows the study's stored attention rule
                       (`attention_max_misses`, the misses the app let a rater have and still finish)
                       and, where the study stored none, `"all"`; a rule given that differs from
                       the stored one is used with a warning. Misses are counted from the answered,
                       in-time golden trials, whatever their exposure (a timed-out golden answer is
                       no miss, as in the app);
5. `too_many_voids`    raters with more than `max_voids` voided attempts (default 2: a pair shown but
                       not answered because the page was reloaded, practice included; reloading to
                       skip hard pairs is thereby capped; `None` switches it off). Voids come from the
                       study's `voided_trials` (`voided.csv` in an export folder); without them the
                       rule removes nothing;
6. `hidden_tab`        trials during which the browser tab was hidden (`drop_hidden_tab=True`);
7. `timeout`           trials answered after the study's response window (`timed_out`; only studies
                       with a response window have any). Counted on their own, never as voids, so a
                       slow rater loses those trials, not their place;
8. `exposure`          trials whose measured exposure is off the nominal exposure by more than
                       `exposure_tolerance_ms` (default 20 ms; a missing measurement cannot be checked
                       and is removed; `None` switches the rule off). In a staircase (HYPE-time) study
                       each trial is compared with the exposure it was issued with (`target_exposure_ms`);
9. `no_counted_trials` raters left without a counted trial.

Uncertainty: the reported `se`, `ci_low`, `ci_high` are the jackknife-over-raters SE and its logit-scale
t interval (`analysis.intervals`; 0.935-0.954 coverage at the paper's design); `boot_se`, `boot_ci_low`,
`boot_ci_high` the earlier percentile bootstrap over raters (`analysis.bootstrap`, kept for comparison;
0.917-0.942); `glmm_*` from the crossed random-effects check (`analysis.glmm`);
`binomial_se` = sqrt(p (1 - p) / trials) is the naive binomial SE, for comparison with the paper only
(it treats all trials as independent and is about half the honest SE).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from analysis.bootstrap import bootstrap_rates, holm_adjust, method_rng, paired_difference_test, summarize
from analysis.deviations import DEVIATION_COLUMNS, plan_deviations
from analysis.glmm import fit_glmm
from analysis.intervals import difference_test, rate_interval
from baselines.registry import table_rows
from study_app import export

RATER_COLUMNS = ["rater_id", "method", "status", "golden_correct", "golden_total"]
TRIAL_COLUMNS = [
    "rater_id",
    "method",
    "image_id",
    "trial_index",
    "is_practice",
    "is_golden",
    "real_side",
    "choice",
    "chose_model",
    "exposure_ms",
    "reaction_ms",
    "tab_hidden",
]
FOOL_RATE_COLUMNS = [
    "method",
    "raters_kept",
    "raters_dropped",
    "trials",
    "fool_rate",
    "se",
    "ci_low",
    "ci_high",
    "glmm_rate",
    "glmm_ci_low",
    "glmm_ci_high",
    "binomial_se",
    "boot_se",
    "boot_ci_low",
    "boot_ci_high",
]
EXCLUSION_COLUMNS = ["rule", "raters_removed", "trials_removed"]
PAIRWISE_COLUMNS = [
    "method_a",
    "method_b",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "boot_ci_low",
    "boot_ci_high",
    "boot_p_value",
]
RULES = [
    "practice",
    "golden_trials",
    "incomplete",
    "golden_failed",
    "too_many_voids",
    "hidden_tab",
    "timeout",
    "exposure",
    "no_counted_trials",
]
STATUSES = {"complete", "in_progress", "abandoned", "screened_out"}
DEFAULT_MAX_VOIDS = 2
# Table-1 order; methods not listed follow in alphabetical order
DEFAULT_EXPOSURE_MS = 1000.0  # the protocol's 1 s exposure, used when the study does not record its own


@dataclass
class StudyData:
    """A study's contract tables plus `study_info` (empty for tables given directly) and its URL if any."""

    raters: pd.DataFrame
    trials: pd.DataFrame
    info: dict = field(default_factory=dict)
    db_url: str | None = None
    voided: pd.DataFrame | None = None  # voided attempts (at least `rater_id`), None when unknown

    @property
    def simulated(self) -> bool:
        return bool(self.info.get("simulated", False))


@dataclass
class Analysis:
    """Everything `analyze` computed. Frames carry `attrs["simulated"]`."""

    fool_rates: pd.DataFrame
    exclusions: pd.DataFrame
    pairwise: pd.DataFrame
    counted: pd.DataFrame  # the counted trials (contract columns)
    per_rater: pd.DataFrame  # method, rater_id, trials, fooled (kept raters)
    boot: dict  # method -> float [n_boot] bootstrap replicates of the pooled rate
    study: StudyData
    params: dict
    # settings that differ from the study's analysis plan (`analysis.deviations.DEVIATION_COLUMNS`)
    deviations: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DEVIATION_COLUMNS))

    @property
    def simulated(self) -> bool:
        return self.study.simulated


# ----------------------------------------------------------------------------------------------- loading


def as_db_url(source: str | Path) -> str:
    """A SQLAlchemy URL from a URL (kept) or an existing file path (-> `sqlite:///<absolute path>`)."""
    text = str(source)
    if "://" in text:
        return text
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"study database {text!r} is neither a SQLAlchemy URL nor an existing file")
    return f"sqlite:///{path.resolve()}"


def load_study(source) -> StudyData:
    """Read a study from a database URL or SQLite file, an export folder, or in-memory tables.

    source: `StudyData`; `(raters, trials)` or `(raters, trials, info)` DataFrames; a folder written by
    `prsr study export` (raters.csv, trials.csv, and voided.csv and study.json where present); or a
    SQLAlchemy URL / SQLite file path, read with `study_app.export.read_tables` and `study_info`.
    """
    if isinstance(source, StudyData):
        study = source
    elif isinstance(source, tuple):
        if len(source) not in (2, 3):
            raise ValueError(f"expected (raters, trials) or (raters, trials, info), got a tuple of {len(source)}")
        study = StudyData(source[0], source[1], dict(source[2]) if len(source) == 3 else {})
    elif isinstance(source, (str, Path)) and Path(str(source)).is_dir():
        folder = Path(source)
        for name in ("raters.csv", "trials.csv"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder} has no {name} (expected the output of `prsr study export`)")
        voided = pd.read_csv(folder / "voided.csv") if (folder / "voided.csv").is_file() else None
        info = json.loads((folder / "study.json").read_text()) if (folder / "study.json").is_file() else {}
        study = StudyData(pd.read_csv(folder / "raters.csv"), pd.read_csv(folder / "trials.csv"), info, voided=voided)
    elif isinstance(source, (str, Path)):
        url = as_db_url(source)
        raters, trials = export.read_tables(url)
        study = StudyData(raters, trials, dict(export.study_info(url)), db_url=url, voided=export.read_voided(url))
    else:
        raise ValueError(f"cannot read a study from {type(source).__name__}: give a URL, a folder or (raters, trials)")
    if study.voided is not None and "rater_id" not in study.voided.columns:
        raise ValueError("the voided table lacks the column 'rater_id'")
    return StudyData(_check_raters(study.raters), _check_trials(study.trials), study.info, study.db_url, study.voided)


def _as_bool(series: pd.Series, name: str) -> pd.Series:
    """Booleans from bool, 0/1 or 'true'/'false' text (CSV round trips); anything else is an error."""
    if series.dtype == bool:
        return series
    # 1 and 0 find the True and False keys (equal hashes)
    mapping = {True: True, False: False, "true": True, "false": False, "1": True, "0": False}
    values = series.map(lambda v: mapping.get(v.strip().lower() if isinstance(v, str) else v))
    if values.isna().any():
        bad = series[values.isna()].iloc[0]
        raise ValueError(f"column {name!r} must hold booleans, found {bad!r}")
    return values.astype(bool)


def _check_raters(raters: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in RATER_COLUMNS if c not in raters.columns]
    if missing:
        raise ValueError(f"raters table lacks columns {missing}; expected {RATER_COLUMNS}")
    raters = raters[RATER_COLUMNS].copy()
    if raters["rater_id"].duplicated().any():
        raise ValueError(
            f"raters table repeats rater_id {raters['rater_id'][raters['rater_id'].duplicated()].iloc[0]!r}"
        )
    bad = set(raters["status"]) - STATUSES
    if bad:
        raise ValueError(f"raters table has unknown status {sorted(bad)}; expected one of {sorted(STATUSES)}")
    raters["method"] = raters["method"].astype(str)
    return raters


def _check_trials(trials: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in TRIAL_COLUMNS if c not in trials.columns]
    if missing:
        raise ValueError(f"trials table lacks columns {missing}; expected {TRIAL_COLUMNS}")
    timed_out = trials["timed_out"].fillna(False) if "timed_out" in trials.columns else False
    target = trials["target_exposure_ms"] if "target_exposure_ms" in trials.columns else float("nan")
    trials = trials[TRIAL_COLUMNS].copy()
    trials["timed_out"] = timed_out  # optional: tables from before response windows have none
    trials["target_exposure_ms"] = pd.to_numeric(target, errors="coerce")  # optional: NaN = the nominal
    for name in ("is_practice", "is_golden", "chose_model", "tab_hidden", "timed_out"):
        trials[name] = _as_bool(trials[name], name)
    trials["method"] = trials["method"].astype(str)
    trials["exposure_ms"] = pd.to_numeric(trials["exposure_ms"], errors="coerce")
    if trials.duplicated(["rater_id", "trial_index"]).any():
        row = trials[trials.duplicated(["rater_id", "trial_index"])].iloc[0]
        raise ValueError(f"trials table repeats (rater_id, trial_index) = ({row.rater_id!r}, {row.trial_index})")
    return trials


def order_methods(methods) -> list[str]:
    """Table-1 order first, then the remaining methods alphabetically."""
    methods = set(methods)
    known = [m for m in table_rows() if m in methods]
    return known + sorted(methods - set(known))


def temperature_of(method: str) -> float | None:
    """The sampling temperature in a method name like `pixel_recursive_t0.9`, else None."""
    match = re.search(r"_t(\d+(?:\.\d+)?)$", method)
    return float(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------- exclusion


def parse_golden_rule(rule) -> int | None:
    """Maximum golden misses a kept rater may have: "all" -> 0, "none" -> None (no rule), N or "N" -> N."""
    if isinstance(rule, str):
        text = rule.strip().lower()
        if text == "all":
            return 0
        if text == "none":
            return None
        text = text.removeprefix("max_misses=")
        if text.isdigit():
            return int(text)
    elif isinstance(rule, (int, np.integer)) and not isinstance(rule, bool) and rule >= 0:
        return int(rule)
    raise ValueError(
        f"golden_rule must be 'all', 'none' or a maximum number of misses (e.g. 1 or 'max_misses=1'), got {rule!r}"
    )


def resolve_golden_rule(golden_rule, info: dict) -> tuple[int | None, str]:
    """(maximum misses or None, where the rule came from: "study" | "default" | "given").

    None follows the study's stored `attention_max_misses` (else "all"); a given rule that differs
    from a stored one is used, with a warning naming both."""
    stored = info.get("attention_max_misses")
    if golden_rule is None:
        return (int(stored), "study") if stored is not None else (0, "default")
    max_misses = parse_golden_rule(golden_rule)
    if stored is not None and max_misses != int(stored):
        warnings.warn(
            f"golden rule {golden_rule!r} overrides the study's stored attention rule "
            f"(attention_max_misses={int(stored)}: raters with up to {int(stored)} misses finished and were paid); "
            "report this deviation",
            stacklevel=3,
        )
    return max_misses, "given"


def _check_rules(study: StudyData, incomplete: str, exposure_tolerance_ms) -> None:
    """ValueError for rule options out of range or trials that do not match the raters table."""
    if incomplete not in ("drop", "keep"):
        raise ValueError(f"incomplete must be 'drop' or 'keep', got {incomplete!r}")
    if exposure_tolerance_ms is not None and not exposure_tolerance_ms >= 0:
        raise ValueError(f"exposure_tolerance_ms must be >= 0 or None, got {exposure_tolerance_ms!r}")
    raters, trials = study.raters, study.trials
    unknown = set(trials["rater_id"]) - set(raters["rater_id"])
    if unknown:
        raise ValueError(f"trials reference raters missing from the raters table: {sorted(map(str, unknown))[:5]}")
    rater_method = trials["rater_id"].map(raters.set_index("rater_id")["method"])
    if (rater_method != trials["method"]).any():
        row = trials[rater_method != trials["method"]].iloc[0]
        raise ValueError(f"trial of rater {row.rater_id!r} has method {row.method!r}, but the rater's method differs")


def apply_exclusions(
    study: StudyData,
    *,
    golden_rule=None,
    incomplete: str = "drop",
    exposure_tolerance_ms: float | None = 20.0,
    nominal_exposure_ms: float | None = None,
    drop_hidden_tab: bool = True,
    max_voids: int | None = DEFAULT_MAX_VOIDS,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Apply the rules in the module docstring's order.

    Returns (counted trials, kept raters, exclusions table with one row per rule in `RULES` order);
    the table's attrs hold `nominal_exposure_ms`, `golden_max_misses` and `golden_rule_source`.
    """
    max_misses, rule_source = resolve_golden_rule(golden_rule, study.info)
    _check_rules(study, incomplete, exposure_tolerance_ms)
    raters, trials = study.raters, study.trials
    nominal = float(
        nominal_exposure_ms if nominal_exposure_ms is not None else study.info.get("exposure_ms", DEFAULT_EXPOSURE_MS)
    )

    removed = {rule: [0, 0] for rule in RULES}
    kept_raters = set(raters["rater_id"])
    test = ~trials["is_practice"] & ~trials["is_golden"]
    removed["practice"][1] = int(trials["is_practice"].sum())
    removed["golden_trials"][1] = int((trials["is_golden"] & ~trials["is_practice"]).sum())
    live = trials[test]

    def drop_raters(rule: str, ids: set) -> None:
        nonlocal live, kept_raters
        ids = ids & kept_raters
        removed[rule][0] += len(ids)
        gone = live["rater_id"].isin(ids)
        removed[rule][1] += int(gone.sum())
        live = live[~gone]
        kept_raters = kept_raters - ids

    if incomplete == "drop":
        drop_raters("incomplete", set(raters.loc[raters["status"] != "complete", "rater_id"]))
    if max_misses is not None:
        golden = trials[trials["is_golden"] & ~trials["is_practice"] & ~trials["timed_out"]]
        misses = golden.groupby("rater_id")["chose_model"].sum()
        drop_raters("golden_failed", set(misses.index[misses > max_misses]))
    if max_voids is not None:
        if isinstance(max_voids, bool) or int(max_voids) != max_voids or max_voids < 0:
            raise ValueError(f"max_voids must be an integer >= 0 or None, got {max_voids!r}")
        if study.voided is not None and len(study.voided):
            voids = study.voided.groupby("rater_id").size()
            drop_raters("too_many_voids", set(voids.index[voids > max_voids]))

    def drop_trials(rule: str, mask: pd.Series) -> None:
        nonlocal live
        removed[rule][1] += int(mask.sum())
        live = live[~mask]

    if drop_hidden_tab:
        drop_trials("hidden_tab", live["tab_hidden"])
    drop_trials("timeout", live["timed_out"])
    if exposure_tolerance_ms is not None:
        # a staircase study issues each pair with its own exposure: compare with that one
        staircase = study.info.get("exposure_mode") == "staircase" and nominal_exposure_ms is None
        target = live["target_exposure_ms"].fillna(nominal) if staircase else nominal
        off = (live["exposure_ms"] - target).abs()
        drop_trials("exposure", ~(off <= exposure_tolerance_ms))  # NaN (not measured) fails too
    drop_raters("no_counted_trials", kept_raters - set(live["rater_id"]))

    exclusions = pd.DataFrame([(rule, *removed[rule]) for rule in RULES], columns=EXCLUSION_COLUMNS)
    exclusions.attrs.update(
        simulated=study.simulated,
        nominal_exposure_ms=nominal,
        golden_max_misses=max_misses,
        golden_rule_source=rule_source,
    )
    kept = raters[raters["rater_id"].isin(kept_raters)]
    return live.reset_index(drop=True), kept.reset_index(drop=True), exclusions


# ---------------------------------------------------------------------------------------------- estimates


def analyze(
    source,
    *,
    golden_rule=None,
    incomplete: str = "drop",
    exposure_tolerance_ms: float | None = 20.0,
    nominal_exposure_ms: float | None = None,
    drop_hidden_tab: bool = True,
    max_voids: int | None = DEFAULT_MAX_VOIDS,
    n_boot: int = 10_000,
    seed: int = 0,
    glmm: bool = True,
    pairs: list[tuple[str, str]] | None = None,
    progress: bool = False,
) -> Analysis:
    """Fool rates per method with bootstrap-over-raters intervals, the GLMM check and pairwise tests.

    source: see `load_study`. Rates are fractions in [0, 1]. A method with no kept rater gets a row with
    zero counts and NaN estimates. `n_boot` resamples per method (>= 10,000 for reported numbers);
    the draws depend only on (seed, method). `pairs`: the (a, b) pairs to compare (the Holm family;
    default every pair of methods with data). `deviations` lists where the settings differ from the
    study's analysis plan (`analysis.deviations`).
    """
    if int(n_boot) < 2:
        raise ValueError(f"n_boot must be >= 2, got {n_boot}")
    study = load_study(source)
    params = dict(
        golden_rule=golden_rule,
        incomplete=incomplete,
        exposure_tolerance_ms=exposure_tolerance_ms,
        nominal_exposure_ms=nominal_exposure_ms,
        drop_hidden_tab=drop_hidden_tab,
        max_voids=max_voids,
        n_boot=int(n_boot),
        seed=int(seed),
        glmm=bool(glmm),
    )
    counted, kept, exclusions = apply_exclusions(
        study,
        golden_rule=golden_rule,
        incomplete=incomplete,
        exposure_tolerance_ms=exposure_tolerance_ms,
        nominal_exposure_ms=nominal_exposure_ms,
        drop_hidden_tab=drop_hidden_tab,
        max_voids=max_voids,
    )
    params["nominal_exposure_ms"] = exclusions.attrs["nominal_exposure_ms"]
    params["golden_max_misses"] = exclusions.attrs["golden_max_misses"]  # the rule applied (None: off)
    params["golden_rule_source"] = exclusions.attrs["golden_rule_source"]
    per_rater = (
        counted.groupby(["method", "rater_id"], sort=False)["chose_model"]
        .agg(trials="size", fooled="sum")
        .reset_index()
    )
    methods = order_methods(set(study.raters["method"]) | set(study.info.get("methods", [])))

    rows, boot = [], {}
    iterator = tqdm(methods, desc="fool rates", unit="method") if progress else methods
    for method in iterator:
        n_raters = int((study.raters["method"] == method).sum())
        row, reps = _method_row(method, n_raters, per_rater, counted, n_boot, seed, glmm)
        rows.append(row)
        if reps is not None:
            boot[method] = reps
    table = pd.DataFrame(rows).reindex(columns=FOOL_RATE_COLUMNS)
    for name in ("raters_kept", "raters_dropped", "trials"):
        table[name] = table[name].astype(int)
    pairwise = _pairwise_table(table, boot, methods, pairs)
    deviations = plan_deviations(study.info, params, pairwise)

    for frame in (table, exclusions, pairwise):
        frame.attrs.update(simulated=study.simulated, n_boot=int(n_boot), seed=int(seed))
    return Analysis(table, exclusions, pairwise, counted, per_rater, boot, study, params, deviations)


def _method_row(method, n_raters, per_rater, counted, n_boot, seed, glmm) -> tuple[dict, np.ndarray | None]:
    """One fool_rates.csv row (counts, pooled rate, jackknife SE and interval, bootstrap ones, GLMM columns)
    and the bootstrap replicates of the pooled rate (None for a method without a kept rater)."""
    mine = per_rater[per_rater["method"] == method]
    n_kept = len(mine)
    n_trials = int(mine["trials"].sum())
    row = dict(method=method, raters_kept=n_kept, raters_dropped=n_raters - n_kept, trials=n_trials)
    if n_kept == 0:
        return row, None
    fooled, trials = mine["fooled"].to_numpy(np.int64), mine["trials"].to_numpy(np.int64)
    rate, se, lo, hi = (float(x) for x in rate_interval(fooled, trials))
    reps = bootstrap_rates(fooled, trials, int(n_boot), method_rng(seed, method))
    boot_se, boot_lo, boot_hi = summarize(reps)
    row.update(
        fool_rate=rate,
        se=se,
        ci_low=lo,
        ci_high=hi,
        binomial_se=math.sqrt(rate * (1.0 - rate) / n_trials),
        boot_se=float(boot_se),
        boot_ci_low=float(boot_lo),
        boot_ci_high=float(boot_hi),
    )
    if glmm:
        row.update(_glmm_columns(counted[counted["method"] == method], method, seed))
    return row, reps


def _pairwise_table(table: pd.DataFrame, boot: dict, methods: list[str], pairs=None) -> pd.DataFrame:
    """pairwise.csv: every pair of methods with data in Table-1 order (or the given `pairs` that have data),
    a - b with its Welch t interval and test on the jackknife SEs (`analysis.intervals.difference_test`) and,
    as `boot_*`, the bootstrap test; `p_holm` is `p_value` Holm-adjusted over all the table's pairs."""
    pair_rows = []
    with_data = [m for m in methods if m in boot]
    if pairs is None:
        pairs = [(a, b) for i, a in enumerate(with_data) for b in with_data[i + 1 :]]
    for a, b in pairs:
        if a in boot and b in boot:
            ra, rb = (table.loc[table.method == m].iloc[0] for m in (a, b))
            lo, hi, p = difference_test(
                ra.fool_rate, ra.se, int(ra.raters_kept), rb.fool_rate, rb.se, int(rb.raters_kept)
            )
            diff = float(ra.fool_rate - rb.fool_rate)
            pair_rows.append((a, b, diff, float(lo), float(hi), float(p), *paired_difference_test(boot[a], boot[b])))
    columns = [c for c in PAIRWISE_COLUMNS if c != "p_holm"]
    table = pd.DataFrame(pair_rows, columns=columns)
    table.insert(columns.index("p_value") + 1, "p_holm", holm_adjust(table["p_value"].to_numpy(float)))
    return table


def _glmm_columns(trials: pd.DataFrame, method: str, seed: int) -> dict:
    """glmm_rate / glmm_ci_low / glmm_ci_high for one method; NaN (with a warning) when it cannot be fitted."""
    if trials["rater_id"].nunique() < 2 or trials["image_id"].nunique() < 2 or trials["chose_model"].nunique() < 2:
        warnings.warn(f"GLMM skipped for {method}: needs >= 2 raters, >= 2 images and both answers", stacklevel=3)
        return {}
    try:
        res = fit_glmm(trials, seed=seed)
    except (RuntimeError, np.linalg.LinAlgError, ValueError) as exc:
        warnings.warn(f"GLMM fit failed for {method}: {exc}", stacklevel=3)
        return {}
    return dict(glmm_rate=res.rate, glmm_ci_low=res.ci_low, glmm_ci_high=res.ci_high)


def fool_rates(
    db_url_or_tables,
    *,
    golden_rule=None,
    incomplete: str = "drop",
    exposure_tolerance_ms: float | None = 20.0,
    nominal_exposure_ms: float | None = None,
    drop_hidden_tab: bool = True,
    max_voids: int | None = DEFAULT_MAX_VOIDS,
    n_boot: int = 10_000,
    seed: int = 0,
    glmm: bool = True,
) -> pd.DataFrame:
    """The `fool_rates.csv` table (columns `FOOL_RATE_COLUMNS`, rates as fractions), `attrs["simulated"]`.

    Arguments as `analyze` (nominal_exposure_ms=None: the study's own `exposure_ms`, else 1000).
    """
    return analyze(
        db_url_or_tables,
        golden_rule=golden_rule,
        incomplete=incomplete,
        exposure_tolerance_ms=exposure_tolerance_ms,
        nominal_exposure_ms=nominal_exposure_ms,
        drop_hidden_tab=drop_hidden_tab,
        max_voids=max_voids,
        n_boot=n_boot,
        seed=seed,
        glmm=glmm,
    ).fool_rates


def exclusions(db_url_or_tables, **rules) -> pd.DataFrame:
    """The `exclusions.csv` table: rule, raters_removed, trials_removed, in the fixed rule order.

    rules: the rule arguments of `apply_exclusions` (golden_rule, incomplete, exposure_tolerance_ms,
    nominal_exposure_ms, drop_hidden_tab, max_voids)."""
    return apply_exclusions(load_study(db_url_or_tables), **rules)[2]


def pairwise(db_url_or_tables, **kwargs) -> pd.DataFrame:
    """The `pairwise.csv` table: method_a, method_b, diff (a - b), ci_low, ci_high (95 % Welch t interval of
    the difference on jackknife SEs), p_value (its t test, unadjusted), p_holm (Holm-adjusted over all pairs),
    boot_ci_low, boot_ci_high, boot_p_value (the bootstrap over raters' percentile interval and test)."""
    kwargs.setdefault("glmm", False)
    return analyze(db_url_or_tables, **kwargs).pairwise


def per_image_rates(analysis: Analysis) -> pd.DataFrame:
    """Fool rate of every (method, image) over its counted trials: method, image_id, trials, fooled, fool_rate."""
    out = analysis.counted.groupby(["method", "image_id"])["chose_model"].agg(trials="size", fooled="sum").reset_index()
    out["fool_rate"] = out["fooled"] / out["trials"]
    return out
