"""`prsr corners` end to end in the smoke profile: three runs, results.csv with the DESIGN.md columns, Fig. 2 PNG."""

import pandas as pd
import pytest

from prsr.cli import main as prsr_main


@pytest.mark.slow
def test_corners_smoke_end_to_end(tmp_path, capsys):
    assert prsr_main(["corners", "--profile", "smoke", "--runs-dir", str(tmp_path)]) == 0
    root = tmp_path / "corners"
    results = pd.read_csv(root / "results.csv")
    assert list(results.columns) == ["model", "purity", "balance", "n_samples"]
    assert list(results["model"]) == ["resnet_l2", "pixel_ce", "pixel_recursive"]
    assert (results["n_samples"] == 32).all()
    assert results["purity"].between(0, 1).all()
    assert (root / "fig2.png").is_file()
    for name in results["model"]:
        assert (root / name / "model.safetensors").is_file()
    # a second call reuses the finished runs (no error about existing checkpoints) and gives the same numbers
    assert prsr_main(["corners", "--profile", "smoke", "--runs-dir", str(tmp_path)]) == 0
    again = pd.read_csv(root / "results.csv")
    pd.testing.assert_frame_equal(results, again)
    assert "purity" in capsys.readouterr().out
