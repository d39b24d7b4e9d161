"""Samplers of the pixel-recursive model: naive (reference) and cached incremental.

Both draw sub-pixel i from softmax((A_i + B_i) / tau) (greedy: argmax), in the sub-pixel order (raster
over pixels, then channel 0, 1, 2), with A computed once per batch. All randomness is drawn up front
(`draw_uniforms`: one uniform per sub-pixel, consumed by inverse-CDF sampling), so the two samplers
consume a `torch.Generator` identically and return identical samples.

- `sample_naive`: one full pass of the prior over the whole 32x32 image per sub-pixel (3,072 passes for
  RGB). Slow; the reference.
- `sample_cached`: incremental, in the spirit of Ramachandran et al. 2017 ("Fast Generation for
  Convolutional Autoregressive Models"), for the gated PixelCNN's two stacks:
  * vertical stack: computed once per finished image row, on a (k//2+1)-row window per layer; its link
    into the horizontal stack becomes a per-row bias of every layer;
  * input convolution: the rows above are one convolution per row;
  * horizontal stack: per pixel, the taps left of the current pixel of all layers are one batched
    matrix product (they only read finished pixels); per sub-pixel, only the current-pixel taps, the
    gate, the 1x1 output and the head run on one-pixel matrices, and only the current colour's 256
    logits of the head are computed. The colour sub-pixels of a pixel share everything but that.
  Padding is the full model's: zeros in the normalised input space and in every stack, and the shifted
  vertical features' top row is zero (so row 0's link is the link's bias alone).
"""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

LEVELS = 256


def draw_uniforms(batch: int, channels: int, size: int, generator: Optional[torch.Generator], device) -> torch.Tensor:
    """All the randomness of one sampling call: uniforms in [0, 1), float32 [B, C, size, size], on `device`."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(batch, channels, size, size, generator=generator, device=gen_device)
    return u.to(device)


def draw(logits: torch.Tensor, u: torch.Tensor, temperature: float, greedy: bool) -> torch.Tensor:
    """One sub-pixel per batch element: logits [B, 256], u [B] in [0, 1) -> levels long [B].

    Inverse-CDF sampling from softmax(logits / temperature): the first level whose cumulative probability
    exceeds u (levels of zero probability are never drawn). Greedy: argmax (u unused).
    """
    if greedy:
        return logits.argmax(-1)
    cdf = torch.softmax(logits / temperature, -1).cumsum_(-1)
    return (cdf <= u.unsqueeze(-1) * cdf[:, -1:]).sum(-1).clamp_(max=LEVELS - 1)


def _level_table(device) -> torch.Tensor:
    # the prior's normalisation (x / 127.5 - 1), tabulated with the very same float32 operations
    return torch.arange(LEVELS, device=device).float() / 127.5 - 1.0


@torch.no_grad()
def sample_naive(model, a: torch.Tensor, u: torch.Tensor, temperature: float = 1.0, greedy: bool = False,
                 progress: bool = True, record: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Reference sampler: the full prior over the whole image once per sub-pixel.

    model: a PixelRecursiveSR (in eval mode); a: its conditioning logits `model.cond_logits(lr)`,
    [B, H, W, C, 256] (computed once per batch by the caller; H = W = 32, or a crop of it in tests: the
    prior is fully convolutional); u [B, C, H, W] uniforms. record: optional float [B, H, W, C, 256]
    receiving the logits each sub-pixel was drawn from. Returns uint8 levels [B, C, H, W].
    """
    b, h, w, c_n, _ = a.shape
    hr = torch.zeros(b, c_n, h, w, dtype=torch.uint8, device=a.device)
    with tqdm(total=h * w * c_n, desc="sampling (naive)", unit="sub-px", disable=not progress, leave=False) as bar:
        for r in range(h):
            for c in range(w):
                for g in range(c_n):
                    logits = a[:, r, c, g] + model.prior_logits(hr)[:, r, c, g]
                    if record is not None:
                        record[:, r, c, g] = logits
                    hr[:, g, r, c] = draw(logits, u[:, g, r, c], temperature, greedy).to(torch.uint8)
                bar.update(c_n)
    return hr


class _CachedPrior:
    """The prior's effective (masked) weights rearranged as matrices for one-pixel and one-row updates.

    Names: p = stack width, L = gated blocks, lh = k//2 (taps left of the current pixel in the
    horizontal kernel), l0 = input_kernel//2.
    """

    def __init__(self, prior):
        ic = prior.input_conv
        w0 = ic.weight.detach()  # [p, C, kh0, kw0], masked
        self.p, self.colours, self.kh0, _ = w0.shape
        self.l0 = ic.left
        kh0, l0, p, c_n = self.kh0, self.l0, self.p, self.colours
        self.pad0 = ic.padding  # (left, right, top, bottom)
        self.w0_above = w0[:, :, : kh0 - 1].contiguous()  # rows above the current one
        self.b0 = ic.bias.detach()
        self.w0_left = w0[:, :, kh0 - 1, :l0].permute(2, 1, 0).reshape(l0 * c_n, p).contiguous()  # [(col, chan), p]
        self.w0_centre = w0[:, :, kh0 - 1, l0].t().contiguous()  # [C, p], channel mask A
        blocks = prior.blocks
        self.L = len(blocks)
        first = blocks[0]
        self.kh_v = first.vconv.kernel[0]
        self.pad_v = first.vconv.padding[:2]  # (left, right)
        self.lh = first.hconv.left
        lh = self.lh
        self.w_v = [blk.vconv.weight.detach() for blk in blocks]
        self.b_v = [blk.vconv.bias.detach() for blk in blocks]
        self.w_link = torch.stack([blk.link.weight.detach()[:, :, 0, 0].t() for blk in blocks])  # [L, 2p, 2p]
        self.b_link = torch.stack([blk.link.bias.detach() for blk in blocks])  # [L, 2p]
        wh = [blk.hconv.weight.detach() for blk in blocks]  # [2p, p, 1, lh+1], masked
        self.w_hleft = torch.stack([w[:, :, 0, :lh].permute(2, 1, 0).reshape(lh * p, 2 * p) for w in wh])  # [L, lh*p, 2p]
        self.w_hcentre = [w[:, :, 0, lh].t().contiguous() for w in wh]  # [p, 2p], channel mask B
        self.b_h = torch.stack([blk.hconv.bias.detach() for blk in blocks])  # [L, 2p]
        self.w_out = [blk.hout.weight.detach()[:, :, 0, 0].t().contiguous() for blk in blocks]  # [p, p]
        self.b_out = [blk.hout.bias.detach() for blk in blocks]
        self.w1 = prior.head1.weight.detach()[:, :, 0, 0].t().contiguous()  # [p, head]
        self.b1 = prior.head1.bias.detach()
        w2 = prior.head2.weight.detach()[:, :, 0, 0].t()  # [head, C*256]
        b2 = prior.head2.bias.detach()
        # only colour g's 256 logits are needed when drawing colour g
        self.w2 = [w2[:, g * LEVELS : (g + 1) * LEVELS].contiguous() for g in range(c_n)]
        self.b2 = [b2[g * LEVELS : (g + 1) * LEVELS].contiguous() for g in range(c_n)]


def _gate_rows(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


@torch.no_grad()
def sample_cached(model, a: torch.Tensor, u: torch.Tensor, temperature: float = 1.0, greedy: bool = False,
                  progress: bool = True, record: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Incremental sampler, same arguments and result as `sample_naive` (identical samples for the same u)."""
    bsz, height, width, c_n, _ = a.shape
    dev, dt = a.device, a.dtype
    P = _CachedPrior(model.prior)
    p, L, lh, l0, kh0 = P.p, P.L, P.lh, P.l0, P.kh0
    table = _level_table(dev)
    hr = torch.zeros(bsz, c_n, height, width, dtype=torch.uint8, device=dev)

    # row state; zero initialisation = the full model's zero padding
    xwin = torch.zeros(bsz, c_n, kh0 - 1, width + P.pad0[0] + P.pad0[1], device=dev, dtype=dt)  # rows above, x normalised
    xrow = torch.zeros(bsz, width + l0, c_n, device=dev, dtype=dt)  # current row, l0 zero columns on the left
    vwin = [torch.zeros(bsz, p, P.kh_v, width + P.pad_v[0] + P.pad_v[1], device=dev, dtype=dt) for _ in range(L)]
    hbuf = torch.zeros(L, bsz, width + lh, p, device=dev, dtype=dt)  # inputs h_0..h_{L-1} of the current row
    # row 0: the shifted vertical features are zero, so each layer's row bias is its two biases
    rowbias = (P.b_h + P.b_link)[:, None, None, :].expand(L, bsz, width, 2 * p).contiguous()
    above = P.b0.expand(bsz, width, p).contiguous()

    with tqdm(total=height * width * c_n, desc="sampling (cached)", unit="sub-px", disable=not progress, leave=False) as bar:
        for r in range(height):
            if r > 0:
                rowbias, above = _next_row(P, xrow, xwin, vwin, hbuf, bsz, width)
            xrow.zero_()
            for c in range(width):
                left0 = torch.addmm(above[:, c], xrow[:, c : c + l0].reshape(bsz, l0 * c_n), P.w0_left)
                lefts = torch.baddbmm(rowbias[:, :, c], hbuf[:, :, c : c + lh].reshape(L, bsz, lh * p), P.w_hleft).unbind(0)
                xc = xrow[:, c + l0]
                for g in range(c_n):
                    h = torch.addmm(left0, xc, P.w0_centre)
                    hs: List[torch.Tensor] = [h]
                    for l in range(L):
                        pre = torch.addmm(lefts[l], h, P.w_hcentre[l])
                        h = h + torch.addmm(P.b_out[l], _gate_rows(pre), P.w_out[l])
                        hs.append(h)
                    z = torch.relu(torch.addmm(P.b1, h, P.w1))
                    logits = torch.addmm(P.b2[g], z, P.w2[g]) + a[:, r, c, g]
                    if record is not None:
                        record[:, r, c, g] = logits
                    level = draw(logits, u[:, g, r, c], temperature, greedy)
                    hr[:, g, r, c] = level
                    xc[:, g] = table[level]
                hbuf[:, :, c + lh] = torch.stack(hs[:L])
                bar.update(c_n)
    return hr


def _next_row(P: _CachedPrior, xrow, xwin, vwin, hbuf, bsz: int, width: int):
    """After a row is finished: push it into the windows, run the vertical stack on it, and return the
    next row's per-layer horizontal bias [L, B, W, 2p] and input-convolution term [B, W, p]."""
    p, L, lh, l0 = P.p, P.L, P.lh, P.l0
    if P.kh0 > 1:
        new = xrow[:, l0:].transpose(1, 2)  # [B, C, W]
        xwin[:, :, :-1] = xwin[:, :, 1:].clone()
        xwin[:, :, -1, P.pad0[0] : P.pad0[0] + width] = new
        above = F.conv2d(xwin, P.w0_above, P.b0)[:, :, 0].transpose(1, 2)  # [B, W, p]
    else:
        above = P.b0.expand(bsz, width, p)
    v = hbuf[0, :, lh:].transpose(1, 2)  # h_0 of the finished row = the vertical stack's input, [B, p, W]
    pres = []
    for l in range(L):
        win = vwin[l]
        win[:, :, :-1] = win[:, :, 1:].clone()
        win[:, :, -1, P.pad_v[0] : P.pad_v[0] + width] = v
        pre = F.conv2d(win, P.w_v[l], P.b_v[l])[:, :, 0]  # [B, 2p, W]
        pres.append(pre)
        v = _gate_rows(pre)
    pres = torch.stack(pres).transpose(2, 3).reshape(L, bsz * width, 2 * p)
    rowbias = torch.baddbmm((P.b_h + P.b_link)[:, None, :], pres, P.w_link).view(L, bsz, width, 2 * p)
    return rowbias, above
