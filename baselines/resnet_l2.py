"""ResNet-L2 baseline (paper, Section 5 and footnote 2): the conditioning network's architecture with a
C-channel tanh output that predicts the residual over bicubic up-sampling, trained with MSE.

    sr = clamp(upsample(lr, 4) + residual_scale * tanh(A(lr)), 0, 1)

`A` is `sr_models.conditioning.ConditioningNetwork(in=C, out=C, widths, blocks)`. With the default
`residual_scale = 1.0` the tanh residual spans [-1, 1], the whole range a pixel difference in [0, 1] can
take, so every target is reachable. The head (last 1x1 conv) starts at zero, so a fresh model predicts
exactly the bicubic up-sampling and training can only move away from it where that helps.

Training minimises the MSE of the *unclamped* sum against `hr_float`: the clamp has no gradient outside
[0, 1], and a pixel pushed past the border would otherwise stop learning. The unclamped MSE bounds the
clamped one from above (targets lie in [0, 1]), and prediction clamps.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import torch
import torch.nn.functional as F

from sr_data import upsample
from sr_models.conditioning import ConditioningNetwork
from sr_models.method import StepContext, TrainableMethod
from sr_models.modes import eval_mode
from sr_models.optim import build_optimizer

from .learned_common import check_hr_size, check_lr, psnr_per_image


class ResNetL2(TrainableMethod):
    """lr [B, C, 8, 8] float in [0, 1] -> sr [B, C, 32, 32] float in [0, 1], bicubic + learned residual."""

    name = "resnet_l2"

    def __init__(
        self,
        channels: int,
        widths: Sequence[int] = (32, 32, 32),
        blocks: int = 6,
        residual_scale: float = 1.0,
        hr_size: int = 32,
    ):
        """`hr_size`: output side (32; the fully convolutional net also maps 4x4 -> 16x16, for the corners task)."""
        super().__init__()
        self.hr_size = check_hr_size(hr_size, "ResNetL2")
        if channels not in (1, 3):
            raise ValueError(f"ResNetL2: channels must be 1 or 3, got {channels}")
        if residual_scale <= 0:
            raise ValueError(f"ResNetL2: residual_scale must be > 0, got {residual_scale}")
        self.channels = channels
        self.residual_scale = float(residual_scale)
        self.net = ConditioningNetwork(channels, channels, widths=widths, blocks=blocks)
        # Start as bicubic: tanh(0) = 0.
        torch.nn.init.zeros_(self.net.head.weight)
        torch.nn.init.zeros_(self.net.head.bias)

    def model_config(self) -> Dict[str, Any]:
        return {
            "channels": self.channels,
            "widths": list(self.net.config["widths"]),
            "blocks": self.net.config["blocks"],
            "residual_scale": self.residual_scale,
            **({"hr_size": self.hr_size} if self.hr_size != 32 else {}),  # absent at 32: older runs' configs match
        }

    # -- the model -------------------------------------------------------------------------------
    def _unclamped(self, lr: torch.Tensor, net: torch.nn.Module) -> torch.Tensor:
        """bicubic + residual_scale * tanh(net(lr)), float32 [B, C, 32, 32], not clamped."""
        residual = torch.tanh(net(lr).float())
        return upsample(lr.float(), 4) + self.residual_scale * residual

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """lr float [B, C, 8, 8] in [0, 1] -> sr float [B, C, 32, 32] in [0, 1] (in the module's current mode)."""
        check_lr(lr, self.channels, "ResNetL2", self.hr_size // 4)
        return self._unclamped(lr, self.net).clamp(0.0, 1.0)

    @torch.no_grad()
    def predict(self, lr: torch.Tensor) -> torch.Tensor:
        """lr float [B, C, 8, 8] in [0, 1] -> sr float [B, C, 32, 32] in [0, 1], eval mode."""
        with eval_mode(self):
            return self(lr)

    def preview(self, lr: torch.Tensor, generator=None) -> torch.Tensor:
        return self.predict(lr)

    # -- training --------------------------------------------------------------------------------
    def make_optimizers(self, train_cfg: Dict[str, Any]) -> Dict[str, torch.optim.Optimizer]:
        return {"model": build_optimizer(self.net.parameters(), train_cfg)}

    def training_step(
        self, batch: Dict[str, torch.Tensor], optimizers: Dict[str, torch.optim.Optimizer], ctx: StepContext
    ) -> Dict[str, float]:
        """MSE between bicubic + tanh residual (unclamped) and `hr_float`; logs `loss`."""
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        lr, target = batch["lr"], batch["hr_float"]
        net = ctx.ddp(self.net)
        with ctx.autocast():
            raw = net(lr)
        # The tanh, the residual sum and the loss in float32, outside bf16 autocast.
        out = upsample(lr.float(), 4) + self.residual_scale * torch.tanh(raw.float())
        loss = F.mse_loss(out, target.float())
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def validation_step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, float]:
        """`mse` and `psnr` (dB, mean of per-image values) of the clamped prediction against `hr_float`."""
        sr = self.predict(batch["lr"])
        hr = batch["hr_float"].float()
        mse = (sr - hr).pow(2).mean()
        return {"mse": mse.item(), "psnr": psnr_per_image(sr, hr).mean().item()}
