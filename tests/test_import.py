"""Bring your own method: `prsr inputs` -> an outside method -> `prsr import` -> `prsr eval` -> Table 1 and
the study; and the refusals of `prsr import` (each names the file or value and writes nothing)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio
from sqlalchemy import create_engine, text

import metrics
import prsr
from baselines.registry import load_method
from metrics.figures import LABEL_H, PAD, TILE, _tile
from prsr.cli import main as prsr_main
from prsr.cli import version
from prsr.pipelines.evaluate import evaluate
from prsr.pipelines.score_folders import score_folders

DATASET = "fashion-mnist"


def _snapshot(folder: Path) -> dict:
    """{file name: bytes} of a folder, to show nothing was written or changed."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _nearest_x4(inputs: Path, out: Path) -> None:
    """The outside method of these tests: PIL's nearest-neighbour x4 of each exported 8x8 input."""
    for p in sorted(inputs.rglob("*.png")):  # ids like t10k/000485 sit in sub-folders
        dest = out / p.relative_to(inputs)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(p) as im:
            im.resize((im.width * 4, im.height * 4), Image.NEAREST).save(dest)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A smoke-profile Table 1 with the fast bicubic row, then the inputs exported."""
    root = tmp_path_factory.mktemp("byom")
    runs = root / "runs"
    assert (
        prsr_main(
            ["-q", "eval", "--dataset", DATASET, "--profile", "smoke", "--runs-dir", str(runs), "--methods", "bicubic"]
        )
        == 0
    )
    inputs = root / "inputs"
    assert (
        prsr_main(
            ["-q", "inputs", "--dataset", DATASET, "--profile", "smoke", "--runs-dir", str(runs), "--out", str(inputs)]
        )
        == 0
    )
    return root, runs, inputs


def test_inputs_are_truths_lr_with_a_manifest(evaluated):
    root, runs, inputs = evaluated
    with np.load(runs / DATASET / "predictions/truth.npz") as z:
        lr, ids = z["lr"], z["ids"].astype(str)
    manifest = json.loads((inputs / "manifest.json").read_text())
    assert manifest["ids"] == ids.tolist() and manifest["n_images"] == 16 == len(list(inputs.rglob("*.png")))
    assert manifest["mode"] == "L" and manifest["lr_size"] == [8, 8] and manifest["hr_size"] == [32, 32]
    assert manifest["profile"] == "smoke" and manifest["dataset"] == DATASET and "bicubic" in manifest["resize_kernel"]
    for k in (0, 7, 15):
        with Image.open(inputs / f"{ids[k]}.png") as im:
            assert im.mode == "L" and im.size == (8, 8)
            assert np.array_equal(np.asarray(im), lr[k, 0])


def test_inputs_without_truth_build_the_same_subset(evaluated, tmp_path):
    root, runs, _ = evaluated
    fresh = tmp_path / "runs"
    assert (
        prsr_main(
            [
                "-q",
                "inputs",
                "--dataset",
                DATASET,
                "--profile",
                "smoke",
                "--runs-dir",
                str(fresh),
                "--out",
                str(tmp_path / "in"),
            ]
        )
        == 0
    )
    with (
        np.load(fresh / DATASET / "predictions/truth.npz") as a,
        np.load(runs / DATASET / "predictions/truth.npz") as b,
    ):
        assert np.array_equal(a["ids"], b["ids"]) and np.array_equal(a["lr"], b["lr"])


@pytest.mark.slow
def test_whole_path_inputs_import_eval_study(evaluated, tmp_path):
    root, runs, inputs = evaluated
    outputs = tmp_path / "outputs"
    _nearest_x4(inputs, outputs)
    (outputs / "notes.txt").write_text("not an image")  # warned about, left out
    assert (
        prsr_main(
            [
                "-q",
                "import",
                "mynn",
                "--from",
                str(outputs),
                "--dataset",
                DATASET,
                "--runs-dir",
                str(runs),
                "--label",
                "My nearest x4",
            ]
        )
        == 0
    )
    pred = runs / DATASET / "predictions"
    with np.load(pred / "mynn.npz") as z:
        meta = json.loads(str(z["meta"]))
        sr = z["sr"]
    assert meta["kind"] == "imported" and meta["source"] == str(outputs.resolve()) and meta["source_kind"] == "folder"
    assert len(meta["sr_sha256"]) == 64 and meta["imported_at"].endswith("Z")
    bicubic_before = (pred / "bicubic.npz").read_bytes()
    with Image.open(runs / DATASET / "fig6_grid.png") as im:
        grid_width_before = im.width

    assert (
        prsr_main(
            [
                "-q",
                "eval",
                "--dataset",
                DATASET,
                "--profile",
                "smoke",
                "--runs-dir",
                str(runs),
                "--methods",
                "bicubic,mynn",
            ]
        )
        == 0
    )
    assert (pred / "bicubic.npz").read_bytes() == bicubic_before  # reused, not re-predicted
    with np.load(pred / "mynn.npz") as z:  # eval only reads an imported row
        assert np.array_equal(z["sr"], sr) and json.loads(str(z["meta"])) == meta

    table = pd.read_csv(runs / DATASET / "table1.csv")
    assert list(table["method"]) == ["bicubic", "mynn"]  # built-in rows first, then imported
    row = table.set_index("method").loc["mynn"]
    # independent pSNR: skimage per image on the uint8 levels, capped at 100 dB, then the mean
    with np.load(pred / "truth.npz") as z:
        hr, ids = z["hr"], z["ids"].astype(str)
    ours = []
    for k, image_id in enumerate(ids):
        with Image.open(outputs / f"{image_id}.png") as im:
            out = np.asarray(im)
        ours.append(min(100.0, peak_signal_noise_ratio(hr[k, 0], out, data_range=255)))
    assert row["psnr"] == pytest.approx(np.mean(ours), abs=1e-6)
    assert row["psnr"] != pytest.approx(table.set_index("method").loc["bicubic", "psnr"], abs=1e-3)
    for metric in ("ssim", "ms_ssim", "consistency"):
        assert np.isfinite(row[metric]), metric
    assert np.isnan(row["nll_bpd"])
    assert "My nearest x4" in (runs / DATASET / "table1.md").read_text()

    with Image.open(runs / DATASET / "fig6_grid.png") as im:  # Fig. 6 gained one column: the imported row, last
        assert im.width - grid_width_before == TILE + PAD
        x, y = im.width - TILE - PAD, LABEL_H + PAD
        assert np.array_equal(np.asarray(im.convert("RGB").crop((x, y, x + TILE, y + TILE))), np.asarray(_tile(sr[0])))
    per_image = pd.read_csv(runs / DATASET / "metrics.csv")
    assert (per_image["method"] == "mynn").sum() == 16

    # the same scores through the folder front (`--pred/--gt`), against the truth written as PNGs
    gt = tmp_path / "gt"
    for k, image_id in enumerate(ids):
        (gt / image_id).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(hr[k, 0], mode="L").save(gt / f"{image_id}.png")
    (sub,) = {Path(i).parent.as_posix() for i in ids}  # the folder scorer matches flat folders by file name
    assert (
        prsr_main(
            ["-q", "eval", "--pred", str(outputs / sub), "--gt", str(gt / sub), "--out", str(tmp_path / "scores")]
        )
        == 0
    )
    means = pd.read_csv(tmp_path / "scores/means.csv").set_index("metric")["value"]
    assert float(means["psnr"]) == pytest.approx(row["psnr"], abs=1e-6)

    db = tmp_path / "study.db"
    assert (
        prsr_main(
            [
                "-q",
                "study",
                "init",
                "--predictions",
                str(pred),
                "--db",
                str(db),
                "--methods",
                "mynn,bicubic",
                "--raters-per-method",
                "2",
                "--n-trials",
                "8",
                "--n-practice",
                "2",
                "--n-golden",
                "2",
            ]
        )
        == 0
    )

    with create_engine(f"sqlite:///{db}").connect() as conn:
        assert json.loads(conn.execute(text("select methods from study")).scalar()) == ["mynn", "bicubic"]
        n = conn.execute(text("select count(*) from images where kind = 'mynn'")).scalar()
        assert n == 16  # every evaluation image common to truth and the methods is in the pool
        assert conn.execute(text("select count(*) from slots where method = 'mynn'")).scalar() == 2

    # `prsr analyze` reports it (simulated raters; imported rows follow the built-in ones)
    assert prsr_main(["-q", "study", "simulate", "--db", str(db), "--raters", "4", "--fool-rate", "mynn=0.3"]) == 0
    assert (
        prsr_main(
            ["-q", "analyze", "--db", str(db), "--out", str(tmp_path / "analysis"), "--n-boot", "50", "--no-glmm"]
        )
        == 0
    )
    rates = pd.read_csv(tmp_path / "analysis/fool_rates.csv")
    assert list(rates["method"]) == ["bicubic", "mynn"] and (rates["trials"] > 0).all()

    # only imported rows asked for: no built-in method runs, the row is scored the same

    only = evaluate(DATASET, "smoke", runs, methods=["mynn"], log=lambda *_: None)
    assert list(only["method"]) == ["mynn"] and only["psnr"][0] == pytest.approx(row["psnr"], abs=1e-12)
    (pred / "mynn.npz").unlink()


def test_folder_scorer_caps_identical_images_at_100_db(tmp_path):

    for d in ("pred", "gt"):
        (tmp_path / d).mkdir()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    b = a.copy()
    b[0, 0] ^= 1  # one level off at one pixel: 10 log10(255^2 * 1024) dB
    for d, img in (("pred", a), ("gt", a)):
        Image.fromarray(img, mode="L").save(tmp_path / d / "same.png")
    Image.fromarray(b, mode="L").save(tmp_path / "pred/near.png")
    Image.fromarray(a, mode="L").save(tmp_path / "gt/near.png")
    per_image, means = score_folders(tmp_path / "pred", tmp_path / "gt")
    assert np.isinf(per_image.set_index("image_id").loc["same", "psnr"])
    assert means["psnr"] == pytest.approx((100.0 + 10 * np.log10(255.0**2 * 1024)) / 2, abs=1e-9)


def _import(runs, name, source, *extra):
    return prsr_main(
        ["-q", "import", name, "--from", str(source), "--dataset", DATASET, "--runs-dir", str(runs), *extra]
    )


@pytest.fixture
def good_outputs(evaluated, tmp_path):
    root, runs, inputs = evaluated
    outputs = tmp_path / "outputs"
    _nearest_x4(inputs, outputs)
    return runs, outputs, sorted(outputs.rglob("*.png"))


def test_refuses_a_folder_missing_an_image(good_outputs, capsys):
    runs, outputs, files = good_outputs
    files[3].unlink()
    before = _snapshot(runs / DATASET / "predictions")
    assert _import(runs, "missing1", outputs) == 1
    err = capsys.readouterr().err
    assert files[3].name in err and "lacks 1 of the 16" in err
    assert _snapshot(runs / DATASET / "predictions") == before


def test_refuses_a_wrong_sized_image(good_outputs, capsys):
    runs, outputs, files = good_outputs
    Image.new("L", (31, 32)).save(files[5])
    before = _snapshot(runs / DATASET / "predictions")
    assert _import(runs, "wrongsize", outputs) == 1
    err = capsys.readouterr().err
    assert str(files[5]) in err and "31x32" in err
    assert _snapshot(runs / DATASET / "predictions") == before


def test_refuses_rgb_outputs_for_greyscale_data(good_outputs, capsys):
    runs, outputs, files = good_outputs
    Image.new("RGB", (32, 32), (10, 200, 30)).save(files[0])
    before = _snapshot(runs / DATASET / "predictions")
    assert _import(runs, "rgbout", outputs) == 1
    assert str(files[0]) in capsys.readouterr().err
    assert _snapshot(runs / DATASET / "predictions") == before


@pytest.mark.parametrize(
    "name", ["Bad", "9lives", "a/b", "x" * 41, "truth", "golden", "bicubic", "pixel_recursive_t0.9", "gan"]
)
def test_refuses_bad_or_clashing_names(good_outputs, capsys, name):
    runs, outputs, _ = good_outputs
    before = _snapshot(runs / DATASET / "predictions")
    assert _import(runs, name, outputs) == 2
    assert repr(name) in capsys.readouterr().err
    assert _snapshot(runs / DATASET / "predictions") == before


def test_existing_name_needs_force_and_the_old_file_is_kept(good_outputs, caplog):
    runs, outputs, files = good_outputs
    pred = runs / DATASET / "predictions"
    assert _import(runs, "again", outputs) == 0
    first = (pred / "again.npz").read_bytes()
    assert _import(runs, "again", outputs) == 2
    assert (pred / "again.npz").read_bytes() == first
    Image.new("L", (32, 32), 7).save(files[0])
    assert _import(runs, "again", outputs, "--force") == 0
    olds = list(pred.glob("again.npz.old-*"))
    assert len(olds) == 1 and olds[0].read_bytes() == first
    with np.load(pred / "again.npz") as z:
        assert (z["sr"][0] == 7).all()
    for p in [pred / "again.npz", *olds]:
        p.unlink()


def test_npz_source_uint8_or_float_and_unknown_extras_warned(evaluated, tmp_path, caplog):
    root, runs, _ = evaluated
    pred = runs / DATASET / "predictions"
    with np.load(pred / "truth.npz") as z:
        hr, ids = z["hr"], z["ids"].astype(str)
    # float in [0, 1] in another order, plus an id truth does not hold
    order = np.arange(len(ids))[::-1]
    sr = np.concatenate([hr[order], hr[:1]]).astype(np.float64) / 255.0
    src = tmp_path / "out.npz"
    np.savez(src, sr=sr, ids=np.array([*ids[order], "not-an-id"]))
    with caplog.at_level(logging.WARNING):
        assert _import(runs, "perfect", src) == 0
    assert "not-an-id" in caplog.text
    with np.load(pred / "perfect.npz") as z:
        assert np.array_equal(z["sr"], hr) and np.array_equal(z["ids"].astype(str), ids)
    (pred / "perfect.npz").unlink()
    np.savez(src, sr=sr * 2.0, ids=np.array([*ids[order], "x"]))  # out of [0, 1]
    before = _snapshot(pred)
    assert _import(runs, "toobright", src) == 1
    assert _snapshot(pred) == before


def test_from_class_runs_a_user_superresolver(evaluated, tmp_path, monkeypatch):
    root, runs, _ = evaluated
    (tmp_path / "my_sr.py").write_text(
        "import torch.nn.functional as F\n"
        "class Nearest4:\n"
        "    def predict(self, lr):\n"
        "        return F.interpolate(lr, scale_factor=4, mode='nearest')\n"
    )
    monkeypatch.chdir(tmp_path)
    assert (
        prsr_main(
            ["-q", "import", "clsnn", "--from-class", "my_sr:Nearest4", "--dataset", DATASET, "--runs-dir", str(runs)]
        )
        == 0
    )
    pred = runs / DATASET / "predictions"
    with np.load(pred / "truth.npz") as t, np.load(pred / "clsnn.npz") as z:
        expect = t["lr"].repeat(4, axis=2).repeat(4, axis=3)
        assert np.array_equal(z["sr"], expect)
        assert json.loads(str(z["meta"]))["source_kind"] == "class"
    (pred / "clsnn.npz").unlink()


@pytest.mark.slow
def test_python_api_load_run_and_reexports(tmp_path):

    runs = tmp_path / "runs"
    assert (
        prsr_main(
            [
                "-q",
                "train",
                "--method",
                "resnet_l2",
                "--profile",
                "smoke",
                "--runs-dir",
                str(runs),
                "--set",
                "methods.resnet_l2.train.steps=2",
            ]
        )
        == 0
    )
    run = runs / DATASET / "resnet_l2"
    m = prsr.load_run(run, device="cpu")
    lr = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    sr = m.predict(lr)
    assert sr.shape == (3, 1, 32, 32) and not m.training
    assert torch.equal(sr, load_method(run, device="cpu").predict(lr))
    assert prsr.psnr is metrics.psnr and prsr.score_images is metrics.score_images
    assert prsr.load_profile("smoke")["eval"]["subset"] == 16

    assert prsr.__version__ == version() != ""
    if hasattr(metrics, "machine_fool_rate"):
        assert prsr.machine_fool_rate is metrics.machine_fool_rate
    else:
        with pytest.raises(AttributeError, match="machine_fool_rate"):
            prsr.machine_fool_rate


def test_eval_never_overwrites_an_imported_file(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert (
        prsr_main(
            [
                "-q",
                "inputs",
                "--dataset",
                DATASET,
                "--profile",
                "smoke",
                "--runs-dir",
                str(runs),
                "--out",
                str(tmp_path / "in"),
            ]
        )
        == 0
    )
    pred = runs / DATASET / "predictions"
    with np.load(pred / "truth.npz") as z:
        np.savez(pred / "bicubic.npz", sr=z["hr"], ids=z["ids"], meta=np.array(json.dumps({"kind": "imported"})))
    before = (pred / "bicubic.npz").read_bytes()  # a hand-made "imported" file under a built-in name
    assert (
        prsr_main(
            ["-q", "eval", "--dataset", DATASET, "--profile", "smoke", "--runs-dir", str(runs), "--methods", "bicubic"]
        )
        == 1
    )
    assert "bicubic.npz" in capsys.readouterr().err
    assert (pred / "bicubic.npz").read_bytes() == before
