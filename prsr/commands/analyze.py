"""`prsr analyze`: fool rates of a study database with jackknife-over-raters intervals (analysis/).

The analysis packages are imported inside `run` (with `# noqa: PLC0415`): they pull in pandas, scipy and
statsmodels, and every `prsr` command would otherwise pay that start-up time."""

from __future__ import annotations

HELP = "fool rates ± CI (jackknife over raters), exclusions, pairwise tests (and the notebook) from a study database"


def add_arguments(parser):
    parser.add_argument("--db", required=True, help="study database: SQLAlchemy URL or SQLite file path")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument(
        "--golden-rule",
        default=None,
        help="most golden misses a kept rater may have, e.g. 1; 'all' (= 0: any miss drops the rater) or "
        "'none' (no rule). Default: the study's stored attention rule (init --attention-max-misses), "
        "else 'all'; a rule that differs from the stored one is applied with a warning",
    )
    parser.add_argument(
        "--incomplete",
        choices=["drop", "keep"],
        default=None,
        help="raters who did not complete the session: drop or keep their answered trials (default: the plan's, drop)",
    )
    parser.add_argument(
        "--exposure-tolerance-ms",
        type=float,
        default=None,
        help="drop trials whose measured exposure is off the nominal by more than this (default: the plan's, 20)",
    )
    parser.add_argument("--no-exposure-rule", action="store_true", help="switch the exposure rule off")
    parser.add_argument("--keep-hidden-tab", action="store_true", help="keep trials during which the tab was hidden")
    parser.add_argument(
        "--max-voids",
        type=int,
        default=None,
        help="drop raters with more voided attempts (pairs skipped by reloading; default: the plan's, 2; -1: no rule)",
    )
    parser.add_argument(
        "--n-boot",
        type=int,
        default=None,
        help="bootstrap resamples per method for the boot_* columns (default: the plan's, 10000)",
    )
    parser.add_argument("--seed", type=int, default=None, help="bootstrap seed (default: the plan's, 0)")
    parser.add_argument("--no-glmm", action="store_true", help="skip the crossed random-effects GLMM check")
    parser.add_argument(
        "--notebook",
        action="store_true",
        help="also execute analysis/fool_rate_analysis.ipynb into --out (ipynb + html)",
    )
    parser.add_argument(
        "--table1",
        default=None,
        help="table1.csv whose machine-observer rates the notebook shows beside the study's "
        "(default: a table1.csv in the study file's folder or the one above)",
    )


def run(args) -> int:
    import analysis  # noqa: PLC0415  (CLI start-up time, see the module docstring)
    from analysis.fool_rates import as_db_url  # noqa: PLC0415
    from analysis.report import write_outputs  # noqa: PLC0415

    url = as_db_url(args.db)
    study = analysis.load_study(url)
    params = _settings(args, study.info)
    result = analysis.analyze(study, progress=True, **params)  # deviations from the plan: result.deviations
    agreement = _agreement(result, url, args.table1)
    paths = write_outputs(result, args.out, agreement)
    misses, source = result.params["golden_max_misses"], result.params["golden_rule_source"]
    rule = "off" if misses is None else f"drop raters with more than {misses} golden misses"
    print(f"golden rule: {rule} ({dict(study='the study', default='the default', given='--golden-rule')[source]})")

    banner = "SIMULATED study (not human data) — " if result.simulated else ""
    print(f"{banner}fool rates (%), ± = jackknife SE over raters, [95 % logit-t CI]:")
    for row in result.fool_rates.itertuples():
        if row.trials == 0:
            print(f"  {row.method:24s} no counted trials ({row.raters_dropped} raters dropped)")
            continue
        glmm = "" if row.glmm_rate != row.glmm_rate else f"   GLMM {100 * row.glmm_rate:.1f}"
        print(
            f"  {row.method:24s} {100 * row.fool_rate:5.1f} ± {100 * row.se:.1f}  "
            f"[{100 * row.ci_low:.1f}, {100 * row.ci_high:.1f}]  {row.raters_kept} raters, {row.trials} trials"
            f"{glmm}   (naive binomial SE {100 * row.binomial_se:.1f})"
        )
    removed = result.exclusions[(result.exclusions.raters_removed > 0) | (result.exclusions.trials_removed > 0)]
    print(
        "excluded: "
        + (
            "; ".join(f"{r.rule}: {r.raters_removed} raters, {r.trials_removed} trials" for r in removed.itertuples())
            or "nothing"
        )
    )
    _print_pairwise(result.pairwise)
    _print_thresholds(paths.get("thresholds.csv"))
    _print_images(result, agreement)
    _print_deviations(result)
    if args.notebook:
        from analysis.notebook import execute_notebook  # noqa: PLC0415  (nbconvert: only with --notebook)

        ipynb, html = execute_notebook(url, args.out, params, table1=args.table1)
        paths["notebook"], paths["notebook_html"] = ipynb, html
    for path in paths.values():
        print(f"wrote {path}")
    if result.simulated:
        print("NOTE: these numbers come from a SIMULATED study database.")
    return 0


def _print_thresholds(path) -> None:
    """A staircase (HYPE-time) study: each method's exposure threshold (thresholds.csv)."""
    if path is None:
        return
    import pandas as pd  # noqa: PLC0415  (CLI start-up time)

    print("HYPE-time exposure thresholds (ms; geometric mean over raters [95 % bootstrap CI over raters]):")
    for r in pd.read_csv(path).itertuples():
        pinned = f"; {100 * r.at_longest:.0f} % of raters at the longest exposure" if r.at_longest > 0 else ""
        print(f"  {r.method:24s} {r.threshold_ms:6.0f}  [{r.ci_low:.0f}, {r.ci_high:.0f}]  {r.raters} raters{pinned}")


def _print_pairwise(pairwise) -> None:
    """Each pair's difference (points) with its 95 % CI, the raw p and the Holm-adjusted p over all pairs."""
    if pairwise.empty:
        return
    print("pairwise a - b (points) [95 % CI], p, p_holm (Holm over all pairs; claim 'a differs from b' if <= 0.05):")
    for r in pairwise.itertuples():
        mark = "  *" if r.p_holm <= 0.05 else ""
        print(
            f"  {r.method_a} - {r.method_b}: {100 * r.diff:+.1f} [{100 * r.ci_low:+.1f}, {100 * r.ci_high:+.1f}]"
            f"  p {r.p_value:.4f}  p_holm {r.p_holm:.4f}{mark}"
        )


def _settings(args, info: dict) -> dict:
    """`analyze` keywords: an option given on the command line, else the study's analysis plan (stored at
    init; for older studies the implied one: today's defaults and the stored attention rule)."""
    from analysis.deviations import planned_settings  # noqa: PLC0415  (CLI start-up time)

    plan, _ = planned_settings(info)
    if args.n_boot is not None and args.n_boot < 2:
        raise ValueError(f"--n-boot must be >= 2, got {args.n_boot}")
    given = lambda value, key: plan[key] if value is None else value  # noqa: E731
    max_voids = given(args.max_voids, "max_voids")
    return dict(
        golden_rule=args.golden_rule,  # None: the study's attention rule, which is the plan's
        incomplete=given(args.incomplete, "incomplete"),
        exposure_tolerance_ms=None
        if args.no_exposure_rule
        else given(args.exposure_tolerance_ms, "exposure_tolerance_ms"),
        drop_hidden_tab=False if args.keep_hidden_tab else plan["drop_hidden_tab"],
        max_voids=None if max_voids is None or max_voids < 0 else max_voids,
        n_boot=given(args.n_boot, "n_boot"),
        seed=given(args.seed, "seed"),
        glmm=not args.no_glmm,
        pairs=plan["pairs"],
    )


def _print_deviations(result) -> None:
    """The deviations from the analysis plan, or a line saying there are none."""
    dev = result.deviations
    which = "the stored analysis plan" if dev.attrs.get("plan") == "stored" else "the implied plan (older study)"
    if dev.empty:
        print(f"deviations from {which}: none")
        return
    print(f"DEVIATIONS from {which} ({len(dev)}; report them):")
    for r in dev.itertuples():
        print(f"  {r.setting}: planned {r.planned}, applied {r.applied}")


def _agreement(result, url: str, table1):
    """People vs the machine observer per image, from the observer_pairs.csv beside `--table1` (or beside a
    table1.csv found next to the study); None when there is none."""
    from analysis.machine import find_table1  # noqa: PLC0415  (CLI start-up time)
    from analysis.per_image import human_machine_agreement, per_image_table, read_observer_pairs  # noqa: PLC0415

    path = find_table1(url, table1)
    pairs = read_observer_pairs(path) if path is not None else None
    if pairs is None:
        if table1:
            print(f"no observer_pairs.csv beside {table1} (re-run `prsr eval`): no per-image agreement")
        return None
    return human_machine_agreement(per_image_table(result), pairs, seed=result.params["seed"])


def _print_images(result, agreement) -> None:
    """Per method: the image that fooled most and least (>= 2 trials), and the agreement with the machine."""
    from analysis.per_image import image_extremes, per_image_table  # noqa: PLC0415  (CLI start-up time)

    ext = image_extremes(per_image_table(result), k=1)
    if not ext.empty:
        print("per image (>= 2 counted trials; all in per_image.csv, top and bottom 5 in image_extremes.csv):")
    for method, mine in ext.groupby("method", sort=False):
        most, least = mine[mine.which == "most"].iloc[0], mine[mine.which == "least"].iloc[0]
        print(
            f"  {method:24s} most: {most.image_id} {most.fooled}/{most.trials}   "
            f"least: {least.image_id} {least.fooled}/{least.trials}"
        )
    if agreement is not None:
        print("people vs machine observer per image (Spearman rho [95 % bootstrap CI over images]):")
        for r in agreement.itertuples():
            print(f"  {r.method:24s} rho {r.spearman:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}] over {r.images} images")
