"""Every benchmark script starts the way `make bench` runs it (`python bench/X.py`, whose folder comes first on
sys.path): a script named like a package of the toolkit (e.g. bench/metrics.py) would shadow it and break the
others' imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "bench").glob("*.py"))
PACKAGES = {"sr_data", "metrics", "sr_models", "baselines", "study_app", "analysis", "prsr"}


def test_no_bench_script_shadows_a_package():
    assert SCRIPTS and not {p.stem for p in SCRIPTS} & PACKAGES


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_script_starts(script):
    res = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
