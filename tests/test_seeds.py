"""`prsr train/eval --seeds N`: one run folder per (learned method, seed), Table 1 as mean ± sd over seeds,
the per-seed rows in table1_seeds.csv, table1.json beside it, and bit-identical weights for a repeated seed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from baselines.registry import table_rows, train_order
from metrics.table import METRIC_COLUMNS, PER_SEED_COLUMNS
from prsr.cli import main as prsr_main
from prsr.pipelines.evaluate import evaluate
from sr_models.environment import MACHINE_FIELDS

SMOKE = ["--dataset", "fashion-mnist", "--profile", "smoke"]


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    with torch.random.fork_rng():
        assert prsr_main(["-q", "train", "--method", "all", *SMOKE, "--runs-dir", str(runs), "--seeds", "2"]) == 0
        assert prsr_main(["-q", "eval", *SMOKE, "--runs-dir", str(runs), "--seeds", "2"]) == 0
    return runs / "fashion-mnist"


def test_two_run_folders_per_learned_method_with_different_weights(two_seeds):
    for name in train_order():
        first, second = two_seeds / name, two_seeds / "seeds" / "1" / name  # smoke's seed is 0
        assert json.loads((first / "config.json").read_text())["seed"] == 0
        assert json.loads((second / "config.json").read_text())["seed"] == 1
        a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
        assert a.keys() == b.keys()
        assert any(not a[k].equal(b[k]) for k in a), f"{name}: seeds 0 and 1 gave the same weights"


def test_table1_is_the_mean_and_sample_sd_of_the_seed_rows(two_seeds):
    table = pd.read_csv(two_seeds / "table1.csv").set_index("method")
    seeds = pd.read_csv(two_seeds / "table1_seeds.csv")
    assert list(seeds.columns) == PER_SEED_COLUMNS
    assert sorted(seeds["seed"].unique()) == [0, 1]
    assert list(table.index) == list(table_rows())
    assert (table["n_seeds"] == 2).all()
    for method, rows in seeds.groupby("method"):
        assert len(rows) == 2
        for col in [*METRIC_COLUMNS, "machine_fooled"]:
            values = rows[col].to_numpy(dtype=float)
            if np.isnan(values).all():  # e.g. NLL of a method without a likelihood
                assert np.isnan(table.loc[method, col]) and np.isnan(table.loc[method, f"{col}_sd"])
                continue
            assert table.loc[method, col] == pytest.approx(values.mean(), abs=1e-9), (method, col)
            assert table.loc[method, f"{col}_sd"] == pytest.approx(values.std(ddof=1), abs=1e-9), (method, col)
    for col in ["psnr", "ssim", "ms_ssim", "consistency"]:
        assert table.loc["bicubic", f"{col}_sd"] == 0.0
        assert table.loc["nearest", f"{col}_sd"] == 0.0
    # the observer's seed moves with the run's: bicubic's two rates are two observers on the same pairs
    bic = seeds[seeds["method"] == "bicubic"]
    assert bic["psnr"].nunique() == 1 and len(bic) == 2


def test_every_seed_is_evaluated_on_the_same_images(two_seeds):
    with np.load(two_seeds / "predictions" / "truth.npz") as z:
        ids = z["ids"]
    with np.load(two_seeds / "seeds" / "1" / "predictions" / "resnet_l2.npz") as z:
        assert np.array_equal(z["ids"], ids)
    per_image = pd.read_csv(two_seeds / "seeds" / "1" / "metrics.csv", dtype={"image_id": str})
    assert list(per_image[per_image["method"] == "resnet_l2"]["image_id"]) == list(ids)
    assert (two_seeds / "seeds" / "1" / "observer.csv").is_file()


def test_table1_json_has_conventions_and_environments(two_seeds):
    doc = json.loads((two_seeds / "table1.json").read_text())
    assert doc["n_seeds"] == 2 and doc["seeds"] == [0, 1]
    assert doc["metrics"]["border_crop"] == "none"
    assert doc["metrics"]["ms_ssim"]["scales"] == 2
    assert doc["metrics"]["ms_ssim"]["weights_used"] == pytest.approx([0.0448 / 0.3304, 0.2856 / 0.3304])
    subset = doc["evaluation_subset"]
    assert subset["n_images"] == 16 and len(subset["ids_sha256"]) == 64
    assert doc["observer"]["seeds"] == [0, 1]
    runs = doc["environments"]["runs"]
    assert len(runs) == 2 * len(train_order())
    for entry in runs:
        assert set(MACHINE_FIELDS) <= set(entry["environment"]), entry["run"]
    assert doc["environments"]["differing_fields"] == []
    env = json.loads((two_seeds / "gan" / "config.json").read_text())["environment"]
    assert env["torch"] == torch.__version__ and env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(env["threads"], int) and "algorithms" in env["deterministic"] and "git" in env


def test_markdown_shows_mean_and_sd(two_seeds):
    md = (two_seeds / "table1.md").read_text()
    assert "over 2 training seeds" in md
    assert " ± " in md.splitlines()[4]  # the first row's cells


def test_a_missing_seed_run_is_refused(two_seeds, tmp_path):
    runs = tmp_path / "runs"
    assert prsr_main(["-q", "train", "--method", "resnet_l2", *SMOKE, "--runs-dir", str(runs)]) == 0
    with pytest.raises(FileNotFoundError, match="no trained run for seed 1"):
        evaluate("fashion-mnist", "smoke", runs, methods=["resnet_l2"], n_seeds=2, log=lambda *_: None)


def test_same_seed_and_threads_give_bit_identical_weights(tmp_path, one_thread):
    for name in ("a", "b"):
        args = ["-q", "train", "--method", "resnet_l2", *SMOKE, "--runs-dir", str(tmp_path / name)]
        assert prsr_main(args) == 0
    a = load_file(tmp_path / "a" / "fashion-mnist" / "resnet_l2" / "model.safetensors")
    b = load_file(tmp_path / "b" / "fashion-mnist" / "resnet_l2" / "model.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    raw_a = (tmp_path / "a" / "fashion-mnist" / "resnet_l2" / "model.safetensors").read_bytes()
    raw_b = (tmp_path / "b" / "fashion-mnist" / "resnet_l2" / "model.safetensors").read_bytes()
    assert raw_a == raw_b  # the file too: its header is written in a fixed order


def test_eval_warns_when_the_runs_environments_differ(two_seeds, tmp_path):
    root = tmp_path / "runs" / "fashion-mnist"
    shutil.copytree(two_seeds, root)
    config = root / "seeds" / "1" / "gan" / "config.json"
    doc = json.loads(config.read_text())
    doc["environment"]["threads"] = doc["environment"]["threads"] + 7
    config.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match=r"different environments \(threads\)"):
        evaluate("fashion-mnist", "smoke", tmp_path / "runs", n_seeds=2, log=lambda *_: None)
    assert json.loads((root / "table1.json").read_text())["environments"]["differing_fields"] == ["threads"]
