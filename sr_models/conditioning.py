"""Conditioning network A(x) of the paper (Section 4), shared by the pixel-recursive model, ResNet-L2 and
the per-pixel cross-entropy baseline.

8x8 input -> 1x1 conv -> ResNet blocks at 8x8 -> stride-2 transposed conv + ReLU -> blocks at 16x16 ->
transposed conv + ReLU -> blocks at 32x32 -> 1x1 conv to `out_channels` (C*256 logits for the likelihood
models, C for ResNet-L2).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ResBlock(nn.Module):
    """SRResNet block: x + BN(conv3x3(ReLU(BN(conv3x3(x))))); keeps [B, width, H, W]."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConditioningNetwork(nn.Module):
    """A(x): [B, in_channels, 8, 8] float in [0, 1] -> [B, out_channels, 32, 32] (unbounded features/logits).

    `widths` are the channel widths at 8x8, 16x16 and 32x32; `blocks` ResNet blocks at each of the three
    resolutions (the paper's profile: 3 x 6 blocks of 32 channels).
    """

    def __init__(self, in_channels: int, out_channels: int, widths: Sequence[int] = (32, 32, 32), blocks: int = 6):
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"widths must give 3 stage widths (8x8, 16x16, 32x32), got {list(widths)}")
        w8, w16, w32 = widths
        self.config = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "widths": list(widths),
            "blocks": blocks,
        }
        self.stem = nn.Conv2d(in_channels, w8, 1)
        self.stage8 = nn.Sequential(*[ResBlock(w8) for _ in range(blocks)])
        # kernel 3, stride 2, padding 1, output_padding 1: exactly doubles the size.
        self.up16 = nn.Sequential(
            nn.ConvTranspose2d(w8, w16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(inplace=True)
        )
        self.stage16 = nn.Sequential(*[ResBlock(w16) for _ in range(blocks)])
        self.up32 = nn.Sequential(
            nn.ConvTranspose2d(w16, w32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(inplace=True)
        )
        self.stage32 = nn.Sequential(*[ResBlock(w32) for _ in range(blocks)])
        self.head = nn.Conv2d(w32, out_channels, 1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h = self.stem(lr * 2.0 - 1.0)  # centre the [0, 1] input
        h = self.stage8(h)
        h = self.stage16(self.up16(h))
        h = self.stage32(self.up32(h))
        return self.head(h)
