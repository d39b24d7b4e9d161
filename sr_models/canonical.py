"""The one shared decision of fragile draws (`sr_models.sampling`, "Exact decisions"): float64 logits of one
image computed from that image's own inputs alone, so every sampler, batch and rank gets bit-equal values.

`Canonical.logits(i, hr, r, c, g)` -> float64 [256] = A + B at sub-pixel (r, c, g) of image i:
- A from float64 `lr[i]` through the conditioning network when `lr` is given (independent of how images
  are batched): its trunk once per image, its 1x1 head at pixel (r, c) for colour g only; else `a[i]` upcast.
- B by the float64 prior, in three parts that together are the full model's value at (r, c, g):
  the vertical stack over rows 0..r-1 only (its shifted output is all row r sees of the rows above; its
  last row's link term is kept per image, so more draws of the same row reuse it), the input convolution
  and horizontal stack on row r alone (the causal masks make later sub-pixels of the row irrelevant, and
  they are zeros in `hr` anyway), and the head at pixel (r, c) for colour g only.
Every part runs with the same shapes whenever it runs for (i, r), so the result is a deterministic function
of the image's prefix, whichever sampler asks and whatever it asked before.

`full_float64_logits(model, hr, lr)` is the same value for every sub-pixel at once (one full float64 pass):
the reference that tests and `bench/sampling_error.py` hold the samplers and their margins to.
"""

from __future__ import annotations

import copy
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .draws import LEVELS, draw
from .layers import gate


class Canonical:
    """Float64 logits of single images from their own prefix; `resolve` decides a step's fragile draws.

    model: a PixelRecursiveSR; a: its float32 conditioning logits [B, H, W, C, 256] (used when lr is None);
    lr: optional float [B, C, h, w] in [0, 1]. The float64 copies of the networks are made on first use
    (most sampling calls never need them). `calls` counts decisions, `rows_run` vertical-stack passes.
    """

    def __init__(self, model, a: torch.Tensor, lr: Optional[torch.Tensor] = None):
        self.model, self.a, self.lr = model, a, lr
        self._prior = self._cond = None
        self._a64: Dict[int, torch.Tensor] = {}  # image -> the conditioning trunk's float64 features
        self._links: Dict[int, Tuple[int, List[torch.Tensor]]] = {}  # image -> (row r, link terms of row r)
        self.calls = 0
        self.rows_run = 0

    def _a(self, i: int, r: int, c: int, g: int) -> torch.Tensor:
        """A of image i at sub-pixel (r, c, g), float64 [256]; from lr: the conditioning trunk once per image,
        its 1x1 head at the one pixel and colour asked for."""
        if self.lr is None:
            return self.a[i, r, c, g].double()
        if self._cond is None:
            self._cond = copy.deepcopy(self.model.cond).double().eval()
            self._head = self._cond.head
            self._cond.head = torch.nn.Identity()  # the copy's forward now ends at the trunk's features
        if i not in self._a64:
            self._a64[i] = self._cond(self.lr[i : i + 1].double())[0]  # [width, H, W]
        rows = slice(g * LEVELS, (g + 1) * LEVELS)  # head output channel j = colour j // 256, level j % 256
        return F.linear(self._a64[i][:, r, c], self._head.weight[rows, :, 0, 0], self._head.bias[rows])

    def _row_links(self, i: int, hr: torch.Tensor, r: int) -> List[torch.Tensor]:
        """Per gated block, link(shift_down(v_pre)) at row r: [1, 2p, 1, W] float64 (the link's bias at r = 0)."""
        cached = self._links.get(i)
        if cached is not None and cached[0] == r:
            return cached[1]
        prior, width = self._prior, hr.shape[-1]
        if r == 0:  # the shifted vertical features' top row is zero: link(0) = its bias
            links = [blk.link.bias.view(1, -1, 1, 1).expand(1, -1, 1, width) for blk in prior.blocks]
        else:
            self.rows_run += 1
            v = prior.input_conv(hr[i : i + 1, :, :r].double() / 127.5 - 1.0)  # rows 0..r-1
            links = []
            for blk in prior.blocks:
                v_pre = blk.vconv(v)
                links.append(blk.link(v_pre[:, :, r - 1 :]))
                v = gate(v_pre)
        self._links[i] = (r, links)
        return links

    def logits(self, i: int, hr: torch.Tensor, r: int, c: int, g: int) -> torch.Tensor:
        """float64 [256]: A + B of image i at sub-pixel (r, c, g); hr uint8 [B, C, H, W] (only the
        sub-pixels before (r, c, g) are read)."""
        if self._prior is None:
            self._prior = copy.deepcopy(self.model.prior).double().eval()
        self.calls += 1
        prior = self._prior
        links = self._row_links(i, hr, r)
        top = max(0, r - prior.input_conv.kernel[0] + 1)  # the input convolution's window of rows for row r
        h = prior.input_conv(hr[i : i + 1, :, top : r + 1].double() / 127.5 - 1.0)[:, :, -1:]  # [1, p, 1, W]
        for blk, link in zip(prior.blocks, links):
            h = h + blk.hout(gate(blk.hconv(h) + link))
        w1, w2 = prior.head1.weight[:, :, 0, 0], prior.head2.weight[g * LEVELS : (g + 1) * LEVELS, :, 0, 0]
        z = F.relu(F.linear(h[0, :, 0, c], w1, prior.head1.bias))
        return self._a(i, r, c, g) + F.linear(z, w2, prior.head2.bias[g * LEVELS : (g + 1) * LEVELS])

    def resolve(self, levels, fragile, hr, r, c, g, u, temperature, greedy) -> torch.Tensor:
        """Replace the fragile entries of `levels` [B] by the canonical decision (in place; returns it)."""
        for i in fragile.nonzero().flatten().tolist():
            z = self.logits(i, hr, r, c, g).unsqueeze(0)
            levels[i] = draw(z, u[i : i + 1].double(), temperature, greedy)[0]
        return levels


def full_float64_logits(model, hr: torch.Tensor, lr: Optional[torch.Tensor] = None):
    """Float64 logits of whole images in one pass of a float64 copy of `model` (a PixelRecursiveSR): hr uint8
    [B, C, H, W], lr float [B, C, h, w] in [0, 1] or None -> (A float64 [B, H, W, C, 256] or None when lr is
    None, B float64 [B, H, W, C, 256]). B at a sub-pixel depends only on the sub-pixels before it (the masks)."""
    m64 = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        b = m64._class_last(m64.prior(hr.double() / 127.5 - 1.0))  # normalise_levels, kept in float64
        a = None if lr is None else m64.cond_logits(lr.double())
    return a, b
