"""Draws of the samplers (`sr_models.sampling`): uniforms, inverse-CDF draws, and which draws are fragile.

All randomness of a sampling call is drawn up front (`draw_uniforms`: one uniform per sub-pixel, consumed
by inverse-CDF sampling), so every sampler consumes a `torch.Generator` identically.

Error margin. A sampler's float32 logits differ from the float64 canonical ones (`sr_models.canonical`) by
rounding that grows with the size of the numbers summed: measured at most 1.39e-6 * (max|A| + max|B|) over
the 256 logits of a sub-pixel (`bench/sampling_error.py`: random weights of the smoke, quick and paper
priors, RGB, head and conditioning weights scaled x1, x4 and x16 so logits reach ~10; cached sampler on its
NumPy and torch paths and naive sampler; batches 1, 2, 9 and 64 on 1 and 2 threads; A from lr in float32
against float64; 2-core AMD EPYC, torch 2.13.0 CPU). The largest errors are the paper prior's torch products
at small batches and the naive sampler's full passes (1.0e-6 to 1.4e-6); the NumPy path stays below 6e-7.
`logit_tol` takes REL_TOL = 4x MEASURED_REL_ERR. (Bounds that were exceeded when measured more widely: a
fixed 3.2e-6, exceeded at logits ~10; then 6.5e-7 relative, measured on fewer paths and exceeded by the
paper prior at batches 1-64.) With logits off by at most d = tol / tau, the odds of each
CDF value c move by a factor in [e^-2d, e^2d], so c moves by at most c (1 - c) expm1(2 d); the CDF is
computed in float64 from the float32 logits, so its own rounding (CDF64_ROUND) is negligible. A draw
whose uniform lies farther than that from every CDF boundary (greedy: whose top-two gap exceeds 2 tol)
picks the canonical level; the others are fragile and decided canonically. A measured bound with a safety
factor, not a proof: re-measure with tests/test_sampling.py::test_measured_error_within_margins when the
model family, the hardware or the BLAS changes (and `bench/sampling_error.py` on the machine at hand).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

LEVELS = 256
MEASURED_REL_ERR = 1.5e-6  # max |float32 logit - float64 logit| / (max|A| + max|B|) seen: 1.39e-6 (module doc)
REL_TOL = 4 * MEASURED_REL_ERR
ABS_TOL = 1e-9  # floor, so all-zero logits still flag exact greedy ties
NUMPY_BATCH = 8  # draw_exact: largest CPU batch checked in NumPy
CDF64_ROUND = 1e-10  # float64 softmax + cumsum over 256 levels (~3e-14) and the bound's second-order terms


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


def logit_tol(a_max: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Bound on |float32 logit - canonical logit| per sub-pixel: a_max [B] = max|A| over its 256 logits,
    b [B, 256] the prior's logits B -> float [B]: REL_TOL (max|A| + max|B|) + ABS_TOL."""
    return (b.abs().amax(-1) + a_max).mul_(REL_TOL).add_(ABS_TOL)


def draw_checked(logits: torch.Tensor, u: torch.Tensor, temperature: float, greedy: bool, tol: torch.Tensor):
    """`draw` from float32 logits [B, 256] with a float64 CDF, plus which draws are fragile: tol [B] (see
    `logit_tol`) -> (levels long [B], fragile bool [B]).

    Fragile: a CDF boundary c lies within c (1 - c) s + CDF64_ROUND of u, s = expm1(2 tol / tau), or,
    greedy, the top two logits are within 2 tol (ties included); then logits within tol of these may pick
    another level. Tested conservatively: such a c has c (1 - c) <= u (1 - u) + s / 4 + CDF64_ROUND, so all
    boundaries within (u (1 - u) + s / 4 + CDF64_ROUND) s + CDF64_ROUND of u are flagged (a superset;
    the extra width is second order, ~s^2). s = inf (tiny tau) flags every draw.
    """
    if greedy:
        top = logits.topk(2, -1).values
        return logits.argmax(-1), (top[:, 0] - top[:, 1]) <= 2 * tol
    cdf = torch.softmax(logits.double().div_(temperature), -1).cumsum_(-1)
    u64 = u.double()
    total = cdf[:, -1:]
    t = u64.unsqueeze(-1) * total  # u on the unnormalised CDF
    levels = torch.searchsorted(cdf, t, right=True).clamp_(max=LEVELS - 1)  # [B, 1]: #(boundaries <= t)
    # the CDF is monotone: the boundaries nearest u are the two around the drawn level (the last entry,
    # the total, counts as one: its distance 1 - u > 0); the farther ones cannot be within the width
    near = cdf.gather(-1, torch.cat([(levels - 1).clamp_(min=0), levels], -1))  # [B, 2]
    s = torch.expm1(tol.double().mul_(2 / temperature))
    width = torch.addcmul(u64, u64, u64, value=-1).add_(s, alpha=0.25).add_(CDF64_ROUND).mul_(s).add_(CDF64_ROUND)
    fragile = (near.sub_(t).abs_() <= width.unsqueeze(-1) * total).any(-1)
    return levels.squeeze(-1), fragile


def draw_exact(
    logits: torch.Tensor, b: torch.Tensor, a_max: torch.Tensor, u: torch.Tensor, temperature: float, greedy: bool
) -> Tuple[torch.Tensor, torch.Tensor, bool]:
    """One checked draw per batch element, as the samplers take it: logits [B, 256] = A + B, b [B, 256] = B,
    a_max [B] = max|A|, u [B] -> (levels long [B], fragile bool [B], whether any is fragile).

    The same decision as `draw_checked(logits, u, temperature, greedy, logit_tol(a_max, b))`. Small CPU
    batches (<= NUMPY_BATCH) go through NumPy: at batch 1 the check is ~25 operations on 256 numbers and
    NumPy's per-operation cost is about half torch's (measured 60 vs 112 us per draw; at batch 64 torch is
    faster, 245 vs 299 us). The levels of non-fragile draws are the same: both compute the float64 CDF of
    the same float32 logits, and the margins dwarf the ~1e-16 between the two.
    """
    if logits.device.type != "cpu" or logits.shape[0] > NUMPY_BATCH:
        levels, fragile = draw_checked(logits, u, temperature, greedy, logit_tol(a_max, b))
        return levels, fragile, bool(fragile.any())
    levels, fragile = draw_exact_np(logits.numpy(), b.numpy(), a_max.numpy(), u.numpy(), temperature, greedy)
    return torch.from_numpy(levels), torch.from_numpy(fragile), bool(fragile.any())


def draw_exact_np(
    logits: np.ndarray, b: np.ndarray, a_max: np.ndarray, u: np.ndarray, temperature: float, greedy: bool
):
    """`draw_exact`'s NumPy path on NumPy arrays (float32 logits [B, 256], b [B, 256], a_max [B], u [B]) ->
    (levels int64 [B], fragile bool [B]). The cached sampler calls it directly at small CPU batches: its
    bookkeeping there is NumPy views of its tensors (no torch operation per scalar)."""
    z = logits.astype(np.float64)
    tol = (np.abs(b).max(-1) + a_max).astype(np.float64) * REL_TOL + ABS_TOL
    if greedy:
        top2 = np.partition(z, -2, axis=-1)[:, -2:]
        levels, fragile = z.argmax(-1), (top2[:, 1] - top2[:, 0]) <= 2 * tol
    else:
        z /= temperature
        cdf = np.exp(z - z.max(-1, keepdims=True)).cumsum(-1)
        u64 = u.astype(np.float64)
        d = cdf / cdf[:, -1:] - u64[:, None]
        levels = (d <= 0).sum(-1)
        with np.errstate(over="ignore"):  # s = inf (tiny tau) flags every draw
            s = np.expm1(tol * (2 / temperature))
        width = ((u64 * (1 - u64) + 0.25 * s + CDF64_ROUND) * s + CDF64_ROUND)[:, None]
        fragile = (np.abs(d) <= width).any(-1)
    return levels.astype(np.int64), fragile
