"""The pixel-recursive super-resolution model (Dahl et al. 2017, Sections 3-4).

p(y_i | x, y<i) = softmax(A_i(x) + B_i(y<i))   (Eq. 6)
A: the conditioning network (`sr_models.conditioning`), lr [B, C, 8, 8] -> C*256 logits per HR pixel.
B: the gated PixelCNN prior (`sr_models.layers.GatedPixelCNN`) over the HR image, uint8 levels
   normalised to [-1, 1] (x / 127.5 - 1; zero padding therefore means mid-grey).
Training objective = Eq. 8: CE(softmax(A + B)) + CE(softmax(A)), each a mean over sub-pixels, in nats.

Logit tensors keep the 256 classes in their LAST (contiguous) dimension internally, [B, H, W, C, 256]:
cross-entropy over the last dimension is ~30 % faster on CPU than over dim 1 (a contiguous reduction). `forward`
returns views of them in the public layout [B, 256, C, H, W].
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from metrics.likelihood import bits_per_dim

from .conditioning import ConditioningNetwork
from .layers import GatedPixelCNN
from .method import StepContext, TrainableMethod
from .modes import eval_mode
from .optim import build_optimizer
from .rows import PIXEL_RECURSIVE_ROWS
from .sampling import Canonical, draw_uniforms, float32_exact, sample_cached, sample_naive

LEVELS = 256
HR_SIZE = 32
SCALE = 4


def normalise_levels(hr: torch.Tensor) -> torch.Tensor:
    """uint8 (or integer-valued float) levels 0..255 -> float32 in [-1, 1]: the prior's input space."""
    return hr.float() / 127.5 - 1.0


def _to_channels_last(module, inputs):
    # forward pre-hook on the 1x1 output convolutions: their C*256-channel outputs then come out with the
    # classes in the last memory dimension, so the class-last view needs no copy (input is only 32 wide).
    return (inputs[0].contiguous(memory_format=torch.channels_last),)


class PixelRecursiveSR(TrainableMethod):
    """Conditioning network A + gated PixelCNN prior B.

    Args (the `methods.pixel_recursive.model` section of a profile; defaults = the paper's sizes):
        channels: C, 1 (grey) or 3 (RGB).
        cond_widths: A's widths at 8x8, 16x16, 32x32.   cond_blocks: ResNet blocks per resolution.
        prior_width: channels of both stacks.            prior_layers: gated blocks.
        prior_kernel: odd filter size of the gated blocks. input_kernel: odd size of the mask-A input conv.
        head_channels: width of the prior's 1x1 head.
        hr_size: output side (32; both networks are fully convolutional, so 16 gives the 4x4 -> 16x16 corners task).
        prior_dropout: dropout rate in [0, 1) inside the prior's gated blocks while training (PixelCNN++: 0.5;
            default 0 = none). Evaluation, log_prob and the samplers run in eval mode, where it does nothing.
    """

    name = "pixel_recursive"
    has_likelihood = True

    def __init__(
        self,
        channels: int,
        cond_widths: Sequence[int] = (32, 32, 32),
        cond_blocks: int = 6,
        prior_width: int = 32,
        prior_layers: int = 20,
        prior_kernel: int = 5,
        input_kernel: int = 7,
        head_channels: int = 1024,
        hr_size: int = HR_SIZE,
        prior_dropout: float = 0.0,
    ):
        super().__init__()
        if isinstance(hr_size, bool) or int(hr_size) != hr_size or hr_size < 8 or hr_size % SCALE:
            raise ValueError(
                f"hr_size must be a multiple of {SCALE} and >= 8 ({HR_SIZE} for 8x8 -> 32x32), got {hr_size!r}"
            )
        self.hr_size = int(hr_size)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
        self.channels = channels
        self._config = dict(
            channels=channels,
            cond_widths=[int(w) for w in cond_widths],
            cond_blocks=int(cond_blocks),
            prior_width=int(prior_width),
            prior_layers=int(prior_layers),
            prior_kernel=int(prior_kernel),
            input_kernel=int(input_kernel),
            head_channels=int(head_channels),
        )
        if self.hr_size != HR_SIZE:  # absent at 32: older runs' configs match
            self._config["hr_size"] = self.hr_size
        if prior_dropout:  # absent at 0: runs without dropout keep the config they always had
            self._config["prior_dropout"] = float(prior_dropout)
        self.cond = ConditioningNetwork(channels, channels * LEVELS, cond_widths, cond_blocks)
        self.prior = GatedPixelCNN(
            channels, prior_width, prior_layers, prior_kernel, input_kernel, head_channels, float(prior_dropout)
        )
        self.cond.head.register_forward_pre_hook(_to_channels_last)
        self.prior.head2.register_forward_pre_hook(_to_channels_last)

    def model_config(self) -> Dict[str, Any]:
        return dict(self._config)

    # -- logits ------------------------------------------------------------------------------------
    def _class_last(self, logits: torch.Tensor) -> torch.Tensor:
        """[B, C*256, H, W] -> [B, H, W, C, 256] (a view when the input is channels_last in memory)."""
        b, _, h, w = logits.shape
        return logits.permute(0, 2, 3, 1).reshape(b, h, w, self.channels, LEVELS)

    def cond_logits(self, lr: torch.Tensor) -> torch.Tensor:
        """A(x): lr [B, C, 8, 8] float in [0, 1] -> [B, H, W, C, 256] (classes last)."""
        self._check_lr(lr)
        return self._class_last(self.cond(lr))

    def prior_logits(self, hr: torch.Tensor) -> torch.Tensor:
        """B(y<i): hr [B, C, 32, 32] uint8 -> [B, H, W, C, 256] (classes last)."""
        return self._class_last(self.prior(normalise_levels(hr)))

    def forward(self, lr: torch.Tensor, hr: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """lr [B, C, 8, 8] float in [0, 1], hr [B, C, 32, 32] uint8 -> (A, B) logits, each [B, 256, C, 32, 32]."""
        self._check_hr(hr, lr)
        a = self.cond_logits(lr)
        b = self.prior_logits(hr)
        return a.permute(0, 4, 3, 1, 2), b.permute(0, 4, 3, 1, 2)

    # -- Eq. 8 and the likelihood ------------------------------------------------------------------
    @staticmethod
    def _ce_terms(a: torch.Tensor, b: torch.Tensor, hr: torch.Tensor, reduction: str = "mean"):
        """Per-sub-pixel cross-entropies (nats) of softmax(A + B) and softmax(A) at the targets `hr`.

        a, b: [B, 256, C, H, W] as returned by `forward`. reduction 'mean' -> two scalars (means over
        all sub-pixels); 'image' -> two [B] tensors (sums over each image's sub-pixels).
        """
        a_last = a.permute(0, 3, 4, 2, 1)  # [B, H, W, C, 256]
        b_last = b.permute(0, 3, 4, 2, 1)
        if a_last.dtype != torch.float32:  # bf16 autocast: sum and normalise in float32
            a_last, b_last = a_last.float(), b_last.float()
        full = (a_last + b_last).reshape(-1, LEVELS)
        cond = a_last.reshape(-1, LEVELS)
        target = hr.permute(0, 2, 3, 1).reshape(-1).long()
        if reduction == "mean":
            return F.cross_entropy(full, target), F.cross_entropy(cond, target)
        n = hr.shape[0]
        ce_full = F.cross_entropy(full, target, reduction="none").view(n, -1).sum(1)
        ce_cond = F.cross_entropy(cond, target, reduction="none").view(n, -1).sum(1)
        return ce_full, ce_cond

    def _eq8(self, a: torch.Tensor, b: torch.Tensor, hr: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Eq. 8 (negated, per sub-pixel) from the logits of `forward`: (loss, full, cond), where full = CE of
        softmax(A + B), cond = CE of softmax(A), each a mean over sub-pixels in nats, and loss = full + cond.
        The one place the objective is written; `loss`, `loss_terms`, training and validation use it."""
        full, cond = self._ce_terms(a, b, hr)
        return full + cond, full, cond

    def loss_terms(self, lr: torch.Tensor, hr: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(CE of softmax(A+B), CE of softmax(A)), each a mean over sub-pixels in nats (the two Eq. 8 terms)."""
        _, full, cond = self._eq8(*self(lr, hr), hr)
        return full, cond

    def loss(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """Eq. 8 (negated, per sub-pixel): CE(softmax(A + B)) + CE(softmax(A)), means over sub-pixels, nats."""
        return self._eq8(*self(lr, hr), hr)[0]

    def log_prob(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """log p(hr | lr) in nats, [B]: sum over sub-pixels of log softmax(A + B) at the target (Eq. 5/6).
        Uses the module's current mode (call `.eval()` first for batch norm's running statistics)."""
        full, _ = self._ce_terms(*self(lr, hr), hr, reduction="image")
        return -full

    def nll_bpd(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """-log p(hr | lr) in bits/dim, [B] float64 (`metrics.bits_per_dim`)."""
        return bits_per_dim(-self.log_prob(lr, hr), hr[0].numel())

    # -- sampling ----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        lr: torch.Tensor,
        temperature: float = 1.0,
        greedy: bool = False,
        generator: Optional[torch.Generator] = None,
        cached: bool = True,
        progress: bool = True,
    ) -> torch.Tensor:
        """Sample y ~ p(y | lr) sub-pixel by sub-pixel from softmax((A + B) / temperature); greedy = argmax.

        lr [B, C, 8, 8] float in [0, 1] -> float [B, C, 32, 32], uint8 levels / 255. A is computed once.
        `cached` selects the incremental sampler (default) or the naive one (a full prior pass per
        sub-pixel); both draw one uniform per sub-pixel from `generator` up front and resolve draws within
        float rounding of a CDF boundary by one shared float64 computation from lr (`sampling.Canonical`),
        so they return the same samples for the same generator state. Runs in eval mode (batch norm's
        running statistics) and restores the module's mode afterwards.
        """
        self._check_lr(lr)
        if not greedy and not temperature > 0:
            raise ValueError(f"temperature must be > 0 (use greedy=True for argmax decoding), got {temperature}")
        u = draw_uniforms(lr.shape[0], self.channels, self.hr_size, generator, lr.device)
        with eval_mode(self), float32_exact():  # A in plain float32 too (no TF32): the margins assume it
            sampler = sample_cached if cached else sample_naive
            a = self.cond_logits(lr)  # A once per batch
            canonical = Canonical(self, a, lr=lr)  # fragile draws: A and B in float64, image by image
            levels = sampler(self, a, u, temperature=temperature, greedy=greedy, progress=progress, canonical=canonical)
        return levels.float() / 255.0

    def predict(self, lr: torch.Tensor) -> torch.Tensor:
        """One sample at tau = 0.9 (the middle of the paper's best range 0.8-0.9), from torch's global RNG."""
        return self.sample(lr, temperature=0.9, progress=False)

    def decodings(self):
        """Table-1 rows: greedy, tau = 1.0, 0.9, 0.8 (cached sampler, eval mode)."""

        def decoder(kwargs):
            return lambda lr, generator=None: self.sample(lr, generator=generator, **kwargs)

        return {row.name: decoder(row.decode_kwargs) for row in PIXEL_RECURSIVE_ROWS}

    def preview(self, lr: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Samples at tau = 0.8 (what the paper's figures show) for the Trainer's sample grid."""
        return self.sample(lr, temperature=0.8, generator=generator, progress=False)

    # -- training ----------------------------------------------------------------------------------
    def make_optimizers(self, train_cfg: Dict[str, Any]) -> Dict[str, torch.optim.Optimizer]:
        return {"model": build_optimizer(self.parameters(), train_cfg)}

    def training_step(self, batch, optimizers, ctx: StepContext) -> Dict[str, float]:
        """One step on Eq. 8; logs both terms (nats) and the full model's bits/dim on the batch."""
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with ctx.autocast():
            a, b = ctx.ddp(self)(batch["lr"], batch["hr"])
            loss, full, cond = self._eq8(a, b, batch["hr"])
        loss.backward()
        opt.step()
        terms = torch.stack([loss.detach(), full.detach(), cond.detach()])
        # full is a mean per sub-pixel already: its bits/dim is that of one sub-pixel
        values = torch.cat([terms.double(), bits_per_dim(terms[1:2], 1)]).tolist()  # one sync
        return {
            "loss": values[0],
            "loss_full": values[1],
            "loss_cond": values[2],
            "bpd": values[3],
        }

    @torch.no_grad()
    def validation_step(self, batch) -> Dict[str, float]:
        """Means over the batch: `nll_bpd` (full model), `cond_nll_bpd` (A alone), `loss_full`, `loss_cond`
        (nats/sub-pixel)."""
        with eval_mode(self):
            _, full, cond = self._eq8(*self(batch["lr"], batch["hr"]), batch["hr"])
        terms = torch.stack([full, cond])  # means per sub-pixel: bits/dim of one sub-pixel each
        full, cond, full_bpd, cond_bpd = torch.cat([terms.double(), bits_per_dim(terms, 1)]).tolist()  # one sync
        return {
            "nll_bpd": full_bpd,
            "cond_nll_bpd": cond_bpd,
            "loss_full": full,
            "loss_cond": cond,
        }

    # -- helpers -----------------------------------------------------------------------------------
    def _check_lr(self, lr: torch.Tensor) -> None:
        if (
            not isinstance(lr, torch.Tensor)
            or lr.dim() != 4
            or lr.shape[1] != self.channels
            or not lr.is_floating_point()
        ):
            raise ValueError(
                f"lr must be a float tensor [B, {self.channels}, {self.hr_size // SCALE}, {self.hr_size // SCALE}] "
                "in [0, 1], "
                f"got {getattr(lr, 'dtype', type(lr))} {tuple(getattr(lr, 'shape', ()))}"
            )
        if tuple(lr.shape[-2:]) != (self.hr_size // SCALE, self.hr_size // SCALE):
            raise ValueError(f"lr must be {self.hr_size // SCALE}x{self.hr_size // SCALE}, got {tuple(lr.shape[-2:])}")

    def _check_hr(self, hr: torch.Tensor, lr: torch.Tensor) -> None:
        if hr.dtype != torch.uint8:
            raise TypeError(
                f"hr must be uint8 levels [B, C, {self.hr_size}, {self.hr_size}] (the 256-way targets), "
                f"got dtype {hr.dtype}"
            )
        if tuple(hr.shape) != (lr.shape[0], self.channels, self.hr_size, self.hr_size):
            raise ValueError(
                f"hr must have shape {(lr.shape[0], self.channels, self.hr_size, self.hr_size)}, got {tuple(hr.shape)}"
            )
