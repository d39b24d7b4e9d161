"""Per-pixel cross-entropy baseline (`pixel_ce`): the conditioning network alone, C*256 logits per pixel,
trained with a 256-way cross entropy per sub-pixel (Fig. 2's "cross-entropy" column).

Every sub-pixel is independent given x, so log p(y | x) is the sum of the per-sub-pixel log-softmax
values at the target levels: an exact likelihood. Table 1 shows the model twice: `pixel_ce_mean` (per
sub-pixel expected level, sum_k p_k k / 255) and `pixel_ce_argmax` (per sub-pixel mode, k* / 255).

Logit layout: the network's C*256 output channels are read as [C, 256] (channel c owns outputs
c*256 .. c*256 + 255) and moved to the last dimension, `[B, C, 32, 32, 256]`, because
`F.cross_entropy` over classes in the last dimension (rows of a 2-D view) is ~30 % faster on CPU than
over dim 1.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from metrics.likelihood import bits_per_dim
from sr_models.conditioning import ConditioningNetwork
from sr_models.method import StepContext, TrainableMethod
from sr_models.modes import eval_mode
from sr_models.optim import build_optimizer

from .learned_common import check_hr_size, check_hr_uint8, check_lr, psnr_per_image
from .rows import PIXEL_CE_ROWS

LEVELS = 256
#: Images per chunk at inference: bounds the [chunk, C, 32, 32, 256] float logits to ~100 MB for RGB.
INFERENCE_CHUNK = 32


class PixelCE(TrainableMethod):
    """p(y | x) = prod_i softmax(A_i(x))[y_i] over sub-pixels i; lr [B, C, 8, 8] float in [0, 1]."""

    name = "pixel_ce"
    has_likelihood = True

    def __init__(self, channels: int, widths: Sequence[int] = (32, 32, 32), blocks: int = 6, hr_size: int = 32):
        """`hr_size`: output side (32; the fully convolutional net also maps 4x4 -> 16x16, for the corners task)."""
        super().__init__()
        self.hr_size = check_hr_size(hr_size, "PixelCE")
        if channels not in (1, 3):
            raise ValueError(f"PixelCE: channels must be 1 or 3, got {channels}")
        self.channels = channels
        self.net = ConditioningNetwork(channels, channels * LEVELS, widths=widths, blocks=blocks)

    def model_config(self) -> Dict[str, Any]:
        return {
            "channels": self.channels,
            "widths": list(self.net.config["widths"]),
            "blocks": self.net.config["blocks"],
            **({"hr_size": self.hr_size} if self.hr_size != 32 else {}),
        }  # absent at 32: older runs' configs match

    # -- the model -------------------------------------------------------------------------------
    @staticmethod
    def arrange_logits(raw: torch.Tensor) -> torch.Tensor:
        """[B, C*256, H, W] network output -> [B, C, H, W, 256] logits (classes last)."""
        b, ck, h, w = raw.shape
        return raw.view(b, ck // LEVELS, LEVELS, h, w).permute(0, 1, 3, 4, 2)

    def logits(self, lr: torch.Tensor) -> torch.Tensor:
        """lr float [B, C, 8, 8] in [0, 1] -> logits float32 [B, C, 32, 32, 256] (module's current mode)."""
        check_lr(lr, self.channels, "PixelCE", self.hr_size // 4)
        return self.arrange_logits(self.net(lr.float()).float())

    def _chunked(self, lr: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """fn(logits [b, C, 32, 32, 256]) for chunks of the batch, in eval mode without gradients, concatenated."""
        check_lr(lr, self.channels, "PixelCE", self.hr_size // 4)
        outs = []
        with torch.no_grad(), eval_mode(self):
            for start in range(0, lr.shape[0], INFERENCE_CHUNK):
                outs.append(fn(self.logits(lr[start : start + INFERENCE_CHUNK])))
        return torch.cat(outs)

    # -- decoders (static pieces are tested on hand-set logits) ------------------------------------
    @staticmethod
    def mean_from_logits(logits: torch.Tensor) -> torch.Tensor:
        """[..., 256] logits -> [...] expected level / 255 = sum_k softmax_k * k / 255, in [0, 1]."""
        levels = torch.arange(LEVELS, device=logits.device, dtype=torch.float32) / (LEVELS - 1)
        return torch.softmax(logits.float(), dim=-1) @ levels

    @staticmethod
    def argmax_from_logits(logits: torch.Tensor) -> torch.Tensor:
        """[..., 256] logits -> [...] most probable level / 255, in [0, 1]."""
        return logits.argmax(dim=-1).float() / (LEVELS - 1)

    @staticmethod
    def sample_from_logits(
        logits: torch.Tensor, temperature: float = 1.0, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """[..., 256] logits -> [...] one level / 255 per position, drawn independently from
        softmax(logits / temperature)."""
        if not temperature > 0:
            raise ValueError(
                f"PixelCE: temperature must be > 0, got {temperature} (use the argmax decoding for the mode)"
            )
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        flat = probs.reshape(-1, LEVELS)
        draws = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
        return draws.float() / (LEVELS - 1)

    def predict_mean(self, lr: torch.Tensor) -> torch.Tensor:
        """lr [B, C, 8, 8] -> per-sub-pixel expected value, float [B, C, 32, 32] in [0, 1]."""
        return self._chunked(lr, lambda logits: self.mean_from_logits(logits))

    def predict_argmax(self, lr: torch.Tensor) -> torch.Tensor:
        """lr [B, C, 8, 8] -> per-sub-pixel mode, float [B, C, 32, 32] in [0, 1] (multiples of 1/255)."""
        return self._chunked(lr, lambda logits: self.argmax_from_logits(logits))

    def sample(
        self, lr: torch.Tensor, temperature: float = 1.0, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """lr [B, C, 8, 8] -> one sample with every sub-pixel drawn independently, float [B, C, 32, 32] in [0, 1]."""
        return self._chunked(lr, lambda logits: self.sample_from_logits(logits, temperature, generator))

    def predict(self, lr: torch.Tensor) -> torch.Tensor:
        """The per-sub-pixel mean (Table 1 row `pixel_ce_mean`)."""
        return self.predict_mean(lr)

    def decodings(self):
        """Table-1 rows (`baselines.rows.PIXEL_CE_ROWS`): the mean and the argmax decoding."""
        by_mode = {"mean": self.predict_mean, "argmax": self.predict_argmax}

        def decoder(mode):
            return lambda lr, generator=None: by_mode[mode](lr)

        return {row.name: decoder(row.decode_kwargs["mode"]) for row in PIXEL_CE_ROWS}

    def preview(self, lr: torch.Tensor, generator=None) -> torch.Tensor:
        return self.predict_mean(lr)

    def log_prob(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """log p(hr | lr) in nats, [B]: sum over the C*32*32 sub-pixels of log softmax at the target level.

        lr float [B, C, 8, 8] in [0, 1]; hr uint8 [B, C, 32, 32]. Eval mode, no gradients.
        """
        check_hr_uint8(hr, self.channels, "PixelCE.log_prob", self.hr_size)
        if hr.shape[0] != lr.shape[0]:
            raise ValueError(f"PixelCE.log_prob: lr has {lr.shape[0]} images but hr has {hr.shape[0]}")
        out = []
        with torch.no_grad(), eval_mode(self):
            for start in range(0, lr.shape[0], INFERENCE_CHUNK):
                logits = self.logits(lr[start : start + INFERENCE_CHUNK])
                target = hr[start : start + INFERENCE_CHUNK].long()
                nll = F.cross_entropy(logits.reshape(-1, LEVELS), target.reshape(-1), reduction="none")
                out.append(-nll.view(target.shape[0], -1).sum(1))
        return torch.cat(out)

    # -- training --------------------------------------------------------------------------------
    def make_optimizers(self, train_cfg: Dict[str, Any]) -> Dict[str, torch.optim.Optimizer]:
        return {"model": build_optimizer(self.net.parameters(), train_cfg)}

    def training_step(
        self, batch: Dict[str, torch.Tensor], optimizers: Dict[str, torch.optim.Optimizer], ctx: StepContext
    ) -> Dict[str, float]:
        """Mean per-sub-pixel cross entropy in nats (`loss`); also logs it in bits/dim (`loss_bpd`)."""
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        net = ctx.ddp(self.net)
        with ctx.autocast():
            raw = net(batch["lr"])
        logits = self.arrange_logits(raw.float())
        loss = F.cross_entropy(logits.reshape(-1, LEVELS), batch["hr"].long().reshape(-1))
        loss.backward()
        opt.step()
        value = loss.detach().reshape(1)  # a mean per sub-pixel: bits/dim of one sub-pixel
        nats, bits = torch.cat([value.double(), bits_per_dim(value, 1)]).tolist()  # one sync
        return {"loss": nats, "loss_bpd": bits}

    @torch.no_grad()
    def validation_step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, float]:
        """`nll_bpd` (negative log-likelihood in bits per sub-pixel) and `mse`/`psnr` of the mean decoding."""
        lr, hr = batch["lr"], batch["hr"]
        nll_bpd = bits_per_dim(-self.log_prob(lr, hr), hr[0].numel()).mean().float()
        sr = self.predict_mean(lr)
        ref = batch["hr_float"].float()
        vals = torch.stack([nll_bpd, (sr - ref).pow(2).mean(), psnr_per_image(sr, ref).mean()]).tolist()
        return dict(zip(("nll_bpd", "mse", "psnr"), vals))
