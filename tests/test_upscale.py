"""`prsr upscale` on a tiny saved run: inputs of several sizes and colours, outputs, errors."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from prsr.cli import main
from prsr.commands.upscale import load_lr
from sr_data import downsample, resize
from sr_models.checkpoint import save_weights, write_json
from sr_models.pixel_recursive import PixelRecursiveSR

TINY = dict(
    cond_widths=(8, 8, 8),
    cond_blocks=1,
    prior_width=6,
    prior_layers=1,
    prior_kernel=3,
    input_kernel=3,
    head_channels=12,
)


def _run(tmp_path, channels):
    torch.manual_seed(0)
    model = PixelRecursiveSR(channels, **TINY)
    run = tmp_path / "runs" / "toy" / "pixel_recursive"
    run.mkdir(parents=True)
    save_weights(model, run, step=0, method="pixel_recursive")
    write_json(run / "config.json", {"method": "pixel_recursive", "model_config": model.model_config()})
    return run


def test_load_lr_conversions(tmp_path):
    rgb = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "wide.png")
    x = load_lr(tmp_path / "wide.png", 3)
    ref = torch.from_numpy(rgb[:, 10:50].astype(np.float32) / 255).permute(2, 0, 1)[None]  # centre 40x40
    assert torch.allclose(x, downsample(resize(ref, 32), 4), atol=1e-6)
    # RGB -> grey: MATLAB rgb2gray weights on [0, 1] values, then the same crop and resize
    g = load_lr(tmp_path / "wide.png", 1)
    w = torch.tensor([0.298936021293775, 0.587043074451121, 0.114020904255103]).view(1, 3, 1, 1)
    assert torch.allclose(g, downsample(resize((ref * w).sum(1, keepdim=True), 32), 4), atol=1e-6)
    # an 8x8 grey image is used as it is, and repeated to RGB
    small = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    Image.fromarray(small).save(tmp_path / "small.png")
    s = load_lr(tmp_path / "small.png", 3)
    assert s.shape == (1, 3, 8, 8)
    assert torch.equal(s[0, 0] * 255, torch.from_numpy(small).float()) and torch.equal(s[0, 1], s[0, 2])


def test_upscale_writes_samples_and_sheet(tmp_path, capsys):
    run = _run(tmp_path, 3)
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray((np.random.default_rng(1).random((8, 8, 3)) * 255).astype(np.uint8)).save(inputs / "a.png")
    Image.fromarray((np.random.default_rng(2).random((50, 50)) * 255).astype(np.uint8)).save(inputs / "b.jpg")
    (inputs / "notes.txt").write_text("not an image")  # ignored: not an image suffix
    out = tmp_path / "out"
    code = main(
        ["upscale", "--run", str(run), "--input", str(inputs), "--out", str(out), "--samples", "2", "--seed", "3"]
    )
    assert code == 0
    for stem in ("a", "b"):
        assert np.asarray(Image.open(out / f"{stem}_input.png")).shape == (8, 8, 3)
        samples = [np.asarray(Image.open(out / f"{stem}_sample{k}.png")) for k in range(2)]
        assert all(s.shape == (32, 32, 3) for s in samples)
        assert not np.array_equal(samples[0], samples[1])  # two different samples
        sheet = np.asarray(Image.open(out / f"{stem}_sheet.png"))
        assert sheet.shape == (32 * 4, (3 * 32 + 2 * 2) * 4, 3)
        # the sheet's second tile is sample 0, enlarged 4x by pixel repetition
        tile = sheet[::4, (32 + 2) * 4 :: 4][:, :32]
        assert np.array_equal(tile, samples[0])
    assert str(out) in capsys.readouterr().out
    # same seed -> same samples
    out2 = tmp_path / "out2"
    main(
        [
            "upscale",
            "--run",
            str(run),
            "--input",
            str(inputs / "a.png"),
            "--out",
            str(out2),
            "--samples",
            "2",
            "--seed",
            "3",
        ]
    )
    assert np.array_equal(np.asarray(Image.open(out2 / "a_sample1.png")), np.asarray(Image.open(out / "a_sample1.png")))


def test_upscale_errors(tmp_path, capsys):
    run = _run(tmp_path, 1)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    # bad data exits 1 (these were 2 before usage errors and data errors got their own exit codes)
    assert main(["upscale", "--run", str(run), "--input", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "cannot read image" in capsys.readouterr().err
    assert main(["upscale", "--run", str(tmp_path / "nope"), "--input", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "config.json" in capsys.readouterr().err
    assert (
        main(["upscale", "--run", str(run), "--input", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")])
        == 1
    )
    assert "not found" in capsys.readouterr().err
