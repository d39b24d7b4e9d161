"""`prsr`: the toolkit's command line. Each sub-command lives in `prsr/commands/<name>.py` and defines
`HELP` (one line), `add_arguments(parser)` and `run(args) -> int`."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> module under prsr.commands; listed in the order `prsr --help` shows them
COMMANDS = {
    "data": "data",
    "train": "train",
    "eval": "evaluate",
    "upscale": "upscale",
    "corners": "corners",
    "study": "study",
    "analyze": "analyze",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prsr", description="Pixel Recursive Super Resolution toolkit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"prsr.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        # user errors (missing data, bad values): one clear line, not a traceback
        print(f"prsr {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
