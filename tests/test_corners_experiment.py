"""`prsr corners` end to end in the smoke profile: three runs, results.csv with the DESIGN.md columns, Fig. 2 PNG."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from metrics.corners import mode_purity
from prsr.cli import main as prsr_main


@pytest.mark.slow
def test_corners_smoke_end_to_end(tmp_path, capsys):
    assert prsr_main(["corners", "--profile", "smoke", "--runs-dir", str(tmp_path)]) == 0
    root = tmp_path / "corners"
    results = pd.read_csv(root / "results.csv")
    assert list(results.columns) == ["model", "purity", "balance", "n_samples", "n_blank"]
    assert list(results["model"]) == ["resnet_l2", "pixel_ce", "pixel_recursive"]
    assert (results["n_samples"] == 32).all()
    assert results["purity"].between(0, 1).all()
    assert (root / "fig2.png").is_file()
    # samples.npz holds exactly what was scored: re-scoring it gives results.csv
    with np.load(root / "samples.npz") as z:
        assert sorted(z.files) == sorted(["targets", *results["model"]])
        targets = torch.from_numpy(z["targets"]).float() / 255
        assert z["targets"].dtype == np.uint8 and z["targets"].shape == (32, 1, 16, 16)  # smoke: 16x16 canvas
        for row in results.itertuples():
            s = mode_purity(torch.from_numpy(z[row.model]).float() / 255, targets)
            assert (s["purity"], s["n_blank"]) == (pytest.approx(row.purity), row.n_blank)
    # purity logged at every validation (smoke: once, at step 4) for each model
    curve = pd.read_csv(root / "purity_vs_steps.csv")
    assert list(curve.columns) == ["model", "step", "purity", "balance", "n_blank"]
    assert list(curve["model"]) == ["resnet_l2", "pixel_ce", "pixel_recursive"] and (curve["step"] == 4).all()
    diag = json.loads((root / "diagnostics.json").read_text())["blank_image_bits"]
    assert diag["total"] == pytest.approx(diag["top_half"] + diag["bottom_half"], rel=1e-6)
    assert diag["total"] == pytest.approx(
        diag["top_left"] + diag["top_right"] + diag["bottom_left"] + diag["bottom_right"], rel=1e-6
    )
    for name in results["model"]:
        assert (root / name / "model.safetensors").is_file()
    # a second call reuses the finished runs (no error about existing checkpoints) and gives the same numbers
    assert prsr_main(["corners", "--profile", "smoke", "--runs-dir", str(tmp_path)]) == 0
    again = pd.read_csv(root / "results.csv")
    pd.testing.assert_frame_equal(results, again)
    assert "purity" in capsys.readouterr().out
