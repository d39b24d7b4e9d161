"""The pixel-recursive model: masks (sub-pixel order, no blind spot), Eq. 8, log-likelihood, training hooks."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

from sr_data import downsample, to_float
from sr_models.pixel_recursive import PixelRecursiveSR, normalise_levels

TINY = dict(
    cond_widths=(8, 8, 8),
    cond_blocks=1,
    prior_width=12,
    prior_layers=3,
    prior_kernel=5,
    input_kernel=7,
    head_channels=24,
)


def tiny(channels: int, seed: int = 0) -> PixelRecursiveSR:
    torch.manual_seed(seed)
    return PixelRecursiveSR(channels, **TINY)


def order_index(size: int, channels: int) -> torch.Tensor:
    """Position of each sub-pixel in the sampling order, long [C, size, size]: raster, then channel."""
    r, c, g = torch.meshgrid(torch.arange(size), torch.arange(size), torch.arange(channels), indexing="ij")
    return ((r * size + c) * channels + g).permute(2, 0, 1)


def jacobian_rows(prior, x: torch.Tensor) -> torch.Tensor:
    """d(sum of sub-pixel i's 256 logits)/d x for EVERY sub-pixel i at once: [N, C, H, W], N = C*H*W.

    The prior has no batch coupling, so N copies of x in one batch, copy i back-propagating only
    sub-pixel i's logits, give all Jacobian rows in one backward pass.
    """
    c_n, h, w = x.shape
    n = c_n * h * w
    xs = x.expand(n, c_n, h, w).clone().requires_grad_(True)
    logits = prior(xs).view(n, c_n, 256, h, w).sum(2)  # [N, C, H, W]
    select = torch.zeros(n, c_n, h, w)
    idx = order_index(h, c_n)
    select.view(n, -1)[torch.arange(n), idx.flatten().argsort()] = 1.0  # copy i selects the sub-pixel of order i
    (logits * select).sum().backward()
    return xs.grad  # row i: gradient of the sub-pixel with order i


@pytest.mark.parametrize("channels", [1, 3])
def test_masks_no_later_subpixel_reaches_an_earlier_one(channels):
    model = tiny(channels)
    size = 9
    x = torch.rand(channels, size, size) * 2 - 1
    rows = jacobian_rows(model.prior, x)  # [N, C, H, W]
    order = order_index(size, channels).flatten()  # order of each input sub-pixel
    n = rows.shape[0]
    dep = rows.view(n, -1).abs()  # dep[i, j]: |d logits_i / d x_j|, j indexed like order
    later = order[None, :] >= torch.arange(n)[:, None]  # input sub-pixel j is at or after output i
    assert dep[later].max().item() == 0.0, "a sub-pixel's logits depend on itself or on a later sub-pixel"
    # ...and the masks are not simply cutting everything: each sub-pixel sees the one just before it in
    # its row (the first of a row may not reach the end of the row above with so few layers)
    first_of_row = torch.arange(n) % (size * channels) == 0
    just_before = torch.arange(1, n)[~first_of_row[1:]]
    earlier_pos = order.argsort()[just_before - 1]
    assert (dep[just_before, earlier_pos] > 0).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_masks_by_finite_perturbation(channels):
    """Changing hr at a sub-pixel (to another level) leaves every earlier sub-pixel's logits unchanged."""
    model = tiny(channels, seed=1).eval()
    gen = torch.Generator().manual_seed(0)
    hr = torch.randint(0, 256, (1, channels, 32, 32), generator=gen, dtype=torch.uint8)
    order = order_index(32, channels)
    positions = [
        (0, 0, 0),
        (0, 31, channels - 1),
        (5, 17, channels - 1),
        (31, 0, 0),
        (17, 9, 0),
        (31, 31, channels - 1),
    ]
    if channels == 3:
        positions += [(12, 12, 1), (20, 3, 2)]
    with torch.no_grad():
        base = model.prior_logits(hr)  # [1, H, W, C, 256]
        for r, c, g in positions:
            changed = hr.clone()
            changed[0, g, r, c] = (int(hr[0, g, r, c]) + 128) % 256
            new = model.prior_logits(changed)
            diff = (new - base).abs().amax(-1)[0].permute(2, 0, 1)  # [C, H, W]
            k = order[g, r, c]
            assert diff[order <= k].max().item() < 1e-5, f"perturbing {(r, c, g)} changed an earlier sub-pixel"
            if (order > k).any():
                assert diff[order > k].max().item() > 1e-3  # and it does reach later ones


def test_paper_prior_sees_just_before_and_far_right_of_the_row_above():
    """Paper-size prior: (r, c, g) depends on the sub-pixel just before it and on (r-1, c+6) (no blind spot)."""
    torch.manual_seed(0)
    model = PixelRecursiveSR.from_profile("paper", 3)
    prior = model.prior
    r, c = 10, 10
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    logits = prior(x).view(1, 3, 256, 32, 32)
    grads = []
    for g in range(3):
        (grad,) = torch.autograd.grad(logits[0, g, :, r, c].sum(), x, retain_graph=True)
        grads.append(grad[0].abs())
    assert grads[0][2, r, c - 1] > 0  # colour 0 <- last colour of the pixel to the left
    assert grads[1][0, r, c] > 0  # colour 1 <- colour 0 of its own pixel
    assert grads[2][1, r, c] > 0  # colour 2 <- colour 1 of its own pixel
    for g in range(3):
        assert grads[g][:, r - 1, c + 6].min() > 0, "no path from (r-1, c+6): blind spot"
        # and never its own or a later sub-pixel
        assert grads[g][g:, r, c].max() == 0 and grads[g][:, r, c + 1 :].max() == 0 and grads[g][:, r + 1 :].max() == 0
    # the same with a finite change of (r-1, c+6), in float64: at initialisation the effect through 20 gated
    # layers is small (~1e-6), far above float64 rounding (~1e-15) but not float32's
    prior = prior.double()
    with torch.no_grad():
        hr = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
        changed = hr.clone()
        changed[0, :, r - 1, c + 6] = 255 - hr[0, :, r - 1, c + 6]
        new, old = (prior(y.double() / 127.5 - 1).view(3, 256, 32, 32) for y in (changed, hr))
    assert (new - old)[:, :, r, c].abs().max() > 1e-9
    assert (new - old)[:, :, : r - 1].abs().max() == 0  # rows above the change: untouched


def _batch(channels: int, n: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    hr = torch.randint(0, 256, (n, channels, 32, 32), generator=gen, dtype=torch.uint8)
    lr = downsample(to_float(hr), 4)
    return lr, hr


@pytest.mark.parametrize("channels", [1, 3])
def test_loss_is_eq8_recomputed_by_hand(channels):
    model = tiny(channels).eval()
    lr, hr = _batch(channels)
    with torch.no_grad():
        a, b = model(lr, hr)
        assert a.shape == b.shape == (4, 256, channels, 32, 32)
        a64, b64 = a.double(), b.double()
        tgt = hr.long().unsqueeze(1)  # [B, 1, C, H, W]
        # Eq. 8 per sub-pixel: lse(A+B) - (A+B)_y + lse(A) - A_y
        full = torch.logsumexp(a64 + b64, 1) - (a64 + b64).gather(1, tgt)[:, 0]
        cond = torch.logsumexp(a64, 1) - a64.gather(1, tgt)[:, 0]
        by_hand = full.mean() + cond.mean()
        assert model.loss(lr, hr).item() == pytest.approx(by_hand.item(), rel=1e-5)
        lf, lc = model.loss_terms(lr, hr)
        assert lf.item() == pytest.approx(full.mean().item(), rel=1e-5)
        assert lc.item() == pytest.approx(cond.mean().item(), rel=1e-5)
        # log p(y|x) = -sum of CE(softmax(A+B)) over each image's sub-pixels, in nats
        lp = model.log_prob(lr, hr)
        assert lp.shape == (4,)
        assert torch.allclose(lp.double(), -full.flatten(1).sum(1), rtol=1e-5)
        bpd = model.nll_bpd(lr, hr)
        assert torch.allclose(bpd.double(), full.flatten(1).sum(1) / (channels * 1024 * math.log(2)), rtol=1e-5)


def test_forward_layout_is_classes_then_channels():
    """forward's [B, 256, C, H, W]: A's channel j of the conditioning net is colour j // 256, level j % 256."""
    model = tiny(3).eval()
    lr, hr = _batch(3, n=2)
    with torch.no_grad():
        a, b = model(lr, hr)
        raw_a = model.cond(lr).view(2, 3, 256, 32, 32).permute(0, 2, 1, 3, 4)
        raw_b = model.prior(normalise_levels(hr)).view(2, 3, 256, 32, 32).permute(0, 2, 1, 3, 4)
    assert torch.equal(a, raw_a) and torch.allclose(b, raw_b, atol=1e-6)


@pytest.mark.slow
def test_initial_loss_near_uniform_and_overfits_eight_images():
    """A small model fits 8 smooth images to < 2 bits/dim (about 8 at initialisation)."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    # smooth images: bicubic enlargements of random 4x4 patterns, so a pixel is predictable from its neighbours
    coarse = torch.rand(8, 1, 4, 4, generator=gen)
    hr_f = F.interpolate(coarse, size=32, mode="bicubic", align_corners=False).clamp(0, 1)
    hr = (hr_f * 255).round().to(torch.uint8)
    lr = downsample(to_float(hr), 4)
    model = PixelRecursiveSR(
        1,
        cond_widths=(16, 16, 16),
        cond_blocks=1,
        prior_width=16,
        prior_layers=3,
        prior_kernel=3,
        input_kernel=5,
        head_channels=64,
    )
    with torch.no_grad():
        start = model.nll_bpd(lr, hr).mean().item()
    assert 7.0 < start < 10.0
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(130):
        opt.zero_grad()
        model.loss(lr, hr).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        end = model.nll_bpd(lr, hr).mean().item()
    assert end < 2.0, f"bits/dim after overfitting: {end:.2f} (start {start:.2f})"


class _Ctx:
    step = 0

    def ddp(self, module):
        return module

    def autocast(self):
        return contextlib.nullcontext()


def test_training_and_validation_steps_report_eq8_terms():
    model = tiny(1)
    lr, hr = _batch(1, n=4)
    batch = {"lr": lr, "hr": hr, "hr_float": to_float(hr)}
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the step must not change the reported values
    with torch.no_grad():
        full, cond = model.loss_terms(lr, hr)  # train mode, as the step sees the batch
    out = model.training_step(batch, {"model": opt}, _Ctx())
    assert out["loss"] == pytest.approx(full.item() + cond.item(), rel=1e-5)
    assert out["loss_full"] == pytest.approx(full.item(), rel=1e-5)
    assert out["loss_cond"] == pytest.approx(cond.item(), rel=1e-5)
    assert out["bpd"] == pytest.approx(full.item() / math.log(2), rel=1e-5)
    assert model.training
    val = model.validation_step(batch)
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        assert val["nll_bpd"] == pytest.approx(model.nll_bpd(lr, hr).mean().item(), rel=1e-5)
        f_eval, c_eval = model.loss_terms(lr, hr)
    assert val["cond_nll_bpd"] == pytest.approx(c_eval.item() / math.log(2), rel=1e-5)
    assert val["loss_full"] == pytest.approx(f_eval.item(), rel=1e-5)


def test_profiles_build_and_config_round_trips():
    for profile in ("smoke", "quick"):
        for channels in (1, 3):
            m = PixelRecursiveSR.from_profile(profile, channels)
            again = PixelRecursiveSR(**m.model_config())
            assert again.model_config() == m.model_config()
            assert sum(p.numel() for p in again.parameters()) == sum(p.numel() for p in m.parameters())
    paper = PixelRecursiveSR.from_profile("paper", 3).model_config()
    assert (paper["prior_layers"], paper["prior_width"], paper["prior_kernel"], paper["head_channels"]) == (
        20,
        32,
        5,
        1024,
    )
    assert (paper["cond_blocks"], paper["cond_widths"]) == (6, [32, 32, 32])


def test_bad_inputs_raise_clear_errors():
    model = tiny(1)
    lr, hr = _batch(1, n=2)
    with pytest.raises(TypeError, match="uint8"):
        model(lr, hr.float())
    with pytest.raises(ValueError, match="lr must"):
        model(lr[:, :, :4], hr)
    with pytest.raises(ValueError, match="channels"):
        PixelRecursiveSR(2)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(lr, temperature=0.0)
