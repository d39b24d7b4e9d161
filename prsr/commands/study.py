"""`prsr study init|serve|export|prereg|simulate|plan`: the human forced-choice study (Section 5.3).

`study_app` is imported inside each step (with `# noqa: PLC0415`): it pulls in SQLAlchemy, pandas and
PIL, and every `prsr` command would otherwise pay that start-up time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prsr.commands.study_plan import add_plan_parser, run_plan
from study_app.staircase import DEFAULT_GRID_MS, MODES, StaircaseRule

HELP = "build, serve, export or simulate the 2AFC human study (SQLite or any SQLAlchemy URL)"


def add_arguments(parser):
    sub = parser.add_subparsers(dest="study_command", metavar="STEP")
    _add_init(sub)
    _add_serve(sub)
    p = sub.add_parser(
        "export",
        help="write raters.csv, trials.csv, voided.csv, study.json (the settings) and preregistration.md (the plan)",
    )
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("prereg", help="print the study's analysis plan as its pre-registration (markdown)")
    p.add_argument("--db", required=True)
    _add_simulate(sub)
    add_plan_parser(sub)
    parser.set_defaults(_parser=parser)


def _add_init(sub) -> None:
    p = sub.add_parser("init", help="create a study database from runs/<dataset>/predictions")
    p.add_argument("--predictions", required=True, help="folder with truth.npz and <method>.npz")
    p.add_argument("--db", required=True, help="SQLAlchemy URL or SQLite file path (must not hold a study)")
    p.add_argument(
        "--methods",
        default=None,
        help="comma-separated methods (default: the paper's study rows present in the folder)",
    )
    p.add_argument("--raters-per-method", type=int, default=40)
    p.add_argument("--n-trials", type=int, default=45, help="counted trials per rater, golden included")
    p.add_argument("--n-practice", type=int, default=10)
    p.add_argument("--n-golden", type=int, default=5)
    p.add_argument("--display-px", type=int, default=192, help="CSS pixels each 32x32 image is shown at")
    p.add_argument(
        "--abandon-after-min",
        type=float,
        default=30.0,
        help="minutes of inactivity after which a rater's slot is given to someone else",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default=None, help="dataset name (default: the folder above predictions/)")
    p.add_argument("--config", default=None, help="study YAML: texts, platform, codes, rules (docs/study-settings.md)")
    p.add_argument(
        "--platform",
        choices=["prolific", "mturk", "none"],
        default=None,
        help="crowd platform whose link parameters and hand-off the app uses (default: none)",
    )
    p.add_argument(
        "--completion-url",
        default=None,
        help="where a finished participant is sent, with a {code} placeholder "
        "(Prolific: https://app.prolific.com/submissions/complete?cc={code})",
    )
    p.add_argument(
        "--completion-code",
        default=None,
        help="one study-wide completion code, or 'per-rater' (default) for a random code per rater",
    )
    p.add_argument(
        "--require-pid",
        action="store_true",
        default=None,
        help="refuse links without a participant id (no anonymous resume tokens)",
    )
    p.add_argument(
        "--max-claims-per-client",
        type=int,
        default=None,
        help="slot claims per client address per hour (default 5; 0: no limit)",
    )
    p.add_argument(
        "--attention-max-misses",
        type=int,
        default=None,
        help="end a session after more failed golden questions (default: never); `prsr analyze` follows it",
    )
    p.add_argument(
        "--response-window-ms",
        type=int,
        default=None,
        help="ms a rater has to choose after the pair is erased; a later choice is recorded as a timeout "
        "(default: no window, only the images are timed)",
    )
    _add_exposure(p)
    _add_analysis_plan(p)


def _add_exposure(p) -> None:
    """HYPE-time: a per-rater staircase on the exposure instead of the fixed 1 s (study_app/staircase.py)."""
    p.add_argument(
        "--exposure",
        choices=MODES,
        default="fixed",
        help="fixed: every pair is shown for 1 s (the paper); staircase: HYPE-time, the exposure of each rater's "
        "pairs moves on a grid by a 3-down/1-up rule and `prsr analyze` reports each method's threshold",
    )
    p.add_argument(
        "--staircase-grid-ms",
        default=None,
        help=f"staircase exposures, comma-separated ascending ms (default {','.join(map(str, DEFAULT_GRID_MS))})",
    )
    p.add_argument(
        "--staircase-start-ms", type=int, default=None, help="first exposure, on the grid (default: the longest)"
    )


def _staircase_rule(args) -> StaircaseRule | None:
    if args.exposure != "staircase":
        if args.staircase_grid_ms or args.staircase_start_ms:
            raise ValueError("--staircase-grid-ms / --staircase-start-ms need --exposure staircase")
        return None
    kw = {}
    if args.staircase_grid_ms:
        try:
            kw["grid_ms"] = tuple(int(x) for x in args.staircase_grid_ms.split(","))
        except ValueError:
            raise ValueError(f"--staircase-grid-ms {args.staircase_grid_ms!r}: expected ms like 100,200,400") from None
        kw["start_ms"] = kw["grid_ms"][-1]
    if args.staircase_start_ms is not None:
        kw["start_ms"] = args.staircase_start_ms
    return StaircaseRule(**kw)


def _add_analysis_plan(p) -> None:
    """The analysis plan's options (stored at init with its sha256; `prsr analyze` reports deviations)."""
    p.add_argument(
        "--pairs",
        default=None,
        help="analysis plan: pairs of methods to compare, e.g. gan:resnet_l2,gan:bicubic (default: all pairs; "
        "Holm-corrected over these)",
    )
    p.add_argument(
        "--exposure-tolerance-ms",
        type=float,
        default=None,
        help="analysis plan: drop trials whose measured exposure is off by more (default 20; -1: no rule)",
    )
    p.add_argument(
        "--max-voids",
        type=int,
        default=None,
        help="analysis plan: drop raters with more voided attempts (default 2; -1: no rule)",
    )


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="run the Streamlit study app")
    p.add_argument("--db", required=True)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument(
        "--address",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1: put a TLS reverse proxy in front; 0.0.0.0 exposes it)",
    )
    p.add_argument(
        "--trusted-proxies",
        type=int,
        default=0,
        help="reverse proxies in front of the app whose X-Forwarded-For entries are trusted (default 0)",
    )


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="fill a fresh study with simulated raters of known fool rates")
    p.add_argument("--db", required=True)
    p.add_argument("--raters", type=int, required=True, help="simulated raters in total (drop-outs included)")
    p.add_argument(
        "--fool-rate",
        action="append",
        default=[],
        metavar="METHOD=P",
        help="marginal fool rate of a method (repeatable); others get the paper's CelebA value or 0.10",
    )
    p.add_argument(
        "--threshold-ms",
        action="append",
        default=None,
        metavar="METHOD=MS",
        help="staircase studies: the raters' true exposure threshold of a method (repeatable; default "
        "study_app.simulate.DEFAULT_THRESHOLDS_MS)",
    )
    p.add_argument("--rater-sd", type=float, default=0.8, help="SD of the rater effect (logit scale)")
    p.add_argument("--image-sd", type=float, default=0.8, help="SD of the image effect (logit scale)")
    p.add_argument("--golden-fail-rate", type=float, default=0.0, help="fraction of inattentive raters")
    p.add_argument("--abandon-rate", type=float, default=0.0, help="fraction of raters who drop out")
    p.add_argument("--seed", type=int, default=0)


def _init(args) -> int:
    from study_app.builder import init_study  # noqa: PLC0415  (start-up time, see the module docstring)
    from study_app.config import load_config  # noqa: PLC0415

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    crowd = load_config(args.config)
    for key in (
        "platform",
        "completion_url",
        "completion_code",
        "require_pid",
        "max_claims_per_client",
        "attention_max_misses",
        "response_window_ms",
    ):
        if getattr(args, key) is not None:  # the command line overrides the file
            crowd[key] = getattr(args, key)
    summary = init_study(
        args.predictions,
        args.db,
        methods=methods,
        raters_per_method=args.raters_per_method,
        n_test=args.n_trials,
        n_practice=args.n_practice,
        n_golden=args.n_golden,
        seed=args.seed,
        dataset=args.dataset,
        display_px=args.display_px,
        abandon_after_s=int(round(args.abandon_after_min * 60)),
        staircase=_staircase_rule(args),
        crowd=crowd,
        analysis_pairs=_parse_pairs(args.pairs),
        analysis_rules=_plan_rules(args),
    )
    print(
        f"study written to {summary['url']}: methods {', '.join(summary['methods'])}; "
        f"{summary['images']} images; {summary['slots']} rater slots; "
        f"analysis plan sha256 {summary['analysis_plan_sha256'][:12]}… (`prsr study prereg --db ...` prints it)"
    )
    if summary["spare_images"] < 5:
        print(
            f"note: only {summary['spare_images']} images beyond one session: once a rater has seen them all, "
            "a voided pair is replaced by the same image again (see docs/study-settings.md)"
        )
    return 0


def _parse_pairs(text: str | None) -> list[tuple[str, str]] | None:
    if not text:
        return None
    pairs = []
    for item in text.split(","):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"--pairs: expected METHOD_A:METHOD_B items separated by commas, got {item!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


def _plan_rules(args) -> dict:
    rules = {}
    if args.exposure_tolerance_ms is not None:
        rules["exposure_tolerance_ms"] = None if args.exposure_tolerance_ms < 0 else args.exposure_tolerance_ms
    if args.max_voids is not None:
        rules["max_voids"] = None if args.max_voids < 0 else args.max_voids
    return rules


def _prereg(args) -> int:
    from study_app.db import normalise_url  # noqa: PLC0415  (start-up time)
    from study_app.export import preregistration, study_info  # noqa: PLC0415

    print(preregistration(study_info(normalise_url(args.db))), end="")
    return 0


def _serve(args) -> int:
    from study_app.db import normalise_url  # noqa: PLC0415  (start-up time)
    from study_app.export import study_info  # noqa: PLC0415

    url = normalise_url(args.db)
    info = study_info(url)  # fail early, with a clear message, if there is no study
    app = Path(__file__).resolve().parents[2] / "study_app" / "app.py"
    if args.trusted_proxies < 0:
        raise ValueError(f"--trusted-proxies must be >= 0, got {args.trusted_proxies}")
    # the URL travels in the environment, not on the command line
    env = dict(os.environ, PRSR_STUDY_DB=url, PRSR_STUDY_TRUSTED_PROXIES=str(args.trusted_proxies))
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(args.port),
        "--server.address",
        args.address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    print(
        f"serving the {info['dataset']} study ({', '.join(info['methods'])}) on port {args.port}; "
        "admin page: ?admin=1 (secret from PRSR_STUDY_ADMIN_SECRET or Streamlit secrets)"
    )
    return subprocess.call(cmd, env=env)


def _export(args) -> int:
    from study_app.export import write_export  # noqa: PLC0415  (start-up time)

    paths = list(write_export(args.db, args.out).values())
    print(f"wrote {', '.join(map(str, paths[:-1]))} and {paths[-1]}")
    return 0


def _simulate(args) -> int:
    from study_app.simulate import parse_fool_rates, parse_thresholds, simulate_study  # noqa: PLC0415  (start-up)

    result = simulate_study(
        args.db,
        args.raters,
        parse_fool_rates(args.fool_rate),
        rater_sd=args.rater_sd,
        image_sd=args.image_sd,
        golden_fail_rate=args.golden_fail_rate,
        abandon_rate=args.abandon_rate,
        seed=args.seed,
        thresholds_ms=parse_thresholds(args.threshold_ms),
    )
    rates = ", ".join(f"{m}={p:g}" for m, p in result["true_fool_rates"].items())
    print(
        f"SIMULATED answers written to {result['url']}: {result['complete']} complete, "
        f"{result['abandoned']} abandoned, {result['screened_out']} screened-out raters; "
        f"true marginal fool rates {rates}"
    )
    return 0


def run(args) -> int:
    steps = {
        "init": _init,
        "serve": _serve,
        "export": _export,
        "simulate": _simulate,
        "prereg": _prereg,
        "plan": run_plan,
    }
    if not getattr(args, "study_command", None):
        args._parser.print_help()
        return 2
    return steps[args.study_command](args)
