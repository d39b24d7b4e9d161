"""`metrics.spread` and `prsr compare` on constructed inputs whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from metrics.spread import combined_interval, combined_se, difference_test, sample_sd, seed_means
from prsr.cli import main as prsr_main
from prsr.pipelines.compare import compare_rows


def test_combined_se_adds_the_seed_spread_over_r():
    # rates 40 and 60 (sd 14.14), bootstrap SE 2 each: se = sqrt(4 + 200 / 2) = sqrt(104)
    assert combined_se([40.0, 60.0], [2.0, 2.0]) == pytest.approx(math.sqrt(104.0))
    ci = combined_interval([40.0, 60.0], [2.0, 2.0], 0.0, 100.0)
    # Welch-Satterthwaite: (100 + 4)^2 * 1 / 100^2 = 1.0816 degrees of freedom, t_0.975 = 11.6: clipped at 0
    assert ci["mean"] == 50.0 and ci["df"] == pytest.approx(1.0816) and ci["ci_low"] == 0.0
    wide = combined_interval([40.0, 60.0, 50.0], [0.0, 0.0, 0.0])  # the seed part alone: R - 1 = 2 df
    assert wide["df"] == pytest.approx(2.0) and wide["ci_high"] == pytest.approx(50 + 4.302653 * 10 / math.sqrt(3))
    flat = combined_interval([10.0, 10.1], [5.0, 5.0])  # resampling dominates: the normal interval
    assert flat["df"] > 1e6 and flat["ci_low"] == pytest.approx(10.05 - 1.959964 * flat["se"], abs=1e-4)
    assert combined_se([40.0], [2.0]) == 2.0  # one seed: resampling only
    assert math.isnan(sample_sd([1.0]))
    with pytest.raises(ValueError, match="equal-length"):
        combined_se([1.0, 2.0], [1.0])


def test_seed_means_gives_mean_sd_and_n():
    frame = pd.DataFrame({"method": ["a", "a", "b", "b"], "x": [1.0, 3.0, 5.0, 5.0]})
    out = seed_means(frame, ["x"]).set_index("method")
    assert out.loc["a", "x"] == 2.0 and out.loc["a", "x_sd"] == pytest.approx(math.sqrt(2.0))
    assert out.loc["b", "x_sd"] == 0.0 and out.loc["b", "n_seeds"] == 2


def test_difference_test_known_numbers():
    # per-seed differences 0.2 and 1.8 with tiny image SEs: resampling alone would call this separated,
    # the seed spread (sd 1.13) does not: se = sqrt(1e-4 + 1.28 / 2) = 0.80006, t = 1.2499 on ~1 degree of
    # freedom (Cauchy: p = 1 - 2 atan(t) / pi = 0.4296; the normal approximation said 0.2113)
    got = difference_test([0.2, 1.8], [0.01, 0.01])
    assert got["se"] == pytest.approx(math.sqrt(1e-4 + 0.64))
    assert got["t"] == pytest.approx(1.0 / math.sqrt(0.6401))
    assert got["df"] == pytest.approx(0.6401**2 / 0.64**2)
    assert got["p"] == pytest.approx(1 - 2 * math.atan(got["t"]) / math.pi, abs=2e-4)
    assert not got["separated"]
    # three seeds all above zero but spread: t = 2.598 on 2 df, p = 0.1217, not separated (normal: p = 0.0094)
    three = difference_test([2.0, 6.0, 10.0], [0.0, 0.0, 0.0])
    assert three["t"] == pytest.approx(6 / (4 / math.sqrt(3))) and three["df"] == pytest.approx(2.0)
    assert three["p"] == pytest.approx(0.1217, abs=1e-4) and not three["separated"]
    assert difference_test([0.2], [0.01])["separated"]  # one seed: t = 20, normal
    assert "1 seed" in difference_test([0.2], [0.01])["test"]


def _write_runs(root, seeds, offsets_c, n=50):
    """Rows a, b, c over `n` images per seed: a = b + 1 dB (+ small noise), c = b + offsets_c[seed]."""
    rng = np.random.default_rng(0)
    ids = [f"{i:05d}" for i in range(n)]
    table = []
    for k, seed in enumerate(seeds):
        folder = root if k == 0 else root / "seeds" / str(seed)
        folder.mkdir(parents=True, exist_ok=True)
        b = 20 + rng.normal(0, 2, n)
        rows = {"b": b, "a": b + 1 + rng.normal(0, 0.05, n), "c": b + offsets_c[k] + rng.normal(0, 0.05, n)}
        frames = []
        for name, psnr in rows.items():
            frames.append(
                pd.DataFrame(
                    {
                        "method": name,
                        "image_id": ids,
                        "psnr": psnr,
                        "ssim": 0.5,
                        "ms_ssim": 0.5,
                        "consistency": 0.001,
                        "nll_bpd": np.nan,
                    }
                )
            )
            rate = {"a": 30.0, "b": 10.0, "c": 12.0}[name]
            table.append({"method": name, "seed": seed, "psnr": psnr.mean(), "machine_fooled": rate, "machine_se": 2.0})
        pd.concat(frames).to_csv(folder / "metrics.csv", index=False)
    pd.DataFrame(table).to_csv(root / "table1_seeds.csv", index=False)


def test_compare_rows_separates_what_was_built_to_differ(tmp_path):
    root = tmp_path / "runs" / "toy"
    _write_runs(root, [0, 1], offsets_c=[0.2, 1.8])
    res = compare_rows(tmp_path / "runs", "toy", "a", "b").set_index("metric")
    assert res.loc["psnr", "diff"] == pytest.approx(1.0, abs=0.02) and res.loc["psnr", "separated"]
    assert res.loc["psnr", "n_seeds"] == 2
    assert not res.loc["ssim", "separated"] and res.loc["ssim", "diff"] == 0.0  # identical columns
    assert "nll_bpd" not in res.index  # undefined for these rows
    # rates 30 vs 10 with bootstrap SE 2 each: diff 20, se sqrt(8) (the seeds agree), separated
    assert res.loc["machine_fooled", "diff"] == 20.0
    assert res.loc["machine_fooled", "se"] == pytest.approx(math.sqrt(8.0))
    assert res.loc["machine_fooled", "separated"]
    c = compare_rows(tmp_path / "runs", "toy", "c", "b").set_index("metric")
    assert c.loc["psnr", "diff"] == pytest.approx(1.0, abs=0.02) and not c.loc["psnr", "separated"]
    assert not c.loc["machine_fooled", "separated"]  # 12 vs 10 with SE 2.8


def test_compare_with_one_seed_covers_the_images_only(tmp_path):
    root = tmp_path / "runs" / "toy"
    _write_runs(root, [0], offsets_c=[0.2])
    c = compare_rows(tmp_path / "runs", "toy", "c", "b").set_index("metric")
    assert c.loc["psnr", "separated"] and "seed spread unknown" in c.loc["psnr", "test"]


def test_compare_command_prints_the_verdict(tmp_path, capsys):
    root = tmp_path / "runs" / "toy"
    _write_runs(root, [0, 1], offsets_c=[0.2, 1.8])
    out = tmp_path / "cmp.csv"
    assert (
        prsr_main(["compare", "c", "b", "--runs-dir", str(tmp_path / "runs"), "--dataset", "toy", "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "psnr" in text and "not separated" in text and "t-test" in text
    assert pd.read_csv(out)["metric"].tolist()[0] == "psnr"
    assert prsr_main(["compare", "zz", "b", "--runs-dir", str(tmp_path / "runs"), "--dataset", "toy"]) == 2


def test_compare_table_cells_and_pairs(load_script):
    """scripts/compare_table.py: the results page's cells (sign, unit, verdict, p only in [0.01, 0.2)), and every
    pair names two Table-1 rows."""
    module = load_script("scripts/compare_table.py")
    assert module.cell(0.5512, 0.026, True, 2, " dB") == "+0.55 dB, separated (p 0.026)"
    assert module.cell(-0.00015, 0.053, False, 5, "") == "−0.00015, not separated (p 0.053)"
    assert module.cell(-0.0001, 0.5, False, 3, "") == "0.000, not separated"
    assert module.cell(23.6, 0.004, True, 1, "") == "+23.6, separated"
    assert len(module.PAIRS) == 24 and all(a in module.LABELS and b in module.LABELS for a, b in module.PAIRS)
