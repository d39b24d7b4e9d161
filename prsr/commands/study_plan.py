"""`prsr study plan`: simulate whole studies of a design and report interval widths, power, raters, cost.

The analysis package is imported inside the steps (with `# noqa: PLC0415`): it pulls in pandas, scipy and
statsmodels, and every `prsr` command would otherwise pay that start-up time."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

DEFAULT_MINUTES_PER_RATER = 8.0  # consent + instructions + 10 practice + 45 trials at ~3 s + debrief


def add_plan_parser(sub) -> None:
    p = sub.add_parser("plan", help="plan a study: expected CI half-widths, power per pair, raters needed, cost")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--fool-rate", action="append", default=None, metavar="METHOD=P", help="expected rate (repeatable)"
    )
    src.add_argument("--pilot", default=None, help="a pilot study database: its fool rates and minutes per rater")
    src.add_argument(
        "--from-table1",
        default=None,
        metavar="RUNS/DATASET",
        help="Table 1's machine-observer rates as a prior (labelled: the observer does not predict people)",
    )
    p.add_argument("--raters-per-method", type=int, default=40)
    p.add_argument("--n-trials", type=int, default=45, help="trials per rater, golden included (as init)")
    p.add_argument("--n-golden", type=int, default=5)
    p.add_argument("--n-images", type=int, default=1000, help="evaluation images per method (default 1000)")
    p.add_argument("--exclusion-rate", type=float, default=0.05, help="expected share of raters excluded")
    p.add_argument("--rater-sd", type=float, default=0.8, help="SD of the rater effect (logit)")
    p.add_argument("--image-sd", type=float, default=0.8, help="SD of the image effect (logit)")
    p.add_argument("--target-halfwidth", type=float, default=None, help="wanted 95 %% CI half-width (fraction)")
    p.add_argument("--target-power", type=float, default=None, help="wanted power for every unequal pair")
    p.add_argument("--pay-per-hour", type=float, default=None, help="pay per rater-hour (any currency)")
    p.add_argument("--minutes-per-rater", type=float, default=None, help="default: the pilot's median, else 8")
    p.add_argument("--n-studies", type=int, default=500, help="simulated studies per design (default 500)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples per simulated study")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _rates(args) -> tuple[dict, str, float | None]:
    """(expected rates, where they come from, minutes per rater measured in a pilot or None)."""
    from study_app.simulate import parse_fool_rates  # noqa: PLC0415  (start-up time)

    if args.fool_rate:
        return parse_fool_rates(args.fool_rate), "given (--fool-rate)", None
    if args.from_table1:
        return (
            _table1_rates(Path(args.from_table1)),
            "PRIOR from the machine observer (Table 1), not a human rate",
            None,
        )
    return _pilot_rates(args.pilot)


def _table1_rates(folder: Path) -> dict:
    import pandas as pd  # noqa: PLC0415  (start-up time)

    path = folder / "table1.csv" if folder.is_dir() else folder
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (run `prsr eval` with an observer first)")
    table = pd.read_csv(path)
    if "machine_fooled" not in table.columns or table["machine_fooled"].isna().all():
        raise ValueError(f"{path} has no machine_fooled rates (its profile had no observer: section)")
    rows = table.dropna(subset=["machine_fooled"])
    return {r.method: min(0.99, max(0.01, r.machine_fooled / 100)) for r in rows.itertuples()}


def _pilot_rates(db: str) -> tuple[dict, str, float | None]:
    import pandas as pd  # noqa: PLC0415

    import analysis  # noqa: PLC0415  (start-up time)
    from study_app.export import read_tables  # noqa: PLC0415

    result = analysis.analyze(db, n_boot=200, glmm=False)
    rows = result.fool_rates.dropna(subset=["fool_rate"])
    if rows.empty:
        raise ValueError(f"pilot {db} has no counted trials to take rates from")
    # a rate of 0 or 1 in a small pilot is no certainty: keep it inside [1 %, 99 %]
    rates = {r.method: min(0.99, max(0.01, r.fool_rate)) for r in rows.itertuples()}
    minutes = None
    if result.study.db_url:
        raters = read_tables(result.study.db_url)[0]
        done = raters[raters["status"] == "complete"]
        if {"enrolled_at", "completed_at"} <= set(done.columns) and len(done):
            span = pd.to_datetime(done["completed_at"]) - pd.to_datetime(done["enrolled_at"])
            minutes = float(span.dt.total_seconds().median() / 60) if span.notna().any() else None
    return rates, f"pilot study {db} ({int(rows.raters_kept.sum())} kept raters)", minutes


def run_plan(args) -> int:
    from analysis import planning  # noqa: PLC0415  (start-up time)

    rates, source, pilot_minutes = _rates(args)
    design = planning.Design(
        raters_per_method=args.raters_per_method,
        n_trials=args.n_trials,
        n_golden=args.n_golden,
        n_images=args.n_images,
        exclusion_rate=args.exclusion_rate,
        rater_sd=args.rater_sd,
        image_sd=args.image_sd,
    )
    sim = dict(n_studies=args.n_studies, n_boot=args.n_boot, seed=args.seed)
    result = planning.simulate_design(rates, design, **sim)
    needed = {}
    if args.target_halfwidth is not None:
        needed["halfwidth"] = planning.raters_for_halfwidth(rates, design, args.target_halfwidth, result, **sim)
    if args.target_power is not None:
        needed["power"] = planning.raters_for_power(rates, design, args.target_power, **sim)
    minutes = args.minutes_per_rater or pilot_minutes or DEFAULT_MINUTES_PER_RATER
    wanted = [r for r in needed.values() if r is not None]
    final = planning.with_raters(design, max(wanted)) if wanted else design
    report = dict(
        source=source,
        design=dict(asdict(design), counted_trials=design.counted_trials, kept_raters=design.kept_raters),
        **result,
        raters_per_method=final.raters_per_method,
        raters_needed=needed,
        cost=planning.cost(final, len(rates), minutes, args.pay_per_hour),
        simulation=dict(sim, alpha=0.05, correction="Holm over all pairs"),
    )
    print(json.dumps(report, indent=2) if args.json else _text(report))
    return 0


def _text(r: dict) -> str:
    d = r["design"]
    lines = [
        f"rates: {r['source']}",
        f"design: {d['raters_per_method']} raters per method ({d['kept_raters']} kept after "
        f"{100 * d['exclusion_rate']:g} % exclusions) x {d['counted_trials']} counted trials; "
        f"rater SD {d['rater_sd']:g}, image SD {d['image_sd']:g}; {r['simulation']['n_studies']} simulated studies",
        "expected 95 % CI half-width of the fool rate (points):",
        *(
            f"  {m:24s} rate {100 * v['fool_rate']:5.1f}  ± {100 * v['ci_halfwidth']:.1f}"
            for m, v in r["methods"].items()
        ),
        "power per pair (two-sided, alpha 0.05, Holm over all pairs):",
        *(f"  {p['a']} vs {p['b']}: diff {100 * p['diff']:+.1f} points, power {p['power']:.2f}" for p in r["pairs"]),
    ]
    if r["family_wise_rejection"] is not None:
        lines.append(f"family-wise rejection among equal-rate pairs: {r['family_wise_rejection']:.3f}")
    for key, raters in r["raters_needed"].items():
        lines.append(f"raters per method for the target {key}: {raters if raters is not None else 'not reachable'}")
    c = r["cost"]
    total = f", cost {c['total']:.2f} at {c['pay_per_hour']:g} per hour" if c["total"] is not None else ""
    lines.append(
        f"at {r['raters_per_method']} raters per method: {c['raters']} raters, {c['minutes_per_rater']:.1f} min each, "
        f"{c['rater_hours']:.1f} rater-hours{total}"
    )
    if math.isfinite(c["rater_hours"]) and "PRIOR" in r["source"]:
        lines.append("NOTE: the rates are a machine-observer prior; re-plan from a pilot before recruiting.")
    return "\n".join(lines)
