"""Samplers: inverse-CDF draws, cached == naive exactly, greedy, seeds, eval mode."""

from __future__ import annotations

import pytest
import torch

from sr_models.pixel_recursive import PixelRecursiveSR
from sr_models.sampling import draw, draw_uniforms, sample_cached, sample_naive

TINY = dict(cond_widths=(8, 8, 8), cond_blocks=1, prior_width=12, prior_layers=3, prior_kernel=5, input_kernel=7, head_channels=24)


def tiny(channels: int, seed: int = 0, **over) -> PixelRecursiveSR:
    torch.manual_seed(seed)
    model = PixelRecursiveSR(channels, **{**TINY, **over}).eval()
    with torch.no_grad():  # larger logits than at init, so samples are far from uniform noise
        model.prior.head2.conv.weight.mul_(4.0)
    return model


def test_draw_inverse_cdf_frequencies_and_greedy():
    logits = torch.tensor([[2.0, 0.0, -1.0, 1.0] + [-1e9] * 252])
    n = 40000
    u = torch.rand(n, generator=torch.Generator().manual_seed(0))
    for tau in (1.0, 0.5):
        levels = draw(logits.expand(n, 256), u, tau, greedy=False)
        freq = torch.bincount(levels, minlength=256).float() / n
        expect = torch.softmax(logits[0] / tau, 0)
        assert torch.allclose(freq, expect, atol=0.01)  # 4-sigma ~ 0.01 at n = 40000
        assert freq[4:].sum() == 0  # zero-probability levels are never drawn
    assert (draw(logits.expand(3, 256), u[:3], 1.0, greedy=True) == 0).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_cached_sampler_equals_naive(channels):
    """Same uniforms -> identical samples, and per-sub-pixel logits within 1e-5 (float32).

    On a 9x11 crop of A (the prior is fully convolutional): both samplers see top, left and right
    borders; a full 32x32 naive run would take minutes.
    """
    model = tiny(channels)
    gen = torch.Generator().manual_seed(3)
    lr = torch.rand(3, channels, 8, 8, generator=gen)
    with torch.no_grad():
        a = model.cond_logits(lr)[:, :9, :11].contiguous()
    u = torch.rand(3, channels, 9, 11, generator=gen)
    for tau, greedy in ((1.0, False), (0.8, False), (1.0, True)):
        rec_n = torch.zeros(3, 9, 11, channels, 256)
        rec_c = torch.zeros_like(rec_n)
        naive = sample_naive(model, a, u, tau, greedy, progress=False, record=rec_n)
        cached = sample_cached(model, a, u, tau, greedy, progress=False, record=rec_c)
        assert torch.equal(naive, cached), f"samples differ at tau={tau}, greedy={greedy}"
        assert (rec_n - rec_c).abs().max().item() < 1e-5
        assert rec_n.abs().amax(-1).min() > 0  # every sub-pixel's logits were recorded
        if not greedy:
            assert len(torch.unique(naive)) > 5  # not a degenerate constant image


def test_cached_equals_naive_on_the_full_image_through_sample():
    """The public entry point, 32x32, grey, batch 2: cached=True and cached=False give the same image."""
    model = tiny(1, prior_layers=2, head_channels=12)
    lr = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    x_c = model.sample(lr, temperature=0.9, generator=torch.Generator().manual_seed(5), progress=False)
    x_n = model.sample(lr, temperature=0.9, generator=torch.Generator().manual_seed(5), cached=False, progress=False)
    assert torch.equal(x_c, x_n)
    assert x_c.shape == (2, 1, 32, 32) and x_c.dtype == torch.float32
    assert torch.equal(x_c * 255, (x_c * 255).round())  # uint8 levels / 255


def test_greedy_equals_tiny_temperature_and_seeds_repeat():
    model = tiny(3)
    lr = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    greedy = model.sample(lr, greedy=True, generator=g(0), progress=False)
    # 1e-6: near-ties of the top two logits (gaps ~1e-4 occur among 6,144 sub-pixels) must not matter
    cold = model.sample(lr, temperature=1e-6, generator=g(1), progress=False)
    assert torch.equal(greedy, cold)
    s1 = model.sample(lr, temperature=1.0, generator=g(7), progress=False)
    s2 = model.sample(lr, temperature=1.0, generator=g(7), progress=False)
    s3 = model.sample(lr, temperature=1.0, generator=g(8), progress=False)
    assert torch.equal(s1, s2)
    assert not torch.equal(s1, s3)
    assert not torch.equal(s1, greedy)


def test_sampling_uses_eval_mode_and_restores_it():
    model = tiny(1, prior_layers=1, head_channels=12)
    model.train()
    lr = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = model.sample(lr[:1], generator=torch.Generator().manual_seed(0), progress=False)
    assert model.training
    for k, v in model.state_dict().items():  # batch-norm running statistics untouched
        assert torch.equal(v, before[k]), k
    # a batch of 4 gives the first image the same sample as a batch of 1 (batch norm in eval mode)
    u4 = draw_uniforms(4, 1, 32, torch.Generator().manual_seed(0), "cpu")
    assert torch.equal(u4[:1], draw_uniforms(1, 1, 32, torch.Generator().manual_seed(0), "cpu"))
    x4 = model.sample(lr, generator=torch.Generator().manual_seed(0), progress=False)
    assert torch.equal(x4[:1], x)


def test_decodings_rows():
    model = tiny(1, prior_layers=1, head_channels=12)
    rows = model.decodings()
    assert list(rows) == ["pixel_recursive_greedy", "pixel_recursive_t1.0", "pixel_recursive_t0.9", "pixel_recursive_t0.8"]
    lr = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    out = rows["pixel_recursive_t0.8"](lr, torch.Generator().manual_seed(2))
    assert torch.equal(out, model.sample(lr, temperature=0.8, generator=torch.Generator().manual_seed(2), progress=False))
    assert torch.equal(rows["pixel_recursive_greedy"](lr, None), model.sample(lr, greedy=True, progress=False))
