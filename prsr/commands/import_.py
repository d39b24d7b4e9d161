"""`prsr import NAME`: an outside method's outputs (folder of PNGs, .npz, or a SuperResolver class) become
`runs/<dataset>/predictions/NAME.npz`, a Table-1 row and a study condition."""

from __future__ import annotations

from sr_data.paths import default_runs_dir

HELP = "import an outside method's outputs as predictions/NAME.npz (validated; written atomically)"


def add_arguments(p):
    p.add_argument("name", metavar="NAME", help="row name: [a-z][a-z0-9_.-]{0,39}, not a built-in method or row")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="PATH",
        help="folder of <image_id>.png outputs, or an .npz with `sr` and `ids`",
    )
    src.add_argument(
        "--from-class",
        default=None,
        metavar="MODULE:CLASS",
        help="a SuperResolver importable from the working directory, run on truth.npz's inputs",
    )
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name (default: fashion-mnist)")
    p.add_argument(
        "--runs-dir", default=default_runs_dir(), help="folder of runs (default: $PRSR_HOME/runs, else runs)"
    )
    p.add_argument("--label", default=None, help="Table-1 label (default: NAME)")
    p.add_argument("--force", action="store_true", help="replace an existing NAME.npz (kept as NAME.npz.old-<time>)")


def run(args) -> int:
    from prsr.pipelines.importer import import_method  # noqa: PLC0415  pipeline loaded only when the command runs (`prsr --help` stays quick)

    path = import_method(
        args.name,
        args.dataset,
        source=args.source,
        from_class_target=args.from_class,
        runs_dir=args.runs_dir,
        label=args.label,
        force=args.force,
    )
    print(
        f"wrote {path}; `prsr eval --dataset {args.dataset}` now scores it and "
        f"`prsr study init --methods {args.name}` can show it"
    )
    return 0
