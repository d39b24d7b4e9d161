"""`prsr train`: run folders, refusing to overwrite, --fresh / --resume, NaN exit code, --method all, and a
real `prsr train` process killed with SIGKILL and resumed to the same parameters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from trainer_tiny import fake_load_pairs, register, tiny_profile

import sr_data
from baselines.registry import METHODS, MethodSpec
from prsr.cli import main
from prsr.commands import train as train_cmd
from sr_models.runlog import read_log

TESTS = Path(__file__).resolve().parent
TRAIN = dict(
    steps=6,
    batch_size=4,
    optimizer="adam",
    lr=1e-2,
    log_every=2,
    val_every=3,
    val_images=10,
    ckpt_every=3,
    grid_every=6,
    grid_images=2,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # 2 shared cores: OpenMP spin-waits make millisecond steps 100x slower with 2 threads. Restored afterwards.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def env(tmp_path, monkeypatch):
    register(monkeypatch)
    monkeypatch.setattr(sr_data, "load_pairs", fake_load_pairs)
    profile = tmp_path / "tiny.yaml"
    profile.write_text(yaml.safe_dump(tiny_profile(TRAIN, train_limit=16)))
    return tmp_path, ["--profile", str(profile), "--runs-dir", str(tmp_path / "runs")]


def test_train_writes_the_run_folder_and_prints_the_result(env, capsys):
    tmp, common = env
    assert main(["train", "--method", "tiny_bn", "--steps", "4", "--seed", "11"] + common) == 0
    out = capsys.readouterr().out
    run = tmp / "runs" / "tiny" / "tiny_bn"
    assert str(run) in out and "final validation: mse=" in out
    for name in ("model.safetensors", "config.json", "state.pt", "log.csv", "samples/step_000004.png"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["steps"] == 4 and config["overrides"] == {"steps": 4}
    assert config["seed"] == 11 and config["profile"] == "tiny" and config["dataset"] == "tiny"
    assert (config["train_pairs"], config["train_pairs_available"]) == (16, 24)  # data.train_limit applied
    assert torch.load(run / "state.pt", weights_only=True)["sampler"]["n"] == 16


def test_existing_run_needs_resume_or_fresh(env, capsys):
    tmp, common = env
    args = ["train", "--method", "tiny_bn"] + common
    assert main(args) == 0
    run = tmp / "runs" / "tiny" / "tiny_bn"
    weights = (run / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds a checkpoint" in err and "--resume" in err and "--fresh" in err
    assert (run / "model.safetensors").read_bytes() == weights
    assert main(args + ["--resume"]) == 0  # already finished: nothing to train, same weights
    assert (run / "model.safetensors").read_bytes() == weights
    assert main(args + ["--fresh"]) == 0
    old = [p for p in run.parent.iterdir() if p.name.startswith("tiny_bn.old-")]
    assert len(old) == 1 and (old[0] / "model.safetensors").read_bytes() == weights
    assert "moved the old run folder" in capsys.readouterr().out


def test_non_finite_loss_exits_with_1(env, capsys):
    tmp, common = env
    profile = tiny_profile(TRAIN)
    profile["methods"]["tiny_bn"]["model"] = {"nan_at": 4}
    path = tmp / "nan.yaml"
    path.write_text(yaml.safe_dump(profile))
    assert main(["train", "--method", "tiny_bn", "--profile", str(path), "--runs-dir", str(tmp / "runs")]) == 1
    err = capsys.readouterr().err
    assert "non-finite training loss at step 5" in err and "checkpoint (step 3)" in err


def test_method_all_trains_every_method_in_order(env, capsys, monkeypatch):
    tmp, common = env
    monkeypatch.setattr(train_cmd, "TRAIN_ALL_ORDER", ("tiny_bn", "tiny_gan"))
    assert main(["train", "--method", "all", "--steps", "2"] + common) == 0
    out = capsys.readouterr().out
    assert out.index("[1/2] tiny_bn") < out.index("[2/2] tiny_gan") < out.index("all 2 methods trained")
    assert (tmp / "runs" / "tiny" / "tiny_bn" / "model.safetensors").exists()
    assert (tmp / "runs" / "tiny" / "tiny_gan" / "model.safetensors").exists()


def test_method_all_fails_first_if_a_module_is_missing(env, capsys, monkeypatch):
    tmp, common = env
    monkeypatch.setattr(train_cmd, "TRAIN_ALL_ORDER", ("tiny_bn", "tiny_gan"))
    monkeypatch.setitem(METHODS, "tiny_gan", MethodSpec("tiny_gan", "no_such_module:GAN", True, ("tiny_gan",)))
    assert main(["train", "--method", "all"] + common) == 2
    err = capsys.readouterr().err
    assert "method 'tiny_gan'" in err and "no_such_module" in err
    assert not (tmp / "runs").exists()  # nothing trained before the check


def test_the_real_train_order_is_every_learned_method():
    assert set(train_cmd.TRAIN_ALL_ORDER) == {s.name for s in METHODS.values() if s.learned}
    assert train_cmd.TRAIN_ALL_ORDER[0] == "pixel_recursive"


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import sr_data, trainer_tiny
trainer_tiny.register()
sr_data.load_pairs = trainer_tiny.fake_load_pairs
from prsr.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkilled_prsr_train_resumes_to_the_same_parameters(tmp_path, monkeypatch):

    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(TESTS)))
    train = dict(TRAIN, steps=30, ckpt_every=10, val_every=10, grid_every=30, log_every=5)
    profile = tmp_path / "p.yaml"  # the killed run sleeps in every step so that the kill lands mid-way
    profile.write_text(yaml.safe_dump(tiny_profile(train, model={"step_delay": 0.05})))
    env = dict(os.environ, OMP_NUM_THREADS="1")  # the same single thread as this process (see _one_thread)

    def cmd(*extra):
        return [
            sys.executable,
            str(driver),
            "train",
            "--method",
            "tiny_bn",
            "--profile",
            str(profile),
            "--runs-dir",
            str(tmp_path / "run"),
            *extra,
        ]

    victim = subprocess.Popen(cmd(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "run" / "tiny" / "tiny_bn" / "state.pt"
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    killed_at = torch.load(state, weights_only=True)["step"]
    assert killed_at in (10, 20), killed_at  # stopped mid-way, after a checkpoint

    resumed = subprocess.run(cmd("--resume"), env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    # The uninterrupted reference, in this process (no sleeping: it changes no number).
    register(monkeypatch)
    monkeypatch.setattr(sr_data, "load_pairs", fake_load_pairs)
    ref_profile = tmp_path / "ref.yaml"
    ref_profile.write_text(yaml.safe_dump(tiny_profile(train)))
    assert (
        main(["train", "--method", "tiny_bn", "--profile", str(ref_profile), "--runs-dir", str(tmp_path / "ref")]) == 0
    )

    a = load_file(tmp_path / "ref" / "tiny" / "tiny_bn" / "model.safetensors")
    b = load_file(tmp_path / "run" / "tiny" / "tiny_bn" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [
        [(r["step"], r["split"], r.get("loss"), r.get("mse")) for r in read_log(tmp_path / d / "tiny" / "tiny_bn")]
        for d in ("ref", "run")
    ]
    assert rows[0] == rows[1] and len(rows[0]) == 6 + 3  # the same rows, none duplicated by the killed session
