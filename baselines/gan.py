"""GAN baseline: the paper's ref. [11] ("srez", D. Garcia 2016) adapted from 16->64 to 8->32.

Generator (`SrezGenerator`): 3x3 conv stem at 8x8 -> `g_blocks` residual blocks per resolution
(conv-BN-ReLU-conv-BN + skip) at 8x8, 16x16 and 32x32, joined by two up-sampling stages (nearest-
neighbour 2x, then 3x3 conv + ReLU, which avoids the checkerboard of strided transposed convolutions;
srez also up-samples by nearest neighbour followed by a stride-1 transposed convolution) -> 3x3 conv to
C channels -> sigmoid, so outputs are in [0, 1].

Discriminator (`SrezDiscriminator`), srez's `_discriminator_model` scaled to 32x32 inputs: `len(d_widths)`
stride-2 3x3 convs (srez: 64, 128, 256, 512; 32 -> 16 -> 8 -> 4 -> 2), each followed by batch norm and ReLU,
then srez's "all convolutional" finish at the last width (3x3 conv, BN, ReLU; 1x1 conv, BN, ReLU) and a
linear layer on the flattened features to one logit per image. Real and fake images go through it in
SEPARATE forward passes (as srez's two graph instances do), so each batch is normalised with its own
statistics and neither half sees the other. Batch statistics are also what D judges with when G is
trained and in the logged validation `d_real`/`d_fake`; the running statistics (updated only in D's own
step, once by the real and once by the fake batch) are used by `d_real_eval`/`d_fake_eval`.

Why: without batch norm and with one concatenated batch, G won every step (D(real) = D(fake) = 0.50
for a whole `quick` run); with srez's design D learns (see docs/reproduction-notes.md and CHANGELOG.md).

Losses (srez's weighting):
    generator     = 0.9 * mean|downsample(G(x), 4) - x|  +  0.1 * mean softplus(-D(G(x)))   (non-saturating)
    discriminator = mean softplus(-D(y)) + mean softplus(D(G(x)))                            (BCE real/fake)
Each iteration takes one discriminator step, then one generator step against the updated D. Adam with lr 2e-4,
beta1 0.5 for both (profiles; the discriminator reads `d_`-prefixed keys first).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Dict, Iterator, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from sr_data import downsample
from sr_models.conditioning import ResBlock
from sr_models.method import StepContext, TrainableMethod
from sr_models.modes import eval_mode
from sr_models.optim import build_optimizer

from .learned_common import check_lr, psnr_per_image

#: srez's `gene_l1_factor`: weight of the L1 consistency term; the adversarial term gets 1 - this.
DEFAULT_L1_WEIGHT = 0.9


class SrezGenerator(nn.Module):
    """G: lr [B, C, 8, 8] float in [0, 1] -> [B, C, 32, 32] float in (0, 1).

    `widths` are the channel widths at 8x8, 16x16, 32x32; `blocks` residual blocks at each.
    """

    def __init__(self, channels: int, widths: Sequence[int] = (64, 48, 32), blocks: int = 2):
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"SrezGenerator: widths must give 3 stage widths (8x8, 16x16, 32x32), got {list(widths)}")
        w8, w16, w32 = widths
        self.stem = nn.Sequential(nn.Conv2d(channels, w8, 3, padding=1), nn.ReLU(inplace=True))
        self.stage8 = nn.Sequential(*[ResBlock(w8) for _ in range(blocks)])
        self.up16 = self._upsample(w8, w16)
        self.stage16 = nn.Sequential(*[ResBlock(w16) for _ in range(blocks)])
        self.up32 = self._upsample(w16, w32)
        self.stage32 = nn.Sequential(*[ResBlock(w32) for _ in range(blocks)])
        self.head = nn.Conv2d(w32, channels, 3, padding=1)

    @staticmethod
    def _upsample(c_in: int, c_out: int) -> nn.Module:
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True)
        )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h = self.stage8(self.stem(lr * 2.0 - 1.0))  # centre the [0, 1] input
        h = self.stage16(self.up16(h))
        h = self.stage32(self.up32(h))
        return torch.sigmoid(self.head(h))


class SrezDiscriminator(nn.Module):
    """D: images [B, C, 32, 32] float in [0, 1] -> logits [B] (high = judged real).

    `widths`: the stride-2 conv widths (srez: 64, 128, 256, 512); the two finishing convs keep the last.
    Batch norm after every conv (srez's `add_batch_norm`), ReLU activations, linear output.
    """

    def __init__(self, channels: int, widths: Sequence[int] = (64, 128, 256, 512)):
        super().__init__()
        if not 1 <= len(widths) <= 5:
            raise ValueError(f"SrezDiscriminator: widths must list 1 to 5 stride-2 conv widths, got {list(widths)}")
        layers, c_in = [], channels
        for w in widths:
            layers += self._conv_bn_relu(c_in, w, 3, 2)
            c_in = w
        layers += self._conv_bn_relu(c_in, c_in, 3, 1) + self._conv_bn_relu(c_in, c_in, 1, 1)
        self.features = nn.Sequential(*layers)
        side = 32 >> len(widths)
        self.logit = nn.Linear(c_in * side * side, 1)

    @staticmethod
    def _conv_bn_relu(c_in: int, c_out: int, k: int, stride: int) -> list:
        # no conv bias: batch norm's shift replaces it
        return [
            nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(images * 2.0 - 1.0).flatten(1)).squeeze(1)


@contextmanager
def batch_statistics(module: nn.Module) -> Iterator[nn.Module]:
    """Every batch norm in `module` normalises with the current batch's statistics and leaves its running
    statistics (and counters) untouched; modes and flags are restored afterwards."""
    saved = []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.training, m.track_running_stats))
            m.training, m.track_running_stats = True, False
    try:
        yield module
    finally:
        for m, training, track in saved:
            m.training, m.track_running_stats = training, track


def consistency_l1(sr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
    """mean |downsample(sr, 4) - lr| over every element: sr [B, C, 32, 32], lr [B, C, 8, 8] -> scalar (float32).

    `downsample` is the antialiased bicubic that makes the LR inputs, so G is held to the operator the data
    came from (srez takes a 4x4 box mean here; the paper names no kernel)."""
    return (downsample(sr.float(), 4) - lr.float()).abs().mean()


def generator_losses(
    sr: torch.Tensor, lr: torch.Tensor, fake_logits: torch.Tensor, l1_weight: float = DEFAULT_L1_WEIGHT
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, consistency, adversarial) scalars: total = l1_weight * consistency + (1 - l1_weight) * adversarial.

    adversarial = mean softplus(-D(G(x))) = mean -log sigmoid(D(G(x))), the non-saturating GAN loss.
    """
    consistency = consistency_l1(sr, lr)
    adversarial = F.softplus(-fake_logits.float()).mean()
    return l1_weight * consistency + (1.0 - l1_weight) * adversarial, consistency, adversarial


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE of D on real (target 1) plus BCE on fake (target 0), each a mean over its half (srez sums them)."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


class GAN(TrainableMethod):
    """srez-style GAN super-resolver: `predict(lr)` = G(lr) in eval mode, float [B, C, 32, 32] in [0, 1]."""

    name = "gan"

    def __init__(
        self,
        channels: int,
        g_widths: Sequence[int] = (64, 48, 32),
        g_blocks: int = 2,
        d_widths: Sequence[int] = (64, 128, 256, 512),
        l1_weight: float = DEFAULT_L1_WEIGHT,
    ):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"GAN: channels must be 1 or 3, got {channels}")
        if not 0.0 <= l1_weight <= 1.0:
            raise ValueError(f"GAN: l1_weight must be in [0, 1], got {l1_weight}")
        self.channels = channels
        self.l1_weight = float(l1_weight)
        self._cfg = {"g_widths": list(g_widths), "g_blocks": int(g_blocks), "d_widths": list(d_widths)}
        self.generator = SrezGenerator(channels, g_widths, g_blocks)
        self.discriminator = SrezDiscriminator(channels, d_widths)

    def model_config(self) -> Dict[str, Any]:
        return {"channels": self.channels, **self._cfg, "l1_weight": self.l1_weight}

    # -- inference -------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, lr: torch.Tensor) -> torch.Tensor:
        """lr float [B, C, 8, 8] in [0, 1] -> G(lr) float [B, C, 32, 32] in [0, 1], eval mode."""
        check_lr(lr, self.channels, "GAN")
        with eval_mode(self):
            return self.generator(lr.float()).clamp(0.0, 1.0)

    def preview(self, lr: torch.Tensor, generator=None) -> torch.Tensor:
        return self.predict(lr)

    # -- training --------------------------------------------------------------------------------
    def make_optimizers(self, train_cfg: Dict[str, Any]) -> Dict[str, torch.optim.Optimizer]:
        """Adam (profile: lr 2e-4, betas [0.5, 0.999]) for each; D reads `d_lr`, `d_betas`, ... first."""
        return {
            "generator": build_optimizer(self.generator.parameters(), train_cfg),
            "discriminator": build_optimizer(self.discriminator.parameters(), train_cfg, prefix="d_"),
        }

    def training_step(
        self, batch: Dict[str, torch.Tensor], optimizers: Dict[str, torch.optim.Optimizer], ctx: StepContext
    ) -> Dict[str, float]:
        """One D step (real and fake batches in separate passes), then one G step. Logs `loss` (G total),
        `loss_consistency`, `loss_adversarial`, `loss_d`, `d_real`, `d_fake` (mean D probabilities before the
        D update)."""
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        lr, real = batch["lr"], batch["hr_float"]
        g, d = ctx.ddp(self.generator), ctx.ddp(self.discriminator)

        with ctx.autocast():
            fake = g(lr)

        # Discriminator: real and fake in separate forward/backward passes through the DDP wrapper (each batch
        # normalised with its own statistics, as srez's two graph instances); the gradients add up to those of
        # the summed loss.
        opt_d.zero_grad(set_to_none=True)
        with ctx.autocast():
            real_logits = d(real.to(fake.dtype)).float()
        loss_real = F.softplus(-real_logits).mean()
        loss_real.backward()
        with ctx.autocast():
            fake_logits_d = d(fake.detach()).float()
        loss_fake = F.softplus(fake_logits_d).mean()
        loss_fake.backward()
        loss_d = loss_real.detach() + loss_fake.detach()
        opt_d.step()

        # Generator against the updated D. D's own gradients are not wanted here, so D runs as the plain
        # module with frozen parameters (its DDP wrapper would wait for gradients that never come), judging
        # with batch statistics as in its own step but without moving its running statistics.
        opt_g.zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(False)
        try:
            with ctx.autocast(), batch_statistics(self.discriminator):
                fake_logits_g = self.discriminator(fake)
            loss_g, consistency, adversarial = generator_losses(fake, lr, fake_logits_g, self.l1_weight)
            loss_g.backward()
        finally:
            self.discriminator.requires_grad_(True)
        opt_g.step()

        with torch.no_grad():
            stats = torch.stack(
                [
                    loss_g.detach(),
                    consistency.detach(),
                    adversarial.detach(),
                    loss_d.detach(),
                    torch.sigmoid(real_logits.detach()).mean(),
                    torch.sigmoid(fake_logits_d.detach()).mean(),
                ]
            ).tolist()  # one device sync for all six scalars
        keys = ("loss", "loss_consistency", "loss_adversarial", "loss_d", "d_real", "d_fake")
        return dict(zip(keys, stats))

    @torch.no_grad()
    def validation_step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, float]:
        """`consistency_l1` (the G loss's L1 term), `mse` and `psnr` (dB, per-image mean) against `hr_float`;
        `d_real`/`d_fake`: mean D probabilities on the real images and on G's outputs, each batch through D
        separately with its own batch statistics (how D judges in training); `d_real_eval`/`d_fake_eval`:
        the same with D in eval mode (its running statistics, a per-image judgement)."""
        lr, hr = batch["lr"], batch["hr_float"].float()
        sr = self.predict(lr)
        with batch_statistics(self.discriminator):
            p_real, p_fake = torch.sigmoid(self.discriminator(hr)), torch.sigmoid(self.discriminator(sr))
        with eval_mode(self):
            e_real, e_fake = torch.sigmoid(self.discriminator(hr)), torch.sigmoid(self.discriminator(sr))
        vals = torch.stack(
            [
                consistency_l1(sr, lr),
                (sr - hr).pow(2).mean(),
                psnr_per_image(sr, hr).mean(),
                p_real.mean(),
                p_fake.mean(),
                e_real.mean(),
                e_fake.mean(),
            ]
        ).tolist()
        return dict(zip(("consistency_l1", "mse", "psnr", "d_real", "d_fake", "d_real_eval", "d_fake_eval"), vals))
