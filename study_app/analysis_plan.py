"""The *analysis plan*: how the study's data will be analysed, fixed at `prsr study init`, before any data.

Not to be confused with the trial schedule (`builder.build_plan`, the `slots` / `plan_items` tables):
the analysis plan says which raters and trials will count (the exclusion rules and their thresholds),
what the primary analysis is, which pairs of methods are compared and with which correction, and the
seeds. It is stored in the `study` row as canonical JSON beside its sha256 (`analysis_plan`,
`analysis_plan_sha256`), so a later change to the stored text is detectable, and rendered as a readable
pre-registration (`preregistration_markdown`, written by `prsr study export` as `preregistration.md`).
`prsr analyze` reports against it and lists every deviation.

The rule names and defaults are those of `analysis.fool_rates.apply_exclusions` (this layer cannot
import `analysis`; `tests/test_analysis_plan.py` checks the two agree).
"""

from __future__ import annotations

import hashlib
import itertools
import json

PLAN_VERSION = 1
DEFAULT_RULES = dict(
    incomplete="drop",  # raters who did not complete the session are dropped
    max_voids=2,  # raters with more voided attempts (reloads, resizes) are dropped; None: off
    drop_hidden_tab=True,  # trials during which the tab was hidden are dropped
    drop_timeouts=True,  # trials answered after the response window are dropped (always, as analysis does)
    exposure_tolerance_ms=20.0,  # trials whose measured exposure is off the nominal by more are dropped
)
DEFAULT_PRIMARY = dict(
    estimate="pooled fool rate per method (fooled counted trials / counted trials)",
    interval="95 % logit-scale t interval (raters - 1 df) on the jackknife-over-raters SE; "
    "percentile bootstrap over raters reported beside it (boot_*)",
    n_boot=10_000,
    analysis_seed=0,
    check="crossed rater x image logistic GLMM, marginal rate (secondary)",
    pairwise_test="two-sided Welch t test of the difference a - b on the jackknife SEs, with its 95 % interval",
    correction="Holm over all planned pairs",
    alpha=0.05,
)

STAIRCASE_ANALYSIS = dict(
    estimate="per method: geometric mean over raters of each rater's threshold (geometric mean of the exposures "
    "at the staircase's reversals after the first discard_reversals; else of the second half of the trials)",
    interval="95 % percentile bootstrap over raters",
    n_boot=10_000,
)


def make_analysis_plan(
    *,
    methods: list[str],
    raters_per_method: int,
    n_test: int,
    n_practice: int,
    n_golden: int,
    exposure_ms: int,
    seed: int,
    attention_max_misses: int | None,
    response_window_ms: int | None,
    pairs: list[tuple[str, str]] | None = None,
    rules: dict | None = None,
    staircase: dict | None = None,
) -> dict:
    """The analysis plan as a JSON-able dict. `pairs` default: every pair of `methods` in their order;
    `rules` override `DEFAULT_RULES` (unknown names are an error). The golden rule is the study's
    attention rule (`attention_max_misses`; None -> 0, i.e. any missed golden question drops the rater).
    `staircase`: the HYPE-time rule as JSON (`StaircaseRule.to_json`); None for a fixed exposure."""
    rules = dict(DEFAULT_RULES, **(rules or {}))
    unknown = set(rules) - set(DEFAULT_RULES)
    if unknown:
        raise ValueError(f"unknown analysis-plan rule(s) {sorted(unknown)}; expected {sorted(DEFAULT_RULES)}")
    pairs = [tuple(p) for p in pairs] if pairs else list(itertools.combinations(methods, 2))
    for a, b in pairs:
        if a not in methods or b not in methods or a == b:
            raise ValueError(f"planned pair {a}:{b} must name two different study methods ({', '.join(methods)})")
    golden = 0 if attention_max_misses is None else int(attention_max_misses)
    return dict(
        version=PLAN_VERSION,
        methods=list(methods),
        raters_per_method=int(raters_per_method),
        trials_per_rater=dict(counted=int(n_test) - int(n_golden), golden=int(n_golden), practice=int(n_practice)),
        nominal_exposure_ms=float(exposure_ms),
        # HYPE-time studies: the staircase rule (study_app.staircase) and the threshold analysis; each trial's
        # exposure is then checked against the exposure it was issued with
        **({} if staircase is None else dict(staircase=dict(staircase), threshold=dict(STAIRCASE_ANALYSIS))),
        response_window_ms=response_window_ms,
        exclusions=dict(golden_max_misses=golden, **rules),
        primary=dict(DEFAULT_PRIMARY),
        pairs=[list(p) for p in pairs],
        seed=int(seed),
    )


def canonical_json(plan: dict) -> str:
    """The stored text: sorted keys, no spaces, so equal plans hash equally."""
    return json.dumps(plan, sort_keys=True, separators=(",", ":"))


def plan_sha256(plan: dict) -> str:
    """sha256 (hex) of `canonical_json(plan)`, UTF-8."""
    return hashlib.sha256(canonical_json(plan).encode("utf-8")).hexdigest()


def _rule_lines(ex: dict, plan: dict) -> list[str]:
    window = plan.get("response_window_ms")
    return [
        "1. Practice and golden trials never count.",
        f"2. Raters who did not complete the session: **{ex['incomplete']}**.",
        f"3. Golden (attention) rule: raters with more than **{ex['golden_max_misses']}** missed golden "
        "questions are dropped.",
        "4. Voided attempts (reloads, resizes): raters with more than "
        + (f"**{ex['max_voids']}** are dropped." if ex["max_voids"] is not None else "any number are kept (off)."),
        f"5. Trials during which the tab was hidden: **{'dropped' if ex['drop_hidden_tab'] else 'kept'}**.",
        "6. Trials answered after the response window: "
        + (f"**dropped** (window {window} ms)." if window else "none possible (no response window)."),
        "7. Trials whose measured exposure is off "
        + (
            "the exposure the trial was issued with (its staircase step)"
            if plan.get("staircase")
            else f"the nominal {plan['nominal_exposure_ms']:g} ms"
        )
        + " by more than "
        + (
            f"**{ex['exposure_tolerance_ms']:g} ms** are dropped (an unmeasured exposure too)."
            if ex["exposure_tolerance_ms"] is not None
            else "any amount are kept (off)."
        ),
        "8. Raters left without a counted trial are dropped.",
    ]


def preregistration_markdown(plan: dict, sha256: str, *, dataset: str = "", created_at: str = "") -> str:
    """The readable pre-registration of a stored analysis plan (markdown)."""
    pr, trials = plan["primary"], plan["trials_per_rater"]
    lines = [
        f"# Pre-registration: 2AFC study{f' on {dataset}' if dataset else ''}",
        "",
        f"Analysis plan fixed at `prsr study init`{f' on {created_at}' if created_at else ''}, before any data. "
        f"sha256 of the stored plan: `{sha256}`.",
        "",
        "## Design",
        "",
        f"- Methods ({len(plan['methods'])}): {', '.join(f'`{m}`' for m in plan['methods'])}",
        f"- Raters per method: {plan['raters_per_method']} (each rater sees one method)",
        f"- Trials per rater: {trials['counted']} counted + {trials['golden']} golden (attention) + "
        f"{trials['practice']} practice",
        f"- Exposure: {_exposure_line(plan)}; schedule seed {plan['seed']}",
        "",
        "## Exclusion rules (applied in this order)",
        "",
        *_rule_lines(plan["exclusions"], plan),
        "",
        "## Primary analysis",
        "",
        f"- Estimate: {pr['estimate']}",
        f"- Interval: {pr['interval']}, {pr['n_boot']} resamples, seed {pr['analysis_seed']}",
        f"- Check: {pr['check']}",
        f"- Pairs compared ({len(plan['pairs'])}): " + ", ".join(f"`{a}` vs `{b}`" for a, b in plan["pairs"]),
        f"- Test: {pr['pairwise_test']}; {pr['correction']}; a difference is claimed when the adjusted "
        f"p <= {pr['alpha']:g}",
        "",
        *_threshold_lines(plan),
        "Any analysis that departs from this plan is reported by `prsr analyze` as a deviation (`deviations.csv`).",
        "",
    ]
    return "\n".join(lines)


def _exposure_line(plan: dict) -> str:
    rule = plan.get("staircase")
    if not rule:
        return f"{plan['nominal_exposure_ms']:g} ms"
    grid = rule["grid_ms"]
    return (
        f"HYPE-time staircase ({rule['down']}-down/{rule['up']}-up, Levitt 1971) on {len(grid)} exposures "
        f"{grid[0]}–{grid[-1]} ms, starting at {rule['start_ms']} ms; golden pairs at {grid[-1]} ms"
    )


def _threshold_lines(plan: dict) -> list[str]:
    th = plan.get("threshold")
    if not th:
        return []
    return [
        "## Threshold analysis (HYPE-time)",
        "",
        f"- Estimate: {th['estimate']} (first {plan['staircase']['discard_reversals']} reversals left out)",
        f"- Interval: {th['interval']}, {th['n_boot']} resamples, seed {plan['primary']['analysis_seed']}",
        "- The fool rates above pool trials shown at different exposures; the threshold is the primary result.",
        "",
    ]


def stored_plan(info: dict) -> tuple[dict, str, bool] | None:
    """(plan, stored sha256, whether the sha256 matches the plan) from `study_info`, or None (an older study)."""
    plan = info.get("analysis_plan")
    if not plan:
        return None
    sha = info.get("analysis_plan_sha256") or ""
    return plan, sha, sha == plan_sha256(plan)
