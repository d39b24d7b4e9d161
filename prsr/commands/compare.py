"""`prsr compare ROW_A ROW_B`: whether two Table-1 rows differ beyond the seed spread and the resampling."""

from __future__ import annotations

from sr_data.paths import default_runs_dir

HELP = "say whether two Table-1 rows differ beyond the spread (training seeds + image/pair resampling)"


def add_arguments(p):
    p.add_argument("row_a", metavar="ROW_A", help="a Table-1 row, e.g. resnet_l2")
    p.add_argument("row_b", metavar="ROW_B", help="another row, e.g. bicubic")
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name (default: fashion-mnist)")
    p.add_argument(
        "--runs-dir", default=default_runs_dir(), help="folder of runs (default: $PRSR_HOME/runs, else runs)"
    )
    p.add_argument("--alpha", type=float, default=0.05, help="two-sided level of the test (default 0.05)")
    p.add_argument("--out", default=None, help="also write the lines to this CSV file")


def run(args) -> int:
    # CLI start-up: pandas and the pipeline load only when this command runs (noqa below)
    from metrics.registry import METRICS  # noqa: PLC0415
    from prsr.pipelines.compare import compare_rows  # noqa: PLC0415

    result = compare_rows(args.runs_dir, args.dataset, args.row_a, args.row_b, alpha=args.alpha)
    if result.empty:
        print(f"no metric is defined for both {args.row_a} and {args.row_b}")
        return 0
    print(f"{args.row_a} - {args.row_b} on {args.dataset} ({int(result['n_seeds'].iloc[0])} seed(s))")
    for line in result.itertuples():
        fmt = METRICS[line.metric].format if line.metric in METRICS else "{:.1f}".format
        verdict = "SEPARATED" if line.separated else "not separated"
        print(
            f"  {line.metric:15s} diff {fmt(line.diff):>9s} [{fmt(line.ci_low)}, {fmt(line.ci_high)}]"
            f"  df {line.df:.3g}  p {line.p:.3g}  {verdict}"
        )
    print(f"test: {result['test'].iloc[0]}")
    if args.out:
        result.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return 0
