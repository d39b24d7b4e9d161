"""The learned baselines: ResNet-L2, the srez-style GAN and the per-pixel cross-entropy model.

Training checks use the `smoke` profile on 16 real Fashion-MNIST pairs (the first test images of
Debian's dataset-fashion-mnist; synthetic shapes when that package is missing), a fixed seed and a fixed
batch, so "final loss <= 0.8 x first" measures optimisation, not batch noise.
"""

from __future__ import annotations

import gzip
import math
import os
import socket
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from baselines.gan import GAN, consistency_l1, discriminator_loss, generator_losses
from baselines.pixel_ce import PixelCE
from baselines.registry import METHODS, load_method
from baselines.resnet_l2 import ResNetL2
from sr_data import downsample, resize, to_float, to_uint8, upsample
from sr_models import distributed as dist_utils
from sr_models.profiles import load_profile, method_config
from sr_models.runlog import read_log
from sr_models.trainer import Trainer

FMNIST_TEST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
CLASSES = {"resnet_l2": ResNetL2, "gan": GAN, "pixel_ce": PixelCE}


class MinimalCtx:
    """StepContext without distribution or autocast."""

    step = 0

    def ddp(self, module):
        return module

    def autocast(self):
        return nullcontext()


def _hr_images(n: int) -> torch.Tensor:
    """uint8 [n, 1, 32, 32]: Fashion-MNIST test images resized 28 -> 32, or synthetic rectangles."""
    if FMNIST_TEST.is_file():
        with gzip.open(FMNIST_TEST) as f:
            f.read(16)  # idx3 header
            raw = np.frombuffer(f.read(n * 28 * 28), np.uint8).reshape(n, 1, 28, 28).copy()
        return to_uint8(resize(to_float(torch.from_numpy(raw)), 32))
    g = torch.Generator().manual_seed(0)
    img = torch.zeros(n, 1, 32, 32)
    for i in range(n):
        y0, x0 = torch.randint(2, 14, (2,), generator=g).tolist()
        h, w = torch.randint(8, 18, (2,), generator=g).tolist()
        img[i, 0, y0 : y0 + h, x0 : x0 + w] = 0.3 + 0.7 * torch.rand(1, generator=g).item()
    return to_uint8(img)


def make_batch(hr: torch.Tensor) -> dict:
    """The Trainer's batch dict from uint8 hr [B, C, 32, 32] (lr made from the quantised hr, as sr_data does)."""
    lr = to_uint8(downsample(to_float(hr), 4))
    return {"lr": to_float(lr), "hr": hr, "hr_float": to_float(hr)}


@pytest.fixture(scope="module")
def batch():
    return make_batch(_hr_images(16))


def smoke(name: str, channels: int = 1):
    """(method built from the smoke profile, its smoke train cfg)."""
    cfg = method_config(load_profile("smoke"), name)
    return CLASSES[name].from_profile("smoke", channels=channels), cfg["train"]


# -- training ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["resnet_l2", "gan", "pixel_ce"])
def test_smoke_training_reduces_loss(name, batch):
    """A few smoke steps on a fixed batch: the final loss is <= 0.8x the first (GAN: its consistency term,
    the part of the generator loss that must fall; the adversarial part moves with D)."""
    torch.manual_seed(0)
    method, train = smoke(name)
    method.train()
    opts = method.make_optimizers(train)
    key = "loss_consistency" if name == "gan" else "loss"
    losses = [method.training_step(batch, opts, MinimalCtx())[key] for _ in range(train["steps"])]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] <= 0.8 * losses[0], f"{name}: first {losses[0]:.5g}, last {losses[-1]:.5g}, all {losses}"


def test_gan_step_logs_every_scalar_and_updates_both_networks(batch):
    torch.manual_seed(1)
    method, train = smoke("gan")
    opts = method.make_optimizers(train)
    g0 = [p.detach().clone() for p in method.generator.parameters()]
    d0 = [p.detach().clone() for p in method.discriminator.parameters()]
    out = method.training_step(batch, opts, MinimalCtx())
    assert set(out) == {"loss", "loss_consistency", "loss_adversarial", "loss_d", "d_real", "d_fake"}
    assert out["loss"] == pytest.approx(0.9 * out["loss_consistency"] + 0.1 * out["loss_adversarial"], rel=1e-5)
    assert 0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1
    # At init D is near chance: BCE(real) + BCE(fake) ~ 2 ln 2.
    assert out["loss_d"] == pytest.approx(2 * math.log(2), abs=0.2)
    assert any(not torch.equal(a, b) for a, b in zip(g0, method.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, method.discriminator.parameters()))
    assert all(p.requires_grad for p in method.discriminator.parameters())  # unfrozen after the G step


# -- GAN losses against hand computation ------------------------------------------------------------
def _tiny_lr() -> torch.Tensor:
    """[2, 1, 8, 8]: image 0 has rows 0-3 at 0.2 and rows 4-7 at 1.0; image 1 is 0.2 everywhere."""
    lr = torch.full((2, 1, 8, 8), 0.2)
    lr[0, 0, 4:] = 1.0
    return lr


def test_gan_consistency_and_losses_hand_computed():
    lr = _tiny_lr()
    # Constant images downsample to the same constant (the kernel's weights sum to 1).
    sr = torch.empty(2, 1, 32, 32)
    sr[0], sr[1] = 0.7, 0.2
    # image 0: 32 values |0.7-0.2| = 0.5 and 32 values |0.7-1.0| = 0.3; image 1: 64 zeros -> (16 + 9.6) / 128.
    assert consistency_l1(sr, lr).item() == pytest.approx(0.2, abs=1e-6)

    logits = torch.tensor([0.0, math.log(3.0)])
    # softplus(-0) = ln 2; softplus(-ln 3) = ln(1 + 1/3) = ln(4/3); mean = ln(8/3) / 2.
    adversarial = math.log(8.0 / 3.0) / 2
    total, cons, adv = generator_losses(sr, lr, logits)
    assert adv.item() == pytest.approx(adversarial, rel=1e-6)
    assert cons.item() == pytest.approx(0.2, abs=1e-6)
    assert total.item() == pytest.approx(0.9 * 0.2 + 0.1 * adversarial, rel=1e-6)
    # D: real logits [ln 3, ln 3] -> softplus(-ln 3) = ln(4/3); fake logits [0, 0] -> softplus(0) = ln 2.
    d = discriminator_loss(torch.full((2,), math.log(3.0)), torch.zeros(2))
    assert d.item() == pytest.approx(math.log(4.0 / 3.0) + math.log(2.0), rel=1e-6)


def test_gan_training_step_logs_the_hand_computed_consistency():
    """G made constant 0.7 (zero head weights, bias logit(0.7)): the logged term is mean |0.7 - lr| = 0.3."""
    method, train = smoke("gan")
    with torch.no_grad():
        method.generator.head.weight.zero_()
        method.generator.head.bias.fill_(math.log(0.7 / 0.3))
    lr = _tiny_lr()
    hr = to_uint8(upsample(lr, 4))
    batch = {"lr": lr, "hr": hr, "hr_float": to_float(hr)}
    out = method.training_step(batch, method.make_optimizers(train), MinimalCtx())
    # image 0: 32 x 0.5 + 32 x 0.3; image 1: 64 x 0.5 -> (16 + 9.6 + 32) / 128 = 0.45.
    assert out["loss_consistency"] == pytest.approx(0.45, abs=1e-5)


# -- ResNet-L2 -------------------------------------------------------------------------------------
def test_resnet_l2_starts_as_bicubic_and_zeroed_head_gives_bicubic(batch):
    torch.manual_seed(0)
    method, train = smoke("resnet_l2")
    lr = batch["lr"]
    assert torch.equal(method.predict(lr), upsample(lr, 4))  # fresh model: head initialised to zero
    opts = method.make_optimizers(train)
    for _ in range(3):
        method.training_step(batch, opts, MinimalCtx())
    assert (method.predict(lr) - upsample(lr, 4)).abs().max() > 1e-3  # training moved it
    with torch.no_grad():
        method.net.head.weight.zero_()
        method.net.head.bias.zero_()
    assert torch.equal(method.predict(lr), upsample(lr, 4))


def test_resnet_l2_residual_scaling_and_clamp(batch):
    """sr = clamp(bicubic + residual_scale * tanh(head)): scale 0.5, tanh = 0.4 -> +0.2 everywhere."""
    method = ResNetL2(channels=1, widths=[4, 4, 4], blocks=1, residual_scale=0.5)
    with torch.no_grad():
        method.net.head.bias.fill_(math.atanh(0.4))
    lr = batch["lr"]
    expected = (upsample(lr, 4) + 0.2).clamp(0, 1)
    assert torch.allclose(method.predict(lr), expected, atol=1e-6)
    assert (upsample(lr, 4) + 0.2 > 1).any()  # the clamp was exercised


def test_resnet_l2_validation_matches_hand_mse(batch):
    method, _ = smoke("resnet_l2")
    val = method.validation_step(batch)
    mse = ((upsample(batch["lr"], 4) - batch["hr_float"]) ** 2).mean().item()  # fresh model = bicubic
    assert val["mse"] == pytest.approx(mse, rel=1e-5)
    per_image = ((upsample(batch["lr"], 4) - batch["hr_float"]) ** 2).flatten(1).mean(1)
    assert val["psnr"] == pytest.approx((-10 * torch.log10(per_image)).mean().item(), rel=1e-5)


# -- per-pixel CE: likelihood and decoders on hand-set logits ---------------------------------------
class FixedLogits(nn.Module):
    """Stands in for the conditioning network: returns fixed raw logits [1, C*256, 32, 32] for every image."""

    def __init__(self, raw: torch.Tensor):
        super().__init__()
        self.register_buffer("raw", raw)

    def forward(self, lr):
        return self.raw.expand(lr.shape[0], -1, -1, -1)


def _pixel_ce_with(raw: torch.Tensor, channels: int) -> PixelCE:
    method = PixelCE(channels=channels, widths=[4, 4, 4], blocks=1)
    method.net = FixedLogits(raw)
    return method


def test_pixel_ce_log_prob_equals_hand_sum_of_log_softmax(batch):
    torch.manual_seed(0)
    method, _ = smoke("pixel_ce")
    lr, hr = batch["lr"][:4], batch["hr"][:4]
    with torch.no_grad():
        method.eval()
        logits = method.logits(lr).double().numpy()  # [4, 1, 32, 32, 256]
    # log softmax by hand in float64: x - log(sum(exp(x - max))) - max.
    m = logits.max(-1, keepdims=True)
    log_softmax = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_softmax, hr.long().numpy()[..., None], -1)[..., 0]
    expected = picked.reshape(4, -1).sum(1)
    got = method.log_prob(lr, hr)
    assert got.shape == (4,)
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-5)
    # validation's nll_bpd is the same number per sub-pixel, in bits.
    val = method.validation_step({"lr": lr, "hr": hr, "hr_float": to_float(hr)})
    assert val["nll_bpd"] == pytest.approx(-expected.mean() / (1024 * math.log(2)), rel=1e-5)


def test_pixel_ce_decoders_on_hand_set_logits():
    """RGB: channel c's block of 256 outputs has logits ln 1 at level 0 and ln 3 at level 40c + 20 (others
    -1e4) -> argmax (40c + 20)/255, mean 0.75 (40c + 20)/255; and log_prob at those levels is 32*32*3*ln(3/4)."""
    raw = torch.full((1, 3 * 256, 32, 32), -1e4)
    peaks = [20, 60, 100]
    for c, k in enumerate(peaks):
        raw[0, c * 256 + 0] = 0.0
        raw[0, c * 256 + k] = math.log(3.0)
    method = _pixel_ce_with(raw, channels=3)
    lr = torch.rand(2, 3, 8, 8)
    decs = method.decodings()
    assert list(decs) == ["pixel_ce_mean", "pixel_ce_argmax"] == list(METHODS["pixel_ce"].rows)
    argmax, mean = decs["pixel_ce_argmax"](lr, None), decs["pixel_ce_mean"](lr, None)
    for c, k in enumerate(peaks):
        assert torch.allclose(argmax[:, c], torch.full((2, 32, 32), k / 255))
        assert torch.allclose(mean[:, c], torch.full((2, 32, 32), 0.75 * k / 255), atol=1e-6)
    assert torch.equal(method.predict(lr), mean)
    hr = torch.tensor(peaks, dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 32, 32).contiguous()
    assert torch.allclose(method.log_prob(lr, hr), torch.full((2,), 3 * 1024 * math.log(0.75)), rtol=1e-5)


def test_pixel_ce_sample_draws_each_sub_pixel_independently():
    """Two equally likely levels (50 and 200) per sub-pixel: samples take only those, about half each,
    with no spatial pattern; the same generator seed repeats the draw; a one-hot level is always drawn."""
    raw = torch.full((1, 256, 32, 32), -1e4)
    raw[0, 50] = 0.0
    raw[0, 200] = 0.0
    method = _pixel_ce_with(raw, channels=1)
    lr = torch.rand(4, 1, 8, 8)
    s = method.sample(lr, temperature=1.0, generator=torch.Generator().manual_seed(3))
    levels = set(torch.round(s * 255).long().unique().tolist())
    assert levels == {50, 200}
    share = (s > 0.5).float().mean().item()  # 4096 Bernoulli(0.5) draws: sd 0.008
    assert 0.46 < share < 0.54
    assert torch.equal(s, method.sample(lr, temperature=1.0, generator=torch.Generator().manual_seed(3)))
    # Independence across positions: a row's draws do not copy its neighbour's (P(identical rows) ~ 2^-32).
    assert not torch.equal(s[:, :, 0], s[:, :, 1])
    raw2 = torch.full((1, 256, 32, 32), -1e4)
    raw2[0, 77] = 0.0
    one = _pixel_ce_with(raw2, channels=1).sample(lr, temperature=0.5)
    assert torch.equal(one, torch.full_like(one, 77 / 255))
    with pytest.raises(ValueError, match="temperature"):
        method.sample(lr, temperature=0.0)


# -- every decoding: shapes, ranges, eval mode --------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", ["resnet_l2", "gan", "pixel_ce"])
def test_decodings_shapes_ranges_and_mode(name, channels):
    torch.manual_seed(0)
    method, _ = smoke(name, channels)
    assert method.name == name
    method.train()
    lr = torch.rand(3, channels, 8, 8)
    decs = method.decodings()
    assert tuple(decs) == METHODS[name].rows
    for row, decode in decs.items():
        sr = decode(lr, torch.Generator().manual_seed(0))
        assert sr.shape == (3, channels, 32, 32) and sr.dtype == torch.float32, row
        assert sr.min() >= 0 and sr.max() <= 1, row
        # eval mode: the batch norm running statistics, so one image's output does not depend on the others
        assert torch.allclose(decode(lr[:1], None), sr[:1], atol=1e-5), row
    assert method.training  # the caller's mode is restored
    assert method.preview(lr, None).shape == (3, channels, 32, 32)
    with pytest.raises(ValueError, match=r"\[B, %d, 8, 8\]" % channels):
        method.predict(torch.rand(3, channels, 16, 16))


@pytest.mark.parametrize("name", ["resnet_l2", "gan", "pixel_ce"])
def test_model_config_rebuilds_the_same_module(name):
    method, _ = smoke(name, channels=3)
    clone = CLASSES[name](**method.model_config())
    clone.load_state_dict(method.state_dict())
    lr = torch.rand(2, 3, 8, 8)
    assert torch.equal(clone.predict(lr), method.predict(lr))


# -- through the real Trainer ------------------------------------------------------------------------
def test_each_baseline_trains_through_the_trainer(tmp_path, batch):

    hr = batch["hr"].numpy()
    lr = to_uint8(batch["lr"]).numpy()
    data = SimpleNamespace(lr=lr, hr=hr)
    for name in ("resnet_l2", "gan", "pixel_ce"):
        method, train = smoke(name)
        train = dict(train, steps=6, log_every=2)  # the profile's other keys; fewer steps keep the test short
        run = tmp_path / name
        final = Trainer(method, data, data, run, train, seed=0, meta={"profile": "smoke", "test": True}).fit()
        expected_val = {
            "resnet_l2": {"mse", "psnr"},
            "gan": {"consistency_l1", "mse", "psnr", "d_real", "d_fake", "d_real_eval", "d_fake_eval"},
            "pixel_ce": {"nll_bpd", "mse", "psnr"},
        }[name]
        assert set(final) == expected_val and all(math.isfinite(v) for v in final.values())
        for f in ("model.safetensors", "config.json", "state.pt", "log.csv"):
            assert (run / f).is_file(), f"{name}: {f} missing"
        assert list((run / "samples").glob("step_*.png"))
        rows = read_log(run, split="train")
        assert rows and "loss" in rows[-1]
        if name == "gan":
            assert {"loss_d", "d_real", "d_fake", "loss_consistency"} <= set(rows[-1])
        loaded = load_method(run, device="cpu")
        assert type(loaded) is CLASSES[name]
        x = batch["lr"][:4]
        assert torch.allclose(loaded.predict(x), method.to("cpu").predict(x), atol=1e-6)


def _ddp_gan_worker(rank: int, world: int, port: int, run_dir: str, out_dir: str) -> None:
    """One gloo rank: 3 smoke GAN steps through the Trainer, then this rank's parameters to out_dir/rank<r>.pt."""

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    try:
        b = make_batch(_hr_images(16))
        data = SimpleNamespace(lr=to_uint8(b["lr"]).numpy(), hr=b["hr"].numpy())
        torch.manual_seed(0)
        method, train = smoke("gan")
        train = dict(train, steps=3, val_images=0, grid_images=0)
        Trainer(method, data, None, run_dir, train, seed=0, device="cpu").fit()
        torch.save({k: v.detach().clone() for k, v in method.named_parameters()}, f"{out_dir}/rank{rank}.pt")
        dist_utils.finish()
    finally:
        dist_utils.cleanup()


@pytest.mark.slow
def test_gan_under_two_process_ddp_keeps_ranks_identical(tmp_path):
    """Each rank trains on its own half of every batch; only averaged gradients (G through its DDP wrapper,
    D through its own) keep the two ranks' generator AND discriminator weights identical."""

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_gan_worker, args=(2, port, str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    p0, p1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    torch.manual_seed(0)
    init = dict(smoke("gan")[0].named_parameters())
    for k in p0:
        assert torch.equal(p0[k], p1[k]), k
    assert not torch.equal(p0["generator.head.weight"], init["generator.head.weight"])
    assert not torch.equal(p0["discriminator.logit.weight"], init["discriminator.logit.weight"])


def test_gan_resume_is_exact_including_discriminator_batch_norm(tmp_path, batch):
    """srez's D has batch norm: its running statistics are part of the checkpoint, so 3 + 3 resumed steps
    equal 6 uninterrupted ones bit for bit; validation and G's step leave D's running statistics alone."""

    data = SimpleNamespace(lr=to_uint8(batch["lr"]).numpy(), hr=batch["hr"].numpy())
    train = dict(smoke("gan")[1], steps=6, log_every=1, val_every=3, ckpt_every=3, grid_images=0)

    def fresh():
        torch.manual_seed(0)
        return smoke("gan")[0]

    whole = fresh()
    Trainer(whole, data, data, tmp_path / "whole", train, seed=0).fit()
    part = fresh()
    Trainer(part, data, data, tmp_path / "part", dict(train, steps=3), seed=0).fit()
    resumed = fresh()
    Trainer(resumed, data, data, tmp_path / "part", train, seed=0, resume=True).fit()
    a, b = whole.state_dict(), resumed.state_dict()
    assert any("running_mean" in k for k in a if k.startswith("discriminator."))
    for k in a:
        assert torch.equal(a[k], b[k]), k

    # 6 training steps x 2 D passes (real, fake) moved the counters; validation and G's passes did not
    counts = {int(v) for k, v in a.items() if k.startswith("discriminator.") and k.endswith("num_batches_tracked")}
    assert counts == {12}
    before = {k: v.clone() for k, v in whole.discriminator.state_dict().items()}
    out = whole.validation_step(make_batch(batch["hr"][:8]))
    assert {"d_real", "d_fake", "d_real_eval", "d_fake_eval"} <= set(out)
    assert all(torch.equal(before[k], v) for k, v in whole.discriminator.state_dict().items())
