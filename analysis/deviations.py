"""The analysis against the study's analysis plan (`study_app.analysis_plan`): planned settings and deviations.

A study made by `prsr study init` stores its analysis plan (exclusion rules and thresholds, the primary
analysis, the pairs, the seeds) with a sha256. `planned_settings` turns it into `analysis.analyze`
keyword arguments, which `prsr analyze` uses unless an option says otherwise; `plan_deviations` lists
every setting the analysis applied that differs from the plan, so a changed threshold is reported, not
silently applied. A study made before plans existed has an *implied* plan: today's defaults and its
stored attention rule (deviations are then listed against that, labelled `implied`).
"""

from __future__ import annotations

import pandas as pd

from study_app.analysis_plan import DEFAULT_PRIMARY, DEFAULT_RULES, stored_plan

DEVIATION_COLUMNS = ["setting", "planned", "applied", "plan"]
# analyze's keyword -> (label in the deviation list)
_COMPARED = {
    "golden_max_misses": "golden rule (max misses)",
    "incomplete": "incomplete raters",
    "max_voids": "max voided attempts",
    "drop_hidden_tab": "drop hidden-tab trials",
    "exposure_tolerance_ms": "exposure tolerance (ms)",
    "nominal_exposure_ms": "nominal exposure (ms)",
    "n_boot": "bootstrap resamples",
    "seed": "analysis seed",
    "glmm": "GLMM check",
}


def planned_settings(info: dict) -> tuple[dict, str]:
    """(the plan's settings as `analyze` keywords + `golden_max_misses` and `pairs`, "stored" | "implied")."""
    found = stored_plan(info)
    if found is None:
        stored = info.get("attention_max_misses")
        rules = dict(DEFAULT_RULES, golden_max_misses=0 if stored is None else int(stored))
        primary, nominal, pairs, source = DEFAULT_PRIMARY, info.get("exposure_ms"), None, "implied"
    else:
        plan = found[0]
        rules, primary, nominal = plan["exclusions"], plan["primary"], plan["nominal_exposure_ms"]
        pairs, source = [tuple(p) for p in plan["pairs"]], "stored"
    settings = dict(
        golden_max_misses=rules["golden_max_misses"],
        incomplete=rules["incomplete"],
        max_voids=rules["max_voids"],
        drop_hidden_tab=rules["drop_hidden_tab"],
        exposure_tolerance_ms=rules["exposure_tolerance_ms"],
        nominal_exposure_ms=None if nominal is None else float(nominal),
        n_boot=int(primary["n_boot"]),
        seed=int(primary["analysis_seed"]),
        glmm=True,
        pairs=pairs,
    )
    return settings, source


def _same(planned, applied) -> bool:
    if isinstance(planned, (int, float)) and isinstance(applied, (int, float)) and planned is not None:
        return float(planned) == float(applied)
    return planned == applied


def plan_deviations(info: dict, params: dict, pairwise: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every applied setting that differs from the (stored or implied) plan: `setting, planned, applied, plan`.

    params: `Analysis.params` (the applied settings, `golden_max_misses` resolved). A stored plan whose
    text no longer matches its sha256, and analysed pairs that differ from the planned ones, are listed
    too. Values are written as text ("None" = rule off). `attrs["plan"]` = "stored" | "implied"."""
    planned, source = planned_settings(info)
    rows = []
    for key, label in _COMPARED.items():
        if key == "nominal_exposure_ms" and planned[key] is None:
            continue  # an older study without a stored exposure: nothing was planned
        if not _same(planned[key], params.get(key)):
            rows.append((label, str(planned[key]), str(params.get(key)), source))
    found = stored_plan(info)
    if found is not None:  # a plan that named another interval or test (e.g. before the jackknife default)
        for key, label in (("interval", "interval"), ("pairwise_test", "pairwise test")):
            planned_text = found[0]["primary"].get(key)
            if planned_text != DEFAULT_PRIMARY[key]:
                rows.append((label, str(planned_text), DEFAULT_PRIMARY[key], source))
    if found is not None and not found[2]:
        rows.append(("plan integrity", f"sha256 {found[1]}", "stored plan text changed after init", source))
    if planned["pairs"] is not None and pairwise is not None:
        # a pair is unordered here: a - b and b - a are the same comparison
        analysed = {frozenset(p) for p in pairwise[["method_a", "method_b"]].itertuples(index=False)}
        wanted = {frozenset(p) for p in planned["pairs"]}
        if analysed != wanted:
            rows.append(
                (
                    "pairs compared (Holm family)",
                    f"{len(wanted)} planned",
                    f"{len(analysed)} analysed; not planned: {_names(analysed - wanted)}; "
                    f"missing (no data?): {_names(wanted - analysed)}",
                    source,
                )
            )
    out = pd.DataFrame(rows, columns=DEVIATION_COLUMNS)
    out.attrs["plan"] = source
    return out


def _names(pairs: set) -> str:
    return ", ".join(sorted(":".join(sorted(p)) for p in pairs)) or "none"
