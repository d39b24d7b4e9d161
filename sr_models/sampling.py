"""Samplers of the pixel-recursive model: naive (reference) and cached incremental.

Both draw sub-pixel i from softmax((A_i + B_i) / tau) (greedy: argmax), in the sub-pixel order (raster
over pixels, then channel 0, 1, 2), with A computed once per batch. All randomness is drawn up front
(`draw_uniforms`: one uniform per sub-pixel, consumed by inverse-CDF sampling), so the two samplers
consume a `torch.Generator` identically.

Exact decisions. The two samplers compute the same logits in different float32 orders (they differ by
up to ~1e-6), so a uniform lying that close to a CDF boundary (or a greedy near-tie) could pick
neighbouring levels. Each sampler therefore checks every draw against an error margin (`fragile`): a draw
whose uniform lies within the margin of a boundary of its CDF (greedy: top-two gap within 2 *
LOGIT_TOL) is decided instead by `Canonical`, one float64 computation from that image's inputs alone
(its sub-pixels drawn so far, A) shared by both samplers. A draw outside the margin agrees with the
canonical decision (the margin bounds |path CDF - canonical CDF|), so every sub-pixel equals the
canonical decision whichever path computes it; by induction over the sub-pixel order both paths see the
same earlier sub-pixels, so the canonical inputs are the same. See `LOGIT_TOL` for how the margin was
derived.

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

import copy
import math
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

LEVELS = 256

# Error margin of a draw (module doc, "Exact decisions"). LOGIT_TOL bounds |logit of a sampler - canonical
# float64 logit| per sub-pixel: 4x MEASURED_LOGIT_ERR, the largest difference seen, 8e-7 (issue 15,
# cached vs naive); the cached sampler vs the float64 canonical logits measured at most 1.3e-7 (smoke RGB,
# batch 64, tau 1.0/0.9/0.8/greedy, logits up to 0.8). With logits off by at most d = LOGIT_TOL / tau,
# each probability is off by a factor in [e^-2d, e^2d], so a CDF value c by at most c (1 - c) expm1(2 d).
# CDF_ROUND adds float32's rounding of softmax + cumsum + the threshold u * total: measured max |float32
# CDF - float64 CDF| 1.1e-7 on the same runs (logit error included), taken ~9x. Both are measured bounds
# with a safety factor, not proofs (a proof for 256-term float32 sums gives ~1.6e-5, i.e. ~8x more
# canonical recomputations). Larger trained logits scale the error: re-measure with
# tests/test_sampling.py::test_measured_error_within_margins when the model changes.
MEASURED_LOGIT_ERR = 8.0e-7
LOGIT_TOL = 4 * MEASURED_LOGIT_ERR
CDF_ROUND = 1.0e-6


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


def draw_checked(logits: torch.Tensor, u: torch.Tensor, temperature: float, greedy: bool):
    """`draw` plus which draws are fragile: (levels long [B], fragile bool [B]).

    Fragile: the uniform lies within the error margin of a boundary of the level it picked (lower or
    upper CDF value, relative to the total; margin CDF_ROUND + c (1 - c) expm1(2 LOGIT_TOL / tau)), or,
    greedy, the top two logits are within 2 * LOGIT_TOL (ties included). Any logits within LOGIT_TOL of
    these pick the same level when the draw is not fragile.
    """
    if greedy:
        top = logits.topk(2, -1).values
        return logits.argmax(-1), (top[:, 0] - top[:, 1]) <= 2 * LOGIT_TOL
    cdf = torch.softmax(logits / temperature, -1).cumsum_(-1)
    total = cdf[:, -1:]
    levels = (cdf <= u.unsqueeze(-1) * total).sum(-1).clamp_(max=LEVELS - 1)
    idx = levels.unsqueeze(-1)
    hi = (cdf.gather(1, idx) / total).squeeze(1)
    lo = torch.where(levels > 0, (cdf.gather(1, (idx - 1).clamp_(min=0)) / total).squeeze(1), torch.zeros_like(hi))
    spread = min(math.expm1(min(2 * LOGIT_TOL / temperature, 60.0)), 1e26)  # bounded: no inf * 0
    fragile = (u - lo <= CDF_ROUND + lo * (1 - lo) * spread) | (hi - u <= CDF_ROUND + hi * (1 - hi) * spread)
    return levels, fragile


class Canonical:
    """The one shared decision of fragile draws: float64 logits of one image from its own inputs alone.

    logits(i, hr, r, c, g) -> float64 [256]: A + B at sub-pixel (r, c, g) of image i, B by a full float64
    pass of the prior over rows 0..r of hr[i] (uint8 [C, H, W]; only sub-pixels before (r, c, g) matter), A from
    float64 `lr[i]` through the conditioning network when `lr` is given (then independent of how
    images are batched), else `a[i]` upcast. Both samplers get the same object, so equal inputs give
    bit-equal logits. Models are copied to float64 on first use (most calls never need them).
    """

    def __init__(self, model, a: torch.Tensor, lr: Optional[torch.Tensor] = None):
        self.model, self.a, self.lr = model, a, lr
        self._prior = self._cond = None
        self._a64: Dict[int, torch.Tensor] = {}
        self.calls = 0

    def _a(self, i: int) -> torch.Tensor:
        if i not in self._a64:
            if self.lr is None:
                self._a64[i] = self.a[i].double()
            else:
                if self._cond is None:
                    self._cond = copy.deepcopy(self.model.cond).double().eval()
                out = self._cond(self.lr[i : i + 1].double())[0]  # [C*256, H, W]
                self._a64[i] = out.permute(1, 2, 0).reshape(out.shape[1], out.shape[2], -1, LEVELS)
        return self._a64[i]

    def logits(self, i: int, hr: torch.Tensor, r: int, c: int, g: int) -> torch.Tensor:
        if self._prior is None:
            self._prior = copy.deepcopy(self.model.prior).double().eval()
        self.calls += 1
        # rows 0..r only: the prior is causal, and the crop is as deterministic a function of the prefix
        b = self._prior(hr[i : i + 1, :, : r + 1].double() / 127.5 - 1.0)[0, g * LEVELS : (g + 1) * LEVELS, r, c]
        return self._a(i)[r, c, g] + b

    def resolve(self, levels, fragile, hr, r, c, g, u, temperature, greedy) -> torch.Tensor:
        """Replace the fragile entries of `levels` [B] by the canonical decision (in place; returns it)."""
        for i in fragile.nonzero().flatten().tolist():
            z = self.logits(i, hr, r, c, g).unsqueeze(0)
            levels[i] = draw(z, u[i : i + 1].double(), temperature, greedy)[0]
        return levels


def _level_table(device) -> torch.Tensor:
    # the prior's normalisation (x / 127.5 - 1), tabulated with the very same float32 operations
    return torch.arange(LEVELS, device=device).float() / 127.5 - 1.0


@torch.no_grad()
def sample_naive(
    model,
    a: torch.Tensor,
    u: torch.Tensor,
    temperature: float = 1.0,
    greedy: bool = False,
    progress: bool = True,
    record: Optional[torch.Tensor] = None,
    canonical: Optional[Canonical] = None,
) -> torch.Tensor:
    """Reference sampler: the full prior over the whole image once per sub-pixel.

    model: a PixelRecursiveSR (in eval mode); a: its conditioning logits `model.cond_logits(lr)`,
    [B, H, W, C, 256] (computed once per batch by the caller; H = W = 32, or a crop of it in tests: the
    prior is fully convolutional); u [B, C, H, W] uniforms. record: optional float [B, H, W, C, 256]
    receiving this sampler's float32 logits of each sub-pixel. canonical: decides the fragile draws
    (default `Canonical(model, a)`). Returns uint8 levels [B, C, H, W].
    """
    b, h, w, c_n, _ = a.shape
    canonical = canonical if canonical is not None else Canonical(model, a)
    hr = torch.zeros(b, c_n, h, w, dtype=torch.uint8, device=a.device)
    with tqdm(total=h * w * c_n, desc="sampling (naive)", unit="sub-px", disable=not progress, leave=False) as bar:
        for r in range(h):
            for c in range(w):
                for g in range(c_n):
                    logits = a[:, r, c, g] + model.prior_logits(hr)[:, r, c, g]
                    if record is not None:
                        record[:, r, c, g] = logits
                    level, fragile = draw_checked(logits, u[:, g, r, c], temperature, greedy)
                    if fragile.any():
                        canonical.resolve(level, fragile, hr, r, c, g, u[:, g, r, c], temperature, greedy)
                    hr[:, g, r, c] = level.to(torch.uint8)
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
        self.w_hleft = torch.stack(
            [w[:, :, 0, :lh].permute(2, 1, 0).reshape(lh * p, 2 * p) for w in wh]
        )  # [L, lh*p, 2p]
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
def sample_cached(
    model,
    a: torch.Tensor,
    u: torch.Tensor,
    temperature: float = 1.0,
    greedy: bool = False,
    progress: bool = True,
    record: Optional[torch.Tensor] = None,
    canonical: Optional[Canonical] = None,
) -> torch.Tensor:
    """Incremental sampler, same arguments and result as `sample_naive` (identical samples for the same u)."""
    bsz, height, width, c_n, _ = a.shape
    canonical = canonical if canonical is not None else Canonical(model, a)
    dev, dt = a.device, a.dtype
    P = _CachedPrior(model.prior)
    p, L, lh, l0, kh0 = P.p, P.L, P.lh, P.l0, P.kh0
    table = _level_table(dev)
    hr = torch.zeros(bsz, c_n, height, width, dtype=torch.uint8, device=dev)

    # row state; zero initialisation = the full model's zero padding
    xwin = torch.zeros(
        bsz, c_n, kh0 - 1, width + P.pad0[0] + P.pad0[1], device=dev, dtype=dt
    )  # rows above, x normalised
    xrow = torch.zeros(bsz, width + l0, c_n, device=dev, dtype=dt)  # current row, l0 zero columns on the left
    vwin = [torch.zeros(bsz, p, P.kh_v, width + P.pad_v[0] + P.pad_v[1], device=dev, dtype=dt) for _ in range(L)]
    hbuf = torch.zeros(L, bsz, width + lh, p, device=dev, dtype=dt)  # inputs h_0..h_{L-1} of the current row
    # row 0: the shifted vertical features are zero, so each layer's row bias is its two biases
    rowbias = (P.b_h + P.b_link)[:, None, None, :].expand(L, bsz, width, 2 * p).contiguous()
    above = P.b0.expand(bsz, width, p).contiguous()

    with tqdm(
        total=height * width * c_n, desc="sampling (cached)", unit="sub-px", disable=not progress, leave=False
    ) as bar:
        for r in range(height):
            if r > 0:
                rowbias, above = _next_row(P, xrow, xwin, vwin, hbuf, bsz, width)
            xrow.zero_()
            for c in range(width):
                left0 = torch.addmm(above[:, c], xrow[:, c : c + l0].reshape(bsz, l0 * c_n), P.w0_left)
                lefts = torch.baddbmm(
                    rowbias[:, :, c], hbuf[:, :, c : c + lh].reshape(L, bsz, lh * p), P.w_hleft
                ).unbind(0)
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
                    level, fragile = draw_checked(logits, u[:, g, r, c], temperature, greedy)
                    if fragile.any():
                        canonical.resolve(level, fragile, hr, r, c, g, u[:, g, r, c], temperature, greedy)
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
