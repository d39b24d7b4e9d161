"""Mode purity and balance of the two-corners experiment, on hand-built images."""

import pytest
import torch

from metrics.corners import mode_purity


def _img(tl=0.0, br=0.0, centre=0.0):
    x = torch.zeros(1, 1, 32, 32)
    x[..., 2:14, 2:14] = tl
    x[..., 18:30, 18:30] = br
    x[..., 12:20, 12:20] += centre
    return x


def test_purity_and_balance_hand_counted():
    outputs = torch.cat(
        [
            _img(tl=1.0),  # pure, top-left
            _img(tl=1.0),  # pure, top-left
            _img(br=1.0),  # pure, bottom-right
            _img(tl=0.5, br=0.5),  # both corners: impure (L2-like blur)
            _img(tl=1.0, centre=0.8),  # 144 ink in TL, 51.2 in the centre: 74 % -> impure
            _img(tl=0.001),  # almost no ink: impure (blank)
        ]
    )
    targets = torch.cat([_img(tl=1.0), _img(br=1.0)])
    s = mode_purity(outputs, targets)
    assert s["n_samples"] == 6 and s["n_pure"] == 3 and s["n_blank"] == 1
    assert s["purity"] == pytest.approx(3 / 6)
    assert s["balance"] == pytest.approx(2 / 3)


def test_threshold_is_inclusive_at_90_percent():
    x = _img(tl=1.0)  # 144 units of ink in the top-left
    x[..., 30, 0:16] = 1.0  # 16 units outside both quadrants -> exactly 90 %
    assert mode_purity(x, x)["purity"] == 1.0
    x[..., 31, 0:1] = 1.0  # one more unit outside -> below 90 %
    assert mode_purity(x, x)["purity"] == 0.0


def test_small_canvas_quadrants_are_8x8():
    x = torch.zeros(3, 1, 16, 16)
    x[0, 0, 1:7, 1:7] = 1.0  # top-left 8x8 quadrant
    x[1, 0, 9:15, 9:15] = 1.0  # bottom-right
    x[2, 0, 1:7, 9:15] = 1.0  # top-right: a quadrant no target uses -> impure
    s = mode_purity(x, x[:2])
    assert s["n_pure"] == 2 and s["balance"] == pytest.approx(0.5) and s["n_blank"] == 0


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError, match="square"):
        mode_purity(torch.zeros(2, 1, 16, 15), torch.zeros(2, 1, 16, 15))
    with pytest.raises(ValueError, match="same"):
        mode_purity(torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 32, 32))
