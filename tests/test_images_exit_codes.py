"""The one image reader (modes, 16-bit, alpha, errors naming the file), the pSNR cap in folder scoring,
the command line's exit codes (2 usage, 1 bad data or failed work) and its -q/-v logging flags."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from prsr.cli import main
from prsr.pipelines.score_folders import score_folders
from sr_data.errors import DataError
from sr_data.images import IMAGE_SUFFIXES, ImageReadError, is_image_file, read_image


def test_reader_modes_16_bit_alpha_and_palette(tmp_path):
    grey16 = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    out = read_image(tmp_path / "g16.png")
    assert out.dtype == np.uint8 and out.shape == (1, 4, 1)
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]  # scaled, not clipped to white (Pillow's convert("L"))

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # fully transparent red: alpha dropped, colour kept
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png")[..., 0].tolist() == [[200, 200], [200, 200]]
    assert read_image(tmp_path / "a.png").shape == (2, 2, 3)

    la = Image.fromarray(np.full((2, 3), 77, np.uint8), "L").convert("LA")
    la.save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png").shape == (2, 3, 1)
    assert read_image(tmp_path / "la.png", channels="rgb").tolist() == [[[77] * 3] * 3] * 2

    pal = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
    pal.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").tolist() == [[[10, 20, 30], [40, 50, 60]]]
    assert read_image((tmp_path / "p.png").read_bytes()).tolist() == [[[10, 20, 30], [40, 50, 60]]]


def test_reader_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n-truncated")
    with pytest.raises(ImageReadError, match="broken.png") as err:
        read_image(bad)
    assert isinstance(err.value, DataError) and isinstance(err.value, ValueError)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "absent.png")
    assert is_image_file("x/Y.JPEG") and not is_image_file("x/.hidden.png") and not is_image_file("a.txt")
    assert ".gif" in IMAGE_SUFFIXES and ".pgm" in IMAGE_SUFFIXES


def test_score_folders_caps_psnr_like_table1(tmp_path):

    rng = np.random.default_rng(0)
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "p" / "same.png")  # identical: pSNR inf, counts as 100 dB
    Image.fromarray(img).save(tmp_path / "g" / "same.png")
    other = img.copy()
    other[0, 0, 0] ^= 1
    Image.fromarray(other).save(tmp_path / "p" / "near.png")
    Image.fromarray(img).save(tmp_path / "g" / "near.png")
    per_image, means = score_folders(tmp_path / "p", tmp_path / "g")
    near = per_image.set_index("image_id").loc["near", "psnr"]
    assert np.isinf(per_image.set_index("image_id").loc["same", "psnr"])
    assert means["psnr"] == pytest.approx((100.0 + near) / 2)


def test_exit_codes_usage_2_bad_data_1(tmp_path, capsys):
    assert main(["eval", "--no-such-flag"]) == 2  # argparse
    assert main(["train", "--method", "no_such_method", "--profile", "smoke"]) == 2  # unknown method
    assert "no_such_method" in capsys.readouterr().err
    assert main(["eval", "--pred", str(tmp_path)]) == 2  # --pred without --gt
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    (tmp_path / "p" / "x.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "g" / "x.png")
    assert main(["eval", "--pred", str(tmp_path / "p"), "--gt", str(tmp_path / "g")]) == 1  # unreadable image
    err = capsys.readouterr().err
    assert "cannot read image" in err and "x.png" in err
    assert main(["eval", "--pred", str(tmp_path / "nowhere"), "--gt", str(tmp_path / "g")]) == 1  # missing folder


def test_quiet_and_verbose_set_the_log_level(tmp_path):
    (tmp_path / "p").mkdir()
    try:
        main(["-q", "eval", "--pred", str(tmp_path / "p"), "--gt", str(tmp_path / "p")])
        assert logging.getLogger().level == logging.WARNING
        main(["-v", "eval", "--pred", str(tmp_path / "p"), "--gt", str(tmp_path / "p")])
        assert logging.getLogger().level == logging.DEBUG
        main(["eval", "--pred", str(tmp_path / "p"), "--gt", str(tmp_path / "p")])
        assert logging.getLogger().level == logging.INFO
    finally:
        logging.getLogger().setLevel(logging.WARNING)
