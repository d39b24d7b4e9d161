"""Where the toolkit keeps its files when no folder is given: never inside the installed package.

`home()` is `$PRSR_HOME`, else the working directory. Under it: `data/cache/` (the pair cache, unless
`$PRSR_CACHE`), `data/celeba/`, `data/lsun-bedroom/` (raw data, unless `--data-root` / `$PRSR_DATA`)
and `runs/` (the `--runs-dir` default). Run from the repository, this is the repository's layout.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """$PRSR_HOME, else the current working directory (read at each call)."""
    env = os.environ.get("PRSR_HOME")
    return Path(env).expanduser() if env else Path.cwd()


def default_runs_dir() -> str:
    """The `--runs-dir` default: `$PRSR_HOME/runs`, else `runs` (relative to the working directory)."""
    env = os.environ.get("PRSR_HOME")
    return str(Path(env).expanduser() / "runs") if env else "runs"


def runs_root(runs_dir=None) -> Path:
    """`runs_dir` as a Path, or `default_runs_dir()` when None: the Python API's default, the same as the CLI's."""
    return Path(default_runs_dir() if runs_dir is None else runs_dir)
