"""`prsr inputs`: write the evaluation subset's LR inputs as PNGs + manifest.json for an outside method."""

from __future__ import annotations

from sr_data.paths import default_runs_dir
from sr_models.profiles import load_profile

HELP = "write the evaluation inputs (8x8 PNGs + manifest.json) an outside method runs on"


def add_arguments(p):
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name (default: fashion-mnist)")
    p.add_argument("--profile", default="quick", help="smoke | quick | paper | path to a YAML profile (default: quick)")
    p.add_argument(
        "--runs-dir",
        default=default_runs_dir(),
        help="folder of runs (default: $PRSR_HOME/runs, else runs); truth.npz is read or made there",
    )
    p.add_argument("--data-root", default=None, help="raw data folder (default: $PRSR_DATA or the dataset's default)")
    p.add_argument("--seed", type=int, default=None, help="seed of the subset (default: the profile's)")
    p.add_argument("--out", required=True, help="output folder: <image_id>.png and manifest.json")
    p.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE", help="override a profile key (repeatable)"
    )


def run(args) -> int:
    from prsr.pipelines.inputs import write_inputs  # noqa: PLC0415  pipeline loaded only when the command runs (`prsr --help` stays quick)

    manifest = write_inputs(
        args.dataset,
        load_profile(args.profile, overrides=args.set),
        args.out,
        runs_dir=args.runs_dir,
        data_root=args.data_root,
        seed=args.seed,
    )
    print(f"wrote the inputs and {manifest}")
    return 0
