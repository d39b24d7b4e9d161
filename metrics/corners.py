"""Mode purity and balance for the two-corners experiment (the paper's Fig. 2, turned into numbers).

Targets hold one item in the top-left or the bottom-right quadrant of a square image (16x16 of 32x32, or
8x8 of 16x16 for the small variant). A model
output is *pure* when at least `purity_threshold` (default 90 %) of its ink — the sum of its
intensities — lies inside one of those two quadrants; an output with almost no ink (less than
`min_ink_fraction` of the mean ink of the targets) is counted as impure, since a blank image has
committed to no mode. *Balance* is the share of pure outputs that chose the top-left quadrant
(0.5 = both modes equally often).
"""

from __future__ import annotations

from typing import Dict

import torch


def quadrant_ink(images: torch.Tensor):
    """images [N, C, S, S] float in [0, 1], S even (32, or 16 for the small variant) -> (total ink [N],
    top-left quadrant ink [N], bottom-right quadrant ink [N])."""
    if images.dim() != 4 or images.shape[-1] != images.shape[-2] or images.shape[-1] % 2 or images.shape[-1] < 2:
        raise ValueError(
            f"expected square images [N, C, S, S] with S even (e.g. 32, 32), got shape {tuple(images.shape)}"
        )
    h = images.shape[-1] // 2
    x = images.double().sum(dim=1)  # ink summed over channels
    return x.sum(dim=(1, 2)), x[:, :h, :h].sum(dim=(1, 2)), x[:, h:, h:].sum(dim=(1, 2))


def mode_purity(
    outputs: torch.Tensor, targets: torch.Tensor, purity_threshold: float = 0.9, min_ink_fraction: float = 0.1
) -> Dict[str, float]:
    """{'purity', 'balance', 'n_samples', 'n_pure', 'n_blank'} for outputs [N, C, S, S] float in [0, 1].

    `targets` (the ground-truth images, same layout) set the ink scale for the blank rule.
    """
    total, tl, br = quadrant_ink(outputs)
    if outputs.shape[1:] != targets.shape[1:]:
        raise ValueError(
            f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} must have the same [C, S, S]"
        )
    target_ink = quadrant_ink(targets)[0].mean()
    blank = total < min_ink_fraction * target_ink
    safe_total = total.clamp_min(1e-12)
    in_tl = (tl / safe_total >= purity_threshold) & ~blank
    in_br = (br / safe_total >= purity_threshold) & ~blank
    pure = in_tl | in_br
    n_pure = int(pure.sum())
    return {
        "purity": n_pure / len(outputs),
        "balance": float(in_tl.sum()) / n_pure if n_pure else float("nan"),
        "n_samples": len(outputs),
        "n_pure": n_pure,
        "n_blank": int(blank.sum()),
    }
