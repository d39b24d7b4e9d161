"""`prsr`: the toolkit's command line. Each sub-command lives in `prsr/commands/<name>.py` and defines
`HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.

Exit codes: 0 done; 2 usage error (a bad command line, option value, profile key or `--set`, a method
that does not exist, an output that would overwrite something); 1 bad data (missing or unreadable
files: `FileNotFoundError`, `sr_data.errors.DataError`) or failed work (e.g. a non-finite training loss).
What the libraries say goes through `logging` (INFO by default to stderr; `-q` warnings only, `-v` debug).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from sr_data.errors import DataError
from sr_models.allocator import tune_allocator

# sub-command -> module under prsr.commands; listed in the order `prsr --help` shows them
COMMANDS = {
    "data": "data",
    "train": "train",
    "eval": "evaluate",
    "compare": "compare",
    "inputs": "inputs",
    "import": "import_",
    "upscale": "upscale",
    "corners": "corners",
    "study": "study",
    "analyze": "analyze",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prsr", description="Pixel Recursive Super Resolution toolkit")
    parser.add_argument("--version", action="version", version=f"prsr {version()}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug messages too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"prsr.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def version() -> str:
    """The installed distribution's version (importlib.metadata), or a note when running from a bare source tree."""
    try:
        return _version("pixel-recursive-sr")
    except PackageNotFoundError:
        return "(not installed)"


EXIT_USAGE = 2
EXIT_FAILED = 1


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the record (tests and notebooks swap it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(quiet: bool = False, verbose: bool = False) -> None:
    """The libraries' `logging` output: one line per record on stderr."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_prsr", False)]:
        root.removeHandler(old)
    handler._prsr = True
    root.addHandler(handler)
    root.setLevel(level)


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a bad command line (2)
        return int(exc.code or 0)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    configure_logging(args.quiet, args.verbose)
    tune_allocator()  # before the first large tensor: keeps freed memory for the next step
    try:
        return int(args._run(args) or 0)
    except (FileNotFoundError, DataError) as exc:
        # bad data: missing or unreadable inputs -- one clear line, not a traceback
        print(f"prsr {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as exc:
        # usage errors (bad values, unknown keys or methods, refusing to overwrite)
        print(f"prsr {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
