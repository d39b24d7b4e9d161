"""`prsr train --jobs N`: trainings side by side as separate processes. The weights equal those of the same
trainings run one after the other on the job's thread count; a failed job stops new ones; bad values are
refused before anything starts."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from baselines.registry import train_order
from prsr.cli import main as prsr_main
from prsr.pipelines.train_jobs import auto_lanes, job_env, log_path, run_jobs, threads_per_job

SMOKE = ["--dataset", "fashion-mnist", "--profile", "smoke"]


@pytest.fixture
def two_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n)


def test_threads_are_split_over_the_lanes():
    assert threads_per_job(2, threads=2) == 1
    assert threads_per_job(2, threads=16) == 8
    assert threads_per_job(4, threads=2) == 1  # never below one
    assert job_env(3, lane=0)["OMP_NUM_THREADS"] == "3"
    with pytest.raises(ValueError, match="--jobs must be a positive integer, got 0"):
        threads_per_job(0)


def test_auto_picks_two_lanes_on_a_cpu_and_one_per_gpu():
    assert auto_lanes(4, threads=2, n_gpus=0) == 2
    assert auto_lanes(12, threads=16, n_gpus=0) == 2
    assert auto_lanes(4, threads=1, n_gpus=0) == 1  # one thread: nothing to split
    assert auto_lanes(1, threads=2, n_gpus=0) == 1  # one training keeps every thread
    assert auto_lanes(4, threads=2, n_gpus=1) == 1  # a single GPU: one at a time, as without --jobs
    assert auto_lanes(8, threads=16, n_gpus=4) == 4
    assert auto_lanes(2, threads=16, n_gpus=4) == 2


def test_auto_with_one_training_runs_it_in_this_process(tmp_path, two_threads, capsys):
    runs = tmp_path / "runs"
    assert prsr_main(["train", "--method", "resnet_l2", *SMOKE, "--runs-dir", str(runs), "--jobs", "auto"]) == 0
    assert "--jobs auto: 1 training(s) at once, 2 thread(s) each" in capsys.readouterr().out
    assert (runs / "fashion-mnist/resnet_l2/model.safetensors").is_file()
    assert not (runs / "fashion-mnist/logs").exists()  # no side-by-side process, so no job log


def _exit_command(failing: str):
    """A job that prints its thread setting and exits 1 when its name is `failing`."""

    def command(name: str, seed: int):
        code = f"import os, sys; print(os.environ['OMP_NUM_THREADS']); sys.exit({int(name == failing)})"
        return [sys.executable, "-c", code]

    return command


def test_a_failed_job_stops_new_ones(tmp_path, two_threads):
    jobs = [(0, "a"), (0, "b"), (0, "c"), (1, "a")]
    lines = []
    failed = run_jobs(jobs, _exit_command("b"), 1, tmp_path, log=lines.append)
    assert failed == [(0, "b")]
    assert log_path(tmp_path, "a", 0).read_text().strip() == "2"  # one lane: all the threads
    assert log_path(tmp_path, "b", 0).is_file()
    assert not log_path(tmp_path, "c", 0).exists() and not log_path(tmp_path, "a", 1).exists()
    assert lines[-1].startswith("prsr train: 1 of 4 trainings done")


def test_every_job_runs_once_on_its_share_of_threads(tmp_path, two_threads):
    jobs = [(s, n) for s in (0, 1) for n in ("a", "b", "c")]
    assert run_jobs(jobs, _exit_command("none"), 2, tmp_path, log=lambda *_: None) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"train-{n}-seed{s}.log" for s, n in jobs)
    assert {log_path(tmp_path, n, s).read_text().strip() for s, n in jobs} == {"1"}


def test_an_interrupt_stops_the_running_jobs(tmp_path, monkeypatch):
    from prsr.pipelines import train_jobs  # noqa: PLC0415  the module whose _Lanes the test patches

    command = [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(120)"]
    out = log_path(tmp_path, "a", 0)

    def interrupt_once_started(_lanes):
        deadline = time.monotonic() + 30
        while not out.read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_jobs._Lanes, "reap", interrupt_once_started)
    with pytest.raises(KeyboardInterrupt):
        run_jobs([(0, "a"), (0, "b")], lambda name, seed: command, 1, tmp_path, log=lambda *_: None)
    with pytest.raises(ProcessLookupError):
        os.kill(int(out.read_text()), 0)  # terminated and reaped
    assert not log_path(tmp_path, "b", 0).exists()


def test_bad_values_are_refused_before_training(tmp_path, capsys):
    runs = ["--runs-dir", str(tmp_path)]
    assert prsr_main(["train", "--method", "resnet_l2", *SMOKE, *runs, "--jobs", "0"]) == 2
    assert "--jobs must be a positive integer, got 0" in capsys.readouterr().err
    assert prsr_main(["train", "--method", "resnet_l2", *SMOKE, *runs, "--jobs", "two"]) == 2
    assert "expected a positive integer or 'auto', got 'two'" in capsys.readouterr().err
    assert prsr_main(["train", "--method", "resnet_l2", *SMOKE, *runs, "--seeds", "2", "--only-seed", "5"]) == 2
    assert "--only-seed 5 is not one of the seeds [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "fashion-mnist").exists()


@pytest.mark.slow
def test_side_by_side_weights_equal_one_thread_runs_one_after_the_other(tmp_path, two_threads):
    common = ["-q", "train", "--method", "all", *SMOKE, "--seeds", "2"]
    assert prsr_main([*common, "--runs-dir", str(tmp_path / "jobs"), "--jobs", "2"]) == 0
    torch.set_num_threads(1)  # what each of the 2 jobs had (2 threads // 2 lanes)
    assert prsr_main([*common, "--runs-dir", str(tmp_path / "serial")]) == 0
    for name in train_order():
        for folder in (name, f"seeds/1/{name}"):
            run = tmp_path / "jobs" / "fashion-mnist" / folder
            a, b = (
                load_file(run / "model.safetensors"),
                load_file(tmp_path / "serial/fashion-mnist" / folder / "model.safetensors"),
            )
            assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a), f"{folder}: weights differ"
            assert json.loads((run / "config.json").read_text())["environment"]["threads"] == 1
    logs = tmp_path / "jobs" / "fashion-mnist" / "logs"
    assert len(list(logs.glob("train-*-seed*.log"))) == 2 * len(train_order())
