"""Samplers of the pixel-recursive model: naive (reference) and cached incremental.

Both draw sub-pixel i from softmax((A_i + B_i) / tau) (greedy: argmax), in the sub-pixel order (raster
over pixels, then channel 0, 1, 2), with A computed once per batch. All randomness is drawn up front
(`draw_uniforms`: one uniform per sub-pixel, consumed by inverse-CDF sampling), so the two samplers
consume a `torch.Generator` identically.

Exact decisions. The two samplers compute the same logits in different float32 orders (they differ by up
to ~6e-7 of max|A| + max|B|), so a uniform lying that close to a CDF boundary (or a greedy near-tie) could
pick neighbouring levels. Each sampler therefore checks every draw against an error margin
(`sr_models.draws.draw_checked`, margins derived and measured there): a fragile draw is decided instead
by `Canonical` (`sr_models.canonical`), one float64 computation from that image's inputs alone (its
sub-pixels drawn so far, A) shared by both samplers. A draw outside the margin agrees with the canonical
decision, so every sub-pixel equals the canonical decision whichever path computes it; by induction over
the sub-pixel order both paths see the same earlier sub-pixels, so the canonical inputs are the same, and
an image's sample depends neither on its batch nor on its rank.

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
    logits of the head are computed, from the head channels that colour reads (mask B). The colour
    sub-pixels of a pixel share everything but that. The 1x1 outputs' biases are folded out of the
    per-sub-pixel loop (`_CachedPrior`), and the gate's halves are two products (no split): at batch 1
    the loop's cost is the number of operations, not arithmetic, so CPU batches <= NUMPY_BATCH run these
    per-pixel and per-sub-pixel steps on NumPy views (`_SmallBatchPixels`), whose calls cost about half.
  Padding is the full model's: zeros in the normalised input space and in every stack, and the shifted
  vertical features' top row is zero (so row 0's link is the link's bias alone).

Both samplers run under `float32_exact` (no TF32 on CUDA): the margins assume float32 rounding.
"""

from __future__ import annotations

import contextlib
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .canonical import Canonical
from .draws import LEVELS, NUMPY_BATCH, draw, draw_checked, draw_exact, draw_exact_np, draw_uniforms, logit_tol
from .layers import colour_groups

__all__ = [
    "Canonical",
    "draw",
    "draw_checked",
    "draw_exact",
    "draw_uniforms",
    "float32_exact",
    "logit_tol",
    "sample_cached",
    "sample_naive",
]


@contextlib.contextmanager
def float32_exact():
    """Plain float32 convolutions and matrix products inside (no TF32 on CUDA, where cuDNN convolutions
    default to it): the error margins (`sr_models.draws`) were measured for float32 rounding, and TF32's
    ~1e-3 would break them. Restores the previous settings on exit; a no-op for computations on the CPU."""
    conv, mm = getattr(torch.backends.cudnn, "conv", None), torch.backends.cuda.matmul
    if conv is not None and hasattr(conv, "fp32_precision") and hasattr(mm, "fp32_precision"):
        old = conv.fp32_precision, mm.fp32_precision
        conv.fp32_precision = mm.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision, mm.fp32_precision = old
    else:  # older torch: the legacy flags
        old = torch.backends.cudnn.allow_tf32, mm.allow_tf32
        torch.backends.cudnn.allow_tf32 = mm.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, mm.allow_tf32 = old


SMALL_BATCH = 8  # sample_cached: CPU batches up to this size run on one torch thread


@contextlib.contextmanager
def _one_thread_if(small: bool):
    """torch on one intra-op thread inside when `small` (restored on exit). At batch <= SMALL_BATCH every
    operation of the cached sampler is tiny, and waiting for a second thread costs more than it saves:
    measured at batch 1 (paper prior, RGB) on a busy 2-core machine, 23.4 s per image with torch's 2
    threads, 1.7 s with 1 (wall clock, load 2.6-3)."""
    threads = torch.get_num_threads()
    if small and threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _level_table(device) -> torch.Tensor:
    # the prior's normalisation (x / 127.5 - 1), tabulated with the very same float32 operations
    return torch.arange(LEVELS, device=device).float() / 127.5 - 1.0


@torch.no_grad()
@float32_exact()
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
    a_max = a.abs().amax(-1)
    hr = torch.zeros(b, c_n, h, w, dtype=torch.uint8, device=a.device)
    with tqdm(total=h * w * c_n, desc="sampling (naive)", unit="sub-px", disable=not progress, leave=False) as bar:
        for r in range(h):
            for c in range(w):
                for g in range(c_n):
                    b_rcg = model.prior_logits(hr)[:, r, c, g]
                    logits = a[:, r, c, g] + b_rcg
                    if record is not None:
                        record[:, r, c, g] = logits
                    level, fragile, any_fragile = draw_exact(
                        logits, b_rcg, a_max[:, r, c, g], u[:, g, r, c], temperature, greedy
                    )
                    if any_fragile:
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
        w_hc = [w[:, :, 0, lh].t() for w in wh]  # [p, 2p], channel mask B
        self.w_hc_a = [w[:, :p].contiguous() for w in w_hc]  # the tanh half
        self.w_hc_b = [w[:, p:].contiguous() for w in w_hc]  # the sigmoid half
        self.w_out = [blk.hout.weight.detach()[:, :, 0, 0].t().contiguous() for blk in blocks]  # [p, p]
        # The 1x1 outputs' biases leave the per-sub-pixel loop: it carries k_l = h_l - beta_l, beta_l = the
        # sum of the biases of the outputs before layer l, so h_{l+1} = h_l + b_out_l + gate W_out becomes
        # one product k_{l+1} = k_l + gate W_out. Layer l then sees beta_l through its current-pixel and
        # left taps (a constant folded into its row bias `b_row`; the row buffer's zero padding becomes
        # -beta_l, so padded taps still add nothing), and the head sees beta_L (folded into its bias).
        b_out = torch.stack([blk.hout.bias.detach() for blk in blocks])  # [L, p]
        self.beta = torch.cat([torch.zeros_like(b_out[:1]), b_out.cumsum(0)[:-1]])  # [L, p]
        beta_head = b_out.sum(0)  # [p]
        taps_sum = torch.stack(w_hc) + self.w_hleft.view(self.L, lh, p, 2 * p).sum(1)  # [L, p, 2p]
        b_h = torch.stack([blk.hconv.bias.detach() for blk in blocks])  # [L, 2p]
        self.b_row = b_h + self.b_link + torch.bmm(self.beta[:, None, :], taps_sum)[:, 0]  # [L, 2p]
        # colour g's logits read only the head channels of colour groups <= g (mask B; the others' weights
        # are exact zeros): slice them off, and keep only colour g's 256 outputs of the last layer
        w1 = prior.head1.weight.detach()[:, :, 0, 0].t()  # [p, head]
        w2 = prior.head2.weight.detach()[:, :, 0, 0].t()  # [head, C*256]
        groups = colour_groups(w1.shape[1], c_n)  # the head's colour groups: contiguous blocks
        ends = [int((groups <= g).sum()) for g in range(c_n)]
        self.w1 = [w1[:, :e].contiguous() for e in ends]
        b1 = prior.head1.bias.detach() + beta_head @ w1
        self.b1 = [b1[:e].contiguous() for e in ends]
        self.w2 = [w2[:e, g * LEVELS : (g + 1) * LEVELS].contiguous() for g, e in enumerate(ends)]
        self.b2 = [prior.head2.bias.detach()[g * LEVELS : (g + 1) * LEVELS].contiguous() for g in range(c_n)]


def _gate_rows(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


@torch.no_grad()
@float32_exact()
def sample_cached(
    model,
    a: torch.Tensor,
    u: torch.Tensor,
    temperature: float = 1.0,
    greedy: bool = False,
    progress: bool = True,
    record: Optional[torch.Tensor] = None,
    canonical: Optional[Canonical] = None,
    check: bool = True,
) -> torch.Tensor:
    """Incremental sampler, same arguments and result as `sample_naive` (identical samples for the same u).

    check=False skips the exactness check (plain float32 `draw`, no canonical decisions): only for
    measuring what the check costs; its samples may differ from `sample_naive`'s in rare sub-pixels.
    """
    bsz, height, width, c_n, _ = a.shape
    with _one_thread_if(a.device.type == "cpu" and bsz <= SMALL_BATCH):
        return _sample_cached(model, a, u, temperature, greedy, progress, record, canonical, check)


def _sample_cached(model, a, u, temperature, greedy, progress, record, canonical, check) -> torch.Tensor:
    bsz, height, width, c_n, _ = a.shape
    canonical = canonical if canonical is not None else Canonical(model, a)
    P = _CachedPrior(model.prior)
    st = _RowState(P, bsz, width, a.device, a.dtype)
    hr = torch.zeros(bsz, c_n, height, width, dtype=torch.uint8, device=a.device)
    steps = _Draws(a, u, hr, st.xrow, P.l0, temperature, greedy, record, canonical, check)
    small = _SmallBatchPixels(P, st, steps) if steps.np else None
    with tqdm(
        total=height * width * c_n, desc="sampling (cached)", unit="sub-px", disable=not progress, leave=False
    ) as bar:
        for r in range(height):
            if r > 0:
                st.next_row(P)
            st.xrow.zero_()
            if small is not None:
                small.start_row()
            for c in range(width):
                if small is not None:
                    small.pixel(r, c)
                else:
                    _pixel(P, st, steps, r, c)
                bar.update(c_n)
    return hr


def _pixel(P: _CachedPrior, st: "_RowState", steps: "_Draws", r: int, c: int) -> None:
    """Every colour sub-pixel of pixel (r, c), in torch; the layers' inputs go into the row buffer."""
    left0, lefts_a, lefts_b = st.lefts(P, c)
    xc = st.xrow[:, c + P.l0]
    for g in range(P.colours):
        b, hs = _subpixel(P, left0, lefts_a, lefts_b, xc, g)
        steps.take(b, r, c, g)
    st.hbuf[:, :, c + P.lh] = torch.stack(hs)


class _Draws:
    """The cached sampler's draw of each sub-pixel and its bookkeeping: logits = B + A, the (checked) draw,
    the level into `hr` and its normalised value into the row buffer `xrow` [B, l0+W, C].

    Small CPU batches (<= NUMPY_BATCH) do all of it on NumPy views of the same tensors (shared memory):
    at batch 1 each torch indexing or assignment of a few numbers costs microseconds, NumPy's a tenth of
    that, and there are ~8 of them per sub-pixel. The values are the same: the float32 sum B + A and the
    level table are elementwise IEEE operations, and the check is `draw_exact`'s own NumPy path."""

    def __init__(self, a, u, hr, xrow, l0: int, temperature, greedy, record, canonical, check):
        self.a, self.u, self.hr, self.xrow, self.l0 = a, u, hr, xrow, l0
        self.temperature, self.greedy, self.record, self.canonical, self.check = (
            temperature,
            greedy,
            record,
            canonical,
            check,
        )
        self.a_max = a.abs().amax(-1)
        self.table = _level_table(a.device)
        self.np = a.device.type == "cpu" and a.shape[0] <= NUMPY_BATCH
        if self.np:
            self.a_np, self.u_np, self.a_max_np = a.detach().numpy(), u.detach().numpy(), self.a_max.detach().numpy()
            self.hr_np, self.xrow_np, self.table_np = hr.numpy(), xrow.numpy(), self.table.numpy()

    def take(self, b: torch.Tensor, r: int, c: int, g: int) -> None:
        """Draw sub-pixel (r, c, g) of every image from the prior's logits b [B, 256]; record and store it."""
        if self.np:
            return self._take_np(b, r, c, g)
        logits = b + self.a[:, r, c, g]
        if self.record is not None:
            self.record[:, r, c, g] = logits
        u_rcg = self.u[:, g, r, c]
        if self.check:
            level, fragile, any_fragile = draw_exact(
                logits, b, self.a_max[:, r, c, g], u_rcg, self.temperature, self.greedy
            )
            if any_fragile:
                self.canonical.resolve(level, fragile, self.hr, r, c, g, u_rcg, self.temperature, self.greedy)
        else:
            level = draw(logits, u_rcg, self.temperature, self.greedy)
        self.hr[:, g, r, c] = level
        self.xrow[:, c + self.l0, g] = self.table[level]

    def _take_np(self, b: torch.Tensor, r: int, c: int, g: int) -> None:
        self.take_np(b.numpy(), r, c, g)

    def take_np(self, b_np: np.ndarray, r: int, c: int, g: int) -> None:
        """`take` for small CPU batches, from the prior's logits as a NumPy array float32 [B, 256]."""
        logits = b_np + self.a_np[:, r, c, g]  # float32 + float32: the same bits as torch's sum
        if self.record is not None:
            self.record[:, r, c, g] = torch.from_numpy(logits)
        if self.check:
            level, fragile = draw_exact_np(
                logits, b_np, self.a_max_np[:, r, c, g], self.u_np[:, g, r, c], self.temperature, self.greedy
            )
            if fragile.any():
                level_t = torch.from_numpy(level)
                self.canonical.resolve(
                    level_t, torch.from_numpy(fragile), self.hr, r, c, g, self.u[:, g, r, c], self.temperature,
                    self.greedy,
                )  # fmt: skip
                level = level_t.numpy()
        else:
            level = draw(torch.from_numpy(logits), self.u[:, g, r, c], self.temperature, self.greedy).numpy()
        self.hr_np[:, g, r, c] = level
        self.xrow_np[:, c + self.l0, g] = self.table_np[level]


class _SmallBatchPixels:
    """`_pixel` for CPU batches <= NUMPY_BATCH, on NumPy views of the same state: the same products, gates
    and head, each a [B, p] row block times a small matrix. At batch 1 a sub-pixel is ~7 operations per
    gated block on 32-wide rows, so the cost is per call, and NumPy's is about half torch's (20 paper-size
    blocks: 110-145 vs 250-280 us CPU time per sub-pixel, 1 thread). Its float32 rounding differs from the
    torch path's (another BLAS, `expit` for the sigmoid) by amounts within the measured margin
    (tests/test_sampling.py::test_measured_error_within_margins runs both paths), so the exact decisions
    give the same samples; only the recorded float32 logits differ in their last bits."""

    def __init__(self, P: _CachedPrior, st: "_RowState", steps: "_Draws"):
        from scipy.special import expit  # noqa: PLC0415 (scipy loads only where a small batch is sampled)

        def arr(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().numpy())

        self.P, self.st, self.steps, self.expit = P, st, steps, expit
        self.w0_left, self.w0_centre, self.w_hleft = arr(P.w0_left), arr(P.w0_centre), arr(P.w_hleft)
        self.w_gate = [np.concatenate([arr(wa), arr(wb)], 1) for wa, wb in zip(P.w_hc_a, P.w_hc_b)]  # [p, 2p]
        self.w_out = [arr(w) for w in P.w_out]
        self.w1, self.b1, self.w2, self.b2 = ([arr(t) for t in ts] for ts in (P.w1, P.b1, P.w2, P.b2))
        self.xrow, self.hbuf = st.xrow.numpy(), st.hbuf.numpy()

    def start_row(self) -> None:
        """Views of the row's terms from the rows above (`_RowState.next_row` replaces the tensors)."""
        self.above, self.rowbias = self.st.above.numpy(), self.st.rowbias.numpy()

    def pixel(self, r: int, c: int) -> None:
        """Every colour sub-pixel of pixel (r, c): `_RowState.lefts`, then `_subpixel` per colour."""
        P, bsz, p = self.P, self.st.bsz, self.P.p
        left0 = np.dot(self.xrow[:, c : c + P.l0].reshape(bsz, P.l0 * P.colours), self.w0_left)
        left0 += self.above[:, c]
        lefts = np.matmul(self.hbuf[:, :, c : c + P.lh].reshape(P.L, bsz, P.lh * p), self.w_hleft)
        lefts += self.rowbias[:, :, c]  # [L, B, 2p]
        xc = self.xrow[:, c + P.l0]  # a view: each colour's draw lands in it before the next colour
        for g in range(P.colours):
            h = np.dot(xc, self.w0_centre)
            h += left0
            hs = []
            for k in range(P.L):
                hs.append(h)
                y = np.dot(h, self.w_gate[k])
                y += lefts[k]
                t = np.tanh(y[:, :p])
                t *= self.expit(y[:, p:])
                h = h + np.dot(t, self.w_out[k])
            z = np.dot(h, self.w1[g])
            z += self.b1[g]
            b = np.dot(np.maximum(z, 0, out=z), self.w2[g])
            b += self.b2[g]
            self.steps.take_np(b, r, c, g)
        self.hbuf[:, :, c + P.lh] = np.stack(hs)


def _subpixel(P: _CachedPrior, left0, lefts_a, lefts_b, xc, g: int):
    """The prior at the current pixel for colour g: the current-pixel taps of every layer, the gates, the
    1x1 outputs and the head (colour g's 256 logits only). -> (B [B, 256], the layers' inputs k_0..k_{L-1})."""
    h = torch.addmm(left0, xc, P.w0_centre)
    hs: List[torch.Tensor] = []
    for k in range(P.L):
        hs.append(h)
        t = torch.addmm(lefts_a[k], h, P.w_hc_a[k]).tanh_()  # the gate's halves as two products: no chunk
        t.mul_(torch.addmm(lefts_b[k], h, P.w_hc_b[k]).sigmoid_())
        h = torch.addmm(h, t, P.w_out[k])  # the output's bias is folded away (_CachedPrior)
    z = torch.addmm(P.b1[g], h, P.w1[g]).relu_()
    return torch.addmm(P.b2[g], z, P.w2[g]), hs


class _RowState:
    """The cached sampler's state; zero initialisation = the full model's zero padding.

    xwin [B, C, kh0-1, W+pads]: rows above, normalised; xrow [B, l0+W, C]: the current row after l0 zero
    columns; vwin: per layer, the vertical stack's input window; hbuf [L, B, lh+W, p]: the horizontal
    stack's layer inputs k_0..k_{L-1} of the current row (k = h - beta, see _CachedPrior) after lh padding
    columns; rowbias [L, B, W, 2p] and
    above [B, W, p]: the current row's terms from the rows above (row 0: the biases alone).
    """

    def __init__(self, P: _CachedPrior, bsz: int, width: int, dev, dt):
        p, L = P.p, P.L
        self.bsz, self.width = bsz, width
        self.xwin = torch.zeros(bsz, P.colours, P.kh0 - 1, width + P.pad0[0] + P.pad0[1], device=dev, dtype=dt)
        self.xrow = torch.zeros(bsz, width + P.l0, P.colours, device=dev, dtype=dt)
        self.vwin = [
            torch.zeros(bsz, p, P.kh_v, width + P.pad_v[0] + P.pad_v[1], device=dev, dtype=dt) for _ in range(L)
        ]
        self.hbuf = torch.zeros(L, bsz, width + P.lh, p, device=dev, dtype=dt)
        self.hbuf[:, :, : P.lh] = -P.beta[:, None, None, :]  # padding in k = h - beta (see _CachedPrior)
        self.rowbias = P.b_row[:, None, None, :].expand(L, bsz, width, 2 * p).contiguous()
        self.above = P.b0.expand(bsz, width, p).contiguous()

    def lefts(self, P: _CachedPrior, c: int):
        """Pixel c's terms from the finished pixels: input conv [B, p]; per layer, the tanh and the sigmoid
        halves [B, p] (two tuples of L)."""
        bsz = self.bsz
        left0 = torch.addmm(self.above[:, c], self.xrow[:, c : c + P.l0].reshape(bsz, P.l0 * P.colours), P.w0_left)
        taps = self.hbuf[:, :, c : c + P.lh].reshape(P.L, bsz, P.lh * P.p)
        lefts = torch.baddbmm(self.rowbias[:, :, c], taps, P.w_hleft)
        return left0, lefts[..., : P.p].unbind(0), lefts[..., P.p :].unbind(0)

    def next_row(self, P: _CachedPrior) -> None:
        self.rowbias, self.above = _next_row(P, self.xrow, self.xwin, self.vwin, self.hbuf, self.bsz, self.width)


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
    for k in range(L):
        win = vwin[k]
        win[:, :, :-1] = win[:, :, 1:].clone()
        win[:, :, -1, P.pad_v[0] : P.pad_v[0] + width] = v
        pre = F.conv2d(win, P.w_v[k], P.b_v[k])[:, :, 0]  # [B, 2p, W]
        pres.append(pre)
        v = _gate_rows(pre)
    pres = torch.stack(pres).transpose(2, 3).reshape(L, bsz * width, 2 * p)
    rowbias = torch.baddbmm(P.b_row[:, None, :], pres, P.w_link).view(L, bsz, width, 2 * p)
    return rowbias, above
