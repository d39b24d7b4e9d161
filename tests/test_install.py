"""A library, not only a repo: a non-editable install (a built wheel installed into a fresh folder) works
from another folder: `prsr --version`, the shipped profiles and assets, defaults outside the package.

Offline: the wheel is built with the venv's own setuptools (`--no-build-isolation --no-index`), and the
installed copy is put first on PYTHONPATH from a folder that does not hold the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sr_data", "sr_models", "baselines", "metrics", "study_app", "analysis", "prsr")


def _run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"  # a copy, so building leaves no build/ or egg-info in the worktree
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "wheel"), str(src)])
    (wheel,) = (tmp / "wheel").glob("*.whl")
    _run([*pip, "install", "--no-deps", "--no-index", "--target", str(tmp / "site"), str(wheel)])
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PRSR_CACHE", "PRSR_HOME", "PRSR_CONFIGS")}
    env["PYTHONPATH"] = str(tmp / "site")
    return tmp, wheel, elsewhere, env


@pytest.mark.slow
def test_wheel_ships_profiles_and_assets(installed):
    _, wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for need in (
        "sr_models/configs/smoke.yaml",
        "sr_models/configs/quick.yaml",
        "sr_models/configs/paper.yaml",
        "analysis/fool_rate_analysis.ipynb",
        "study_app/app.py",
        "prsr/commands/import_.py",
    ):
        assert need in names, need
    assert not any(n.startswith("tests/") for n in names)


@pytest.mark.slow
def test_installed_copy_runs_from_another_folder(installed):
    tmp, _, elsewhere, env = installed
    site = tmp / "site"
    res = _run([sys.executable, "-m", "prsr", "--version"], cwd=elsewhere, env=env)
    assert res.stdout.strip().startswith("prsr 0.")
    script = site / "bin" / "prsr"
    assert script.is_file()
    assert _run([sys.executable, str(script), "--version"], cwd=elsewhere, env=env).stdout == res.stdout
    probe = (
        "import json, prsr, sr_models, sr_data.cache, sr_data.datasets as d\n"
        "from prsr.commands.evaluate import add_arguments\n"
        "import argparse; p = argparse.ArgumentParser(); add_arguments(p)\n"
        "prof = prsr.load_profile('quick')\n"
        "print(json.dumps({'prsr': prsr.__file__, 'sr_models': sr_models.__file__, 'profile': prof['name'],\n"
        "  'subset': prof['eval']['subset'], 'cache': str(sr_data.cache.cache_root()),\n"
        "  'celeba': str(d.resolve_root('celeba', None)), 'runs': p.parse_args([]).runs_dir}))\n"
    )
    out = json.loads(_run([sys.executable, "-c", probe], cwd=elsewhere, env=env).stdout.strip().splitlines()[-1])
    assert out["prsr"].startswith(str(site)) and out["sr_models"].startswith(str(site))
    assert out["profile"] == "quick" and out["subset"] > 0
    assert out["cache"] == str(elsewhere / "data" / "cache")  # the working directory, not the package
    assert out["celeba"] == str(elsewhere / "data" / "celeba")
    assert out["runs"] == "runs"
    home = tmp / "home"
    out = json.loads(
        _run([sys.executable, "-c", probe], cwd=elsewhere, env={**env, "PRSR_HOME": str(home)})
        .stdout.strip()
        .splitlines()[-1]
    )
    assert out["cache"] == str(home / "data" / "cache") and out["runs"] == str(home / "runs")
