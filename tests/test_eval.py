"""`prsr eval`: predictions saved once, per-image metrics, Table 1 files, folder scoring."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import metrics
import sr_data
from baselines.registry import row_labels
from metrics.table import (
    SEED_TABLE_COLUMNS,
    TABLE_COLUMNS,
    fill_fooled,
    fill_machine,
    table1_from_metrics,
    to_latex,
    to_markdown,
)
from prsr.cli import main as prsr_main
from prsr.pipelines import evaluate as ev
from prsr.pipelines.evaluate import evaluate, evaluation_indices
from prsr.pipelines.score_folders import score_folders
from sr_models.profiles import load_profile


@pytest.fixture(scope="module")
def smoke_eval(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    table = evaluate("fashion-mnist", "smoke", runs, methods=["bicubic", "nearest"], log=lambda *_: None)
    return runs, table


def test_evaluation_subset_is_fixed_and_seeded():
    a = evaluation_indices(10_000, 1000, seed=0)
    assert np.array_equal(a, evaluation_indices(10_000, 1000, seed=0))
    assert len(np.unique(a)) == 1000 and a.max() < 10_000
    assert not np.array_equal(a, evaluation_indices(10_000, 1000, seed=1))
    assert np.array_equal(evaluation_indices(50, None, seed=0), np.arange(50))


def test_eval_writes_design_files(smoke_eval):
    runs, table = smoke_eval
    root = runs / "fashion-mnist"
    for name in [
        "predictions/truth.npz",
        "predictions/bicubic.npz",
        "predictions/nearest.npz",
        "metrics.csv",
        "table1.csv",
        "table1.md",
        "table1.tex",
        "fig6_grid.png",
    ]:
        assert (root / name).is_file(), name
    with np.load(root / "predictions/truth.npz") as z:
        assert z["lr"].dtype == np.uint8 and z["lr"].shape == (16, 1, 8, 8)
        assert z["hr"].shape == (16, 1, 32, 32) and len(z["ids"]) == 16
    with np.load(root / "predictions/bicubic.npz") as z:
        assert z["sr"].dtype == np.uint8 and z["sr"].shape == (16, 1, 32, 32)
    per_image = pd.read_csv(root / "metrics.csv")
    assert list(per_image.columns) == ["method", "image_id", "psnr", "ssim", "ms_ssim", "consistency", "nll_bpd"]
    assert len(per_image) == 32
    columns = list(pd.read_csv(root / "table1.csv").columns)
    assert columns[: len(TABLE_COLUMNS)] == TABLE_COLUMNS  # today's columns first, where they always were
    assert columns == SEED_TABLE_COLUMNS  # then n_seeds and the <metric>_sd columns
    assert list(table["method"]) == ["bicubic", "nearest"]


def test_eval_fills_machine_fool_rates_for_every_row_and_golden(smoke_eval):
    runs, table = smoke_eval
    root = runs / "fashion-mnist"
    csv = pd.read_csv(root / "table1.csv")
    assert csv[["machine_fooled", "machine_ci_low", "machine_ci_high"]].notna().all().all()
    assert ((csv.machine_ci_low <= csv.machine_fooled) & (csv.machine_fooled <= csv.machine_ci_high)).all()
    assert ((csv.machine_ci_low >= 0) & (csv.machine_ci_high <= 100)).all()
    observed = pd.read_csv(root / "observer.csv").set_index("method")
    assert list(observed.index) == ["bicubic", "nearest", "golden"]  # golden pairs judged too, not in Table 1
    assert (observed.n_pairs == 16).all() and (observed.seconds > 0).all()
    np.testing.assert_allclose(observed.loc[["bicubic", "nearest"], "machine_fooled"], csv.machine_fooled)
    assert "% machine fooled" in (root / "table1.md").read_text()


def test_table_values_match_direct_computation(smoke_eval):
    runs, table = smoke_eval
    with np.load(runs / "fashion-mnist/predictions/truth.npz") as z:
        lr, hr = sr_data.to_float(torch.from_numpy(z["lr"])), sr_data.to_float(torch.from_numpy(z["hr"]))
    sr = sr_data.upsample(lr, 4)
    row = table.set_index("method").loc["bicubic"]
    assert row["psnr"] == pytest.approx(metrics.psnr(sr, hr).mean().item(), abs=1e-9)
    assert row["ssim"] == pytest.approx(metrics.ssim(sr, hr).mean().item(), abs=1e-9)
    assert row["consistency"] == pytest.approx(metrics.consistency(lr, sr).mean().item(), abs=1e-12)
    assert np.isnan(row["nll_bpd"]) and np.isnan(row["fooled"])
    # bicubic is far more consistent with its input than a nearest-neighbour image from another item
    assert row["consistency"] < table.set_index("method").loc["nearest", "consistency"]


def test_predictions_are_reused(smoke_eval, monkeypatch):
    runs, _ = smoke_eval

    def fail(*a, **k):
        raise AssertionError("predictions should have been reused")

    monkeypatch.setattr(ev, "predict_rows", fail)
    evaluate("fashion-mnist", "smoke", runs, methods=["bicubic", "nearest"], log=lambda *_: None)


def test_nearest_searches_the_training_pairs_the_learned_rows_saw(smoke_eval, tmp_path):
    """smoke's data.train_limit (256): every nearest-neighbour prediction is the HR image of one of the first 256
    training pairs; without the limit the same folder's nearest row is predicted again, from the whole split."""
    runs, _ = smoke_eval
    train = sr_data.load_pairs("fashion-mnist", "train")
    limit = load_profile("smoke")["data"]["train_limit"]
    index = {train.hr[i].tobytes(): i for i in range(len(train.hr))}

    def sources(root):
        with np.load(root / "fashion-mnist/predictions/nearest.npz") as z:
            return [index[image.tobytes()] for image in z["sr"]]

    assert max(sources(runs)) < limit
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    whole = dict(load_profile("smoke"), data=dict(load_profile("smoke")["data"], train_limit=None))
    evaluate("fashion-mnist", whole, copy, methods=["nearest"], log=lambda *_: None)
    assert max(sources(copy)) >= limit  # not the saved predictions of the limited search


def test_python_api_defaults_to_the_clis_runs_folder(tmp_path, monkeypatch):
    """No runs_dir: `$PRSR_HOME/runs`, as `prsr eval --runs-dir` defaults, not ./runs."""
    monkeypatch.setenv("PRSR_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    evaluate("fashion-mnist", "smoke", methods=["bicubic"], log=lambda *_: None)
    assert (tmp_path / "home/runs/fashion-mnist/table1.csv").is_file() and not (tmp_path / "runs").exists()


def test_unknown_or_untrained_method_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        evaluate("fashion-mnist", "smoke", tmp_path, methods=["nope"], log=lambda *_: None)
    with pytest.raises(FileNotFoundError, match="no trained run"):
        evaluate("fashion-mnist", "smoke", tmp_path, methods=["resnet_l2"], log=lambda *_: None)


def test_table_formats_and_fool_rates():
    per_image = pd.DataFrame(
        {
            "method": ["bicubic", "bicubic", "gan", "gan"],
            "image_id": ["a", "b", "a", "b"],
            "psnr": [20.0, 22.0, 18.0, 19.0],
            "ssim": [0.5, 0.7, 0.4, 0.5],
            "ms_ssim": [0.6, 0.6, 0.5, 0.5],
            "consistency": [0.001, 0.003, 0.02, 0.04],
            "nll_bpd": [np.nan] * 4,
        }
    )
    table = table1_from_metrics(per_image, order=["bicubic", "gan"])
    assert table.loc[0, "psnr"] == 21.0 and table.loc[1, "consistency"] == pytest.approx(0.03)
    rates = pd.DataFrame({"method": ["gan"], "fool_rate": [0.085], "se": [0.012]})
    rates.attrs["simulated"] = True
    table = fill_fooled(table, rates)
    machine = pd.DataFrame(
        {
            "method": ["bicubic", "golden"],
            "machine_fooled": [1.5, 0.0],
            "machine_ci_low": [0.5, 0.0],
            "machine_ci_high": [2.5, 0.0],
        }
    )
    table = fill_machine(table, machine)
    assert table.loc[0, "machine_fooled"] == 1.5 and np.isnan(table.loc[1, "machine_fooled"])
    assert "golden" not in set(table["method"])
    assert "| 1.5 [0.5, 2.5] | – |" in to_markdown(table)
    assert table.loc[1, "fooled"] == pytest.approx(8.5) and table.loc[1, "fooled_source"] == "simulated"
    md = to_markdown(table, labels=row_labels())
    assert "| Bicubic | **21.00** |" in md  # higher pSNR is better
    assert "**0.00200**" in md  # lower consistency is better
    assert "8.5 ± 1.2*" in md and "SIMULATED" in md
    tex = to_latex(table)
    assert "\\textbf{21.00}" in tex and "$\\pm$" in tex


def _save_png(path, arr):
    Image.fromarray(arr).save(path)


def test_score_folders_cli(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir(), gt.mkdir()
    imgs = {}
    for name in ["a", "b"]:
        g = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        p = np.clip(g.astype(int) + rng.integers(-20, 21, g.shape), 0, 255).astype(np.uint8)
        _save_png(gt / f"{name}.png", g)
        _save_png(pred / f"{name}.png", p)
        imgs[name] = (p, g)
    _save_png(pred / "only_here.png", imgs["a"][0])
    assert prsr_main(["eval", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "out")]) == 0
    per_image = pd.read_csv(tmp_path / "out/per_image.csv")
    assert list(per_image["image_id"]) == ["a", "b"]
    to_t = lambda a: sr_data.to_float(torch.from_numpy(a).permute(2, 0, 1)[None])  # noqa: E731
    expected = metrics.psnr(to_t(imgs["b"][0]), to_t(imgs["b"][1]))[0].item()
    assert per_image.loc[1, "psnr"] == pytest.approx(expected, abs=1e-9)
    means = pd.read_csv(tmp_path / "out/means.csv", index_col=0)["value"]
    assert means["unmatched_pred"] == 1 and means["n_images"] == 2
    assert "wrote" in capsys.readouterr().out


def test_score_folders_size_mismatch_is_reported(tmp_path):
    (tmp_path / "p").mkdir(), (tmp_path / "g").mkdir()
    _save_png(tmp_path / "p/x.png", np.zeros((32, 32), np.uint8))
    _save_png(tmp_path / "g/x.png", np.zeros((16, 16), np.uint8))
    with pytest.raises(ValueError, match="x.png"):
        score_folders(tmp_path / "p", tmp_path / "g")
