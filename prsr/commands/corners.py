"""`prsr corners`: the two-corners experiment of the paper's Fig. 2 (mode purity and balance)."""

from sr_data.paths import default_runs_dir
from sr_models.profiles import load_profile

HELP = "two-corners experiment (Fig. 2): train L2, per-pixel CE and pixel-recursive models, report mode purity"


def add_arguments(p):
    p.add_argument("--profile", default="quick", help="smoke | quick | paper (default: quick)")
    p.add_argument(
        "--runs-dir",
        default=default_runs_dir(),
        help="folder of runs (default: $PRSR_HOME/runs, else runs); results in <runs>/corners/",
    )
    p.add_argument("--data-root", default=None, help="Fashion-MNIST folder (default: $PRSR_DATA or Debian's)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: the profile's)")
    p.add_argument(
        "--fresh", action="store_true", help="retrain from scratch (old runs are moved aside, never deleted)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a profile key for this run, e.g. methods.resnet_l2.train.steps=3 "
        "(repeatable; VALUE parsed as YAML; unknown keys are refused)",
    )
    p.add_argument(
        "--canvas",
        type=int,
        choices=(16, 32),
        default=None,
        help="target side: 16 (4x4 inputs) or 32 (8x8, the paper's task) (default: the profile's "
        "corners.canvas); another canvas than the profile's writes to <runs>/corners_<S>x<S>/",
    )


def run(args) -> int:
    from prsr.pipelines.corners import run_corners  # noqa: PLC0415  pipeline loaded only when the command runs (`prsr --help` stays quick)

    table = run_corners(
        load_profile(args.profile, overrides=args.set),
        args.runs_dir,
        data_root=args.data_root,
        seed=args.seed,
        fresh=args.fresh,
        canvas=args.canvas,
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0
