"""`prsr eval`: Table 1 for a dataset, or scores of a folder of outputs against a folder of ground truth."""

from __future__ import annotations

from pathlib import Path

from sr_data.paths import default_runs_dir

HELP = "predict the test subset with every available method, score it, write Table 1 (or --pred/--gt folders)"


def add_arguments(p):
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name (default: fashion-mnist)")
    p.add_argument("--profile", default="quick", help="smoke | quick | paper | path to a YAML profile (default: quick)")
    p.add_argument(
        "--runs-dir", default=default_runs_dir(), help="folder of runs (default: $PRSR_HOME/runs, else runs)"
    )
    p.add_argument("--data-root", default=None, help="raw data folder (default: $PRSR_DATA or the dataset's default)")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: every available one)")
    p.add_argument("--study-db", default=None, help="study database URL: fills the %% fooled column")
    p.add_argument("--seed", type=int, default=None, help="seed of the subset and the samples (default: the profile's)")
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="evaluate the learned methods' runs of training seeds S..S+N-1 (from `prsr train --seeds N`) on the "
        "same images; Table 1 shows mean ± sd (default 1)",
    )
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="reuse the prediction chunks an interrupted evaluation left (same checkpoint, seed, ids)",
    )
    p.add_argument("--pred", default=None, help="folder of output images to score (with --gt)")
    p.add_argument("--gt", default=None, help="folder of ground-truth images, matched by file name (with --pred)")
    p.add_argument("--out", default=None, help="with --pred/--gt: output folder (default: <pred>_scores)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a profile key for this run, e.g. methods.resnet_l2.train.steps=3 "
        "(repeatable; VALUE parsed as YAML; unknown keys are refused)",
    )


def _score_folders(args) -> int:
    from prsr.pipelines.score_folders import score_folders  # noqa: PLC0415  (CLI start-up: loaded when used)

    per_image, means = score_folders(args.pred, args.gt)
    out = Path(args.out) if args.out else Path(str(Path(args.pred).resolve()) + "_scores")
    out.mkdir(parents=True, exist_ok=True)
    per_image.to_csv(out / "per_image.csv", index=False)
    means.to_frame("value").rename_axis("metric").to_csv(out / "means.csv")
    print(means.to_string())
    print(f"wrote {out / 'per_image.csv'} and {out / 'means.csv'}")
    return 0


def run(args) -> int:
    if args.pred or args.gt:
        if not (args.pred and args.gt):
            raise ValueError("--pred and --gt go together: a folder of outputs and a folder of ground truth")
        return _score_folders(args)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be a positive integer, got {args.seeds}")
    # CLI start-up: `prsr --help` and the other commands must not pay for torch and the pipeline (noqa below)
    import torch  # noqa: PLC0415

    from baselines.registry import row_labels  # noqa: PLC0415
    from metrics.table import to_markdown  # noqa: PLC0415
    from prsr.pipelines.evaluate import evaluate  # noqa: PLC0415
    from sr_models.profiles import load_profile  # noqa: PLC0415

    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    device = torch.device(args.device) if args.device else None
    profile = load_profile(args.profile, overrides=args.set)
    table = evaluate(
        args.dataset,
        profile,
        args.runs_dir,
        methods=methods,
        data_root=args.data_root,
        study_db=args.study_db,
        device=device,
        seed=args.seed,
        resume=args.resume,
        n_seeds=args.seeds,
    )
    if table is None:  # a torchrun rank other than 0: it wrote its chunks, rank 0 writes Table 1
        return 0
    print()
    print(to_markdown(table, title=f"Table 1 - {args.dataset}", labels=table.attrs.get("labels") or row_labels()))
    return 0
