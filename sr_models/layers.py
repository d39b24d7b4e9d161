"""Building blocks of the gated PixelCNN prior B(y<i) (van den Oord et al. 2016, "Conditional Image
Generation with PixelCNN Decoders"), with the colour masks of the sub-pixel order.

Sub-pixel order: raster over pixels, then channel 0, 1, 2 inside a pixel. Every feature map of the
horizontal path splits its channels into C contiguous *colour groups*; a feature of group g at pixel
(r, c) may depend on the earlier pixels and on the input channels < g of pixel (r, c) only. Masks:

- type A (the input convolution): at the current pixel, output group g sees input groups < g;
- type B (every later masked layer): output group g sees input groups <= g.

Only the current-pixel tap of a horizontal kernel needs the channel mask; taps to its left are free.
The vertical stack has no mask at all: its output at row r sees rows <= r, and it is shifted down one row
(`shift_down`) before it joins the horizontal stack, so the horizontal stack only sees rows < r through it.
That split is what removes the blind spot of a stack of masked convolutions.

Convolutions here are *causal*: they pad top/left/right (never bottom) with zeros, so an output keeps
the input's size and its kernel ends at the output position (the "anchor": last row, column `left`).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def colour_groups(n: int, colours: int) -> torch.Tensor:
    """Colour group (0..colours-1) of each of `n` channels: contiguous blocks, `i * colours // n` -> long [n]."""
    if n < colours:
        raise ValueError(f"a masked layer needs at least one channel per colour: {n} channels < {colours} colours")
    return torch.arange(n) * colours // n


def gated_groups(width: int, colours: int) -> torch.Tensor:
    """Groups of the 2*width pre-activations of a gate: the tanh half and the sigmoid half carry the same
    groups channel for channel, so the product `tanh(a_i) * sigmoid(b_i)` stays in group(i)."""
    g = colour_groups(width, colours)
    return torch.cat([g, g])


def channel_mask(out_groups: torch.Tensor, in_groups: torch.Tensor, mask_type: str) -> torch.Tensor:
    """[out, in] float mask of the current-pixel tap: type 'A' lets group g see groups < g, 'B' groups <= g."""
    if mask_type == "A":
        return (out_groups[:, None] > in_groups[None, :]).float()
    if mask_type == "B":
        return (out_groups[:, None] >= in_groups[None, :]).float()
    raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")


def gate(x: torch.Tensor) -> torch.Tensor:
    """[B, 2n, ...] -> [B, n, ...]: tanh(first half) * sigmoid(second half)."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """[B, n, H, W] -> [B, n, H, W] moved down one row; the new top row is zero (row r now holds row r-1)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, : x.shape[2]]


class CausalConv2d(nn.Module):
    """Convolution whose `kh x kw` kernel ends at the output pixel: rows r-kh+1..r, columns c-left..c+kw-1-left.

    Zero padding (top kh-1, left `left`, right kw-1-left, bottom 0) keeps [B, in, H, W] -> [B, out, H, W].
    With `mask_type` ('A' or 'B') the kernel is masked for the sub-pixel order: in the last row, taps right
    of the anchor column `left` are zero and the anchor tap is the channel mask between `in_groups` and
    `out_groups`; rows above are free. Without `mask_type` the kernel is unmasked (vertical stack, links).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Tuple[int, int],
        left: int,
        mask_type: Optional[str] = None,
        in_groups: Optional[torch.Tensor] = None,
        out_groups: Optional[torch.Tensor] = None,
    ):
        super().__init__()
        kh, kw = kernel
        if not 0 <= left < kw:
            raise ValueError(f"anchor column {left} outside a kernel {kw} wide")
        self.kernel = (kh, kw)
        self.left = left
        self.padding = (left, kw - 1 - left, kh - 1, 0)  # F.pad order: left, right, top, bottom
        self.conv = nn.Conv2d(in_channels, out_channels, kernel)
        self.mask_type = mask_type
        if mask_type is None:
            self.mask = None
        else:
            mask = torch.ones(out_channels, in_channels, kh, kw)
            mask[:, :, kh - 1, left + 1 :] = 0.0
            mask[:, :, kh - 1, left] = channel_mask(out_groups, in_groups, mask_type)
            self.register_buffer("mask", mask, persistent=False)

    @property
    def weight(self) -> torch.Tensor:
        """The effective (masked) kernel [out, in, kh, kw]."""
        return self.conv.weight if self.mask is None else self.conv.weight * self.mask

    @property
    def bias(self) -> torch.Tensor:
        return self.conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding != (0, 0, 0, 0):
            x = F.pad(x, self.padding)
        return F.conv2d(x, self.weight, self.bias)


def masked_1x1(in_groups: torch.Tensor, out_groups: torch.Tensor, mask_type: str = "B") -> CausalConv2d:
    """1x1 convolution masked between colour groups (type B: group g sees groups <= g)."""
    return CausalConv2d(len(in_groups), len(out_groups), (1, 1), 0, mask_type, in_groups, out_groups)


class GatedBlock(nn.Module):
    """One gated PixelCNN layer on the pair (v, h) of stacks, both [B, width, H, W].

    vertical:   v_pre = conv_{(k//2+1) x k}(v) (rows r-k//2..r, unmasked);  v' = gate(v_pre)
    horizontal: h_pre = conv_{1 x (k//2+1)}(h) (columns c-k//2..c, type B at c) + link(shift_down(v_pre))
                h'    = h + out_{1x1, type B}(gate(h_pre))            (residual)
    The link is an unmasked 1x1 convolution: after the shift it carries rows < r only.
    `dropout` > 0 (training mode only): dropout on gate(h_pre), the residual branch, before `out`, as
    PixelCNN++ drops inside its gated residual blocks. It acts on each feature alone, so the masks' order holds.
    """

    def __init__(self, width: int, kernel: int, colours: int, dropout: float = 0.0):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"prior kernel size must be odd and positive, got {kernel}")
        half = kernel // 2
        groups = colour_groups(width, colours)
        ggroups = gated_groups(width, colours)
        self.vconv = CausalConv2d(width, 2 * width, (half + 1, kernel), half)
        self.link = nn.Conv2d(2 * width, 2 * width, 1)
        self.hconv = CausalConv2d(width, 2 * width, (1, half + 1), half, "B", groups, ggroups)
        self.hout = masked_1x1(groups, groups, "B")
        # -- dropout (off by default: Identity, so no random numbers are drawn and nothing changes) --
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"prior dropout must be in [0, 1), got {dropout}")
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        v_pre = self.vconv(v)
        h_pre = self.hconv(h) + self.link(shift_down(v_pre))
        return gate(v_pre), h + self.hout(self.drop(gate(h_pre)))


class GatedPixelCNN(nn.Module):
    """Prior B(y<i): x [B, C, H, W] float (uint8 levels normalised to [-1, 1]) -> logits [B, C*256, H, W].

    7x7 (`input_kernel`) mask-A convolution to `width` channels, feeding both stacks; `layers` gated
    blocks with `kernel` x `kernel` receptive steps; head: ReLU(1x1 type B to `head_channels`), then 1x1
    type B to C*256. Output channel j holds colour j // 256, level j % 256 (layout [C, 256]).
    `dropout`: the gated blocks' dropout rate (training mode only; 0 = none).
    """

    def __init__(
        self,
        colours: int,
        width: int = 32,
        layers: int = 20,
        kernel: int = 5,
        input_kernel: int = 7,
        head_channels: int = 1024,
        dropout: float = 0.0,
    ):
        super().__init__()
        if input_kernel < 1 or input_kernel % 2 == 0:
            raise ValueError(f"input_kernel must be odd and positive, got {input_kernel}")
        self.colours = colours
        groups = colour_groups(width, colours)
        ihalf = input_kernel // 2
        self.input_conv = CausalConv2d(
            colours, width, (ihalf + 1, input_kernel), ihalf, "A", torch.arange(colours), groups
        )
        self.blocks = nn.ModuleList([GatedBlock(width, kernel, colours, dropout) for _ in range(layers)])
        head_groups = colour_groups(head_channels, colours)
        self.head1 = masked_1x1(groups, head_groups, "B")
        self.head2 = masked_1x1(head_groups, torch.arange(colours).repeat_interleave(256), "B")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W] normalised -> head input h_L [B, width, H, W] (the horizontal stack's output)."""
        h = self.input_conv(x)
        v = h
        for block in self.blocks:
            v, h = block(v, h)
        return h

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """h_L [B, width, H, W] -> logits [B, C*256, H, W] (in channels_last memory when h is)."""
        return self.head2(F.relu(self.head1(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
