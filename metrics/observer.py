"""A machine observer for the 2AFC question "which of these two images is real?".

`machine_fool_rate(real, fake)` is a classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017) in the
study's forced-choice form. A small CNN s(image) -> score (higher = "looks real") is trained on the pairs
of k-1 folds with the 2AFC loss softplus(s(fake) - s(real)) (the logistic loss of "the real one scores
higher") and judged on the held-out fold: a held-out pair *fools* the observer when s(fake) > s(real);
a tie counts half. The k held-out folds are pooled, so every pair is judged exactly once, by an observer
that never saw it.

The 95 % interval is a percentile bootstrap over pairs: the N per-pair outcomes (0, 1/2 or 1) are
resampled with replacement and the pooled rate recomputed. Pairs are the independent units here (one
ground-truth image and the method's output for the same input; the evaluation images are distinct test
images), and each outcome comes from a model not trained on that pair, so resampling pairs is honest
for the question "how often would *this* trained observer be fooled by new pairs from this method".
That interval does NOT include the variability of re-training the observer (initialisation, batch order,
fold split). `machine_fool_rate_seeds` does: it trains the observer with several seeds on the same pairs
and widens the pair bootstrap by their spread, SE = sqrt(mean bootstrap SE² + SD over seeds² / R)
(`metrics.spread.combined_interval`). `bench/observer.py --mode coverage` validates it on real-vs-real pairs
of disjoint images (the true rate is 50 %), and `prsr eval --seeds N` uses the same combination (the
observer's seed moves with the run's seed).

Read the rate as a lower bound on how detectable a method is to an observer that can learn: 50 % means
this observer, with this much data, found no difference; a stronger observer could still find one.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from sr_data.device import default_device

from .spread import combined_interval

#: Observer settings used when a caller passes none (the `quick` profile's `observer:` values).
OBSERVER_DEFAULTS: Dict[str, Any] = dict(
    folds=5,
    widths=(8, 16, 32),
    steps=150,
    batch_size=32,
    lr=3.0e-3,
    flip=True,
    n_boot=2000,
    threads=None,
)


class Observer(nn.Module):
    """s(image) -> score. [B, C, H, W] float in [0, 1] -> [B] float (higher = judged more real).

    A stride-1 3x3 conv at `widths[0]` (sees single-pixel texture, where blur and noise live), then one
    stride-2 3x3 conv per further width, ReLU after each, global average pooling and a linear read-out.
    No normalisation layers, so an image's score never depends on the rest of its batch.
    """

    def __init__(self, channels: int, widths: Sequence[int] = (8, 16, 32)):
        super().__init__()
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"observer widths must be a non-empty list of positive ints, got {list(widths)}")
        layers, c_in = [], channels
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c_in, int(w), 3, stride=1 if i == 0 else 2, padding=1), nn.ReLU()]
            c_in = int(w)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(2.0 * x - 1.0)
        return self.head(h.mean(dim=(2, 3))).squeeze(1)


def _as_uint8_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8:
            raise TypeError(f"machine_fool_rate: {name} must be uint8 [N, C, H, W], got dtype {x.dtype}")
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, torch.Tensor):
        if x.dtype != torch.uint8:
            raise TypeError(f"machine_fool_rate: {name} must be uint8 [N, C, H, W], got dtype {x.dtype}")
        return x.detach().cpu().contiguous()
    raise TypeError(f"machine_fool_rate: {name} must be a numpy array or torch tensor, got {type(x).__name__}")


def _validate(real, fake, folds: int) -> tuple[torch.Tensor, torch.Tensor]:
    real, fake = _as_uint8_tensor(real, "real"), _as_uint8_tensor(fake, "fake")
    if real.ndim != 4 or real.shape[1] not in (1, 3):
        raise ValueError(f"machine_fool_rate: real must be [N, C, H, W] with C = 1 or 3, got shape {tuple(real.shape)}")
    if fake.shape != real.shape:
        raise ValueError(
            f"machine_fool_rate: real and fake must have the same shape (pairs by index), got "
            f"{tuple(real.shape)} and {tuple(fake.shape)}"
        )
    if not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"machine_fool_rate: folds must be an int >= 2, got {folds!r}")
    if real.shape[0] < 2 * folds:
        raise ValueError(
            f"machine_fool_rate: {real.shape[0]} pairs are too few for {folds} folds (need at least {2 * folds})"
        )
    return real, fake


def fold_split(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """The fixed cross-validation split: a seeded permutation of 0..n-1 cut into `folds` near-equal parts."""
    perm = np.random.default_rng([seed, 0x0B5E]).permutation(n)
    return [np.sort(part) for part in np.array_split(perm, folds)]


@contextmanager
def _deterministic():
    """torch.use_deterministic_algorithms for the block, restored afterwards (CPU convs are deterministic
    already; this makes CUDA pick deterministic kernels or fail loudly instead of drifting)."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def _train_fold(
    real: torch.Tensor, fake: torch.Tensor, train_idx: np.ndarray, cfg: dict, seed: int, device: torch.device, bar
) -> tuple[Observer, float]:
    """Train one observer on the pairs `train_idx` (float [N,C,H,W] tensors on `device`); returns it and its
    mean 2AFC loss over the last 10 % of steps (nats per pair)."""
    with torch.random.fork_rng(devices=[]):  # the initialisation is seeded without touching the global RNG
        torch.manual_seed(seed)
        model = Observer(real.shape[1], cfg["widths"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    gen = torch.Generator().manual_seed(seed)  # batch order and flips drawn on the CPU: identical on any device
    idx = torch.from_numpy(train_idx)
    steps, batch = int(cfg["steps"]), min(int(cfg["batch_size"]), len(train_idx))
    tail, tail_n = 0.0, max(1, steps // 10)
    model.train()
    for step in range(steps):
        pick = idx[torch.randint(len(idx), (batch,), generator=gen)].to(device)
        r, f = real[pick], fake[pick]
        if cfg["flip"]:
            # the same left-right flip for both images of a pair: the pair stays a pair
            flip = (torch.rand(batch, generator=gen) < 0.5).to(device).view(-1, 1, 1, 1)
            r, f = torch.where(flip, r.flip(3), r), torch.where(flip, f.flip(3), f)
        loss = F.softplus(model(f) - model(r)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= steps - tail_n:
            tail += loss.item() / tail_n
        bar.update(1)
    return model.eval(), tail


@torch.no_grad()
def _scores(model: Observer, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)]).double().cpu()


def _cross_validate(real_u8, fake_u8, cfg: dict, seed: int, device, progress: bool, desc: str, scores=None):
    """Train and judge the k folds -> (per-pair outcome [N] in {0, 1/2, 1}, split, fold rates, fold losses).
    scores: optional float [N, 2] filled in place with each held-out pair's (score of real, score of fake)."""
    n = real_u8.shape[0]
    real_f = real_u8.to(device=device, dtype=torch.float32) / 255.0
    fake_f = fake_u8.to(device=device, dtype=torch.float32) / 255.0
    split = fold_split(n, cfg["folds"], seed)
    outcome = np.empty(n)
    fold_rates, losses = [], []
    with (
        _deterministic(),
        tqdm(total=cfg["folds"] * cfg["steps"], desc=desc, unit="step", disable=not progress, leave=False) as bar,
    ):
        for k, held in enumerate(split):
            train_idx = np.concatenate([part for j, part in enumerate(split) if j != k])
            model, loss = _train_fold(real_f, fake_f, train_idx, cfg, seed * 1009 + k, device, bar)
            held_t = torch.from_numpy(held).to(device)
            s_real, s_fake = _scores(model, real_f[held_t]), _scores(model, fake_f[held_t])
            o = (s_fake > s_real).double() + 0.5 * (s_fake == s_real).double()
            if scores is not None:
                scores[held] = torch.stack([s_real, s_fake], dim=1).numpy()
            outcome[held] = o.numpy()
            fold_rates.append(float(o.mean()))
            losses.append(loss)
    return outcome, split, fold_rates, losses


def _bootstrap_means(outcome: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot] means of `outcome` [N] resampled over pairs with replacement (generator seeded by `seed`)."""
    n = len(outcome)
    rng = np.random.default_rng([seed, 0xB007])
    boot = np.empty(n_boot)
    for b in range(0, n_boot, 256):  # chunks keep memory at 256 x N
        m = min(256, n_boot - b)
        boot[b : b + m] = outcome[rng.integers(0, n, (m, n))].mean(axis=1)
    return boot


def _pair_scores(scores: np.ndarray) -> dict:
    """`score_real`, `score_fake`: lists of N, each pair's scores from the observer that held it out
    (what `metrics.observer_pairs` writes to observer_pairs.csv)."""
    return dict(score_real=scores[:, 0].tolist(), score_fake=scores[:, 1].tolist())


def machine_fool_rate(
    real,
    fake,
    *,
    seed: int = 0,
    folds: int = OBSERVER_DEFAULTS["folds"],
    widths: Sequence[int] = OBSERVER_DEFAULTS["widths"],
    steps: int = OBSERVER_DEFAULTS["steps"],
    batch_size: int = OBSERVER_DEFAULTS["batch_size"],
    lr: float = OBSERVER_DEFAULTS["lr"],
    flip: bool = OBSERVER_DEFAULTS["flip"],
    n_boot: int = OBSERVER_DEFAULTS["n_boot"],
    threads: Optional[int] = OBSERVER_DEFAULTS["threads"],
    device: Optional[torch.device | str] = None,
    progress: bool = True,
    desc: str = "observer",
) -> Dict[str, Any]:
    """Cross-validated 2AFC fool rate of `fake` against `real` (see the module docstring).

    real, fake: uint8 [N, C, H, W] (numpy or torch), C = 1 or 3, pair i = ground truth i and the method's
    output for the same input. folds: k of the k-fold split (k observers, each trained `steps` Adam steps
    of `batch_size` pairs at learning rate `lr` on the other k-1 folds). widths: the `Observer`'s conv
    widths. flip: random left-right flips of training pairs. n_boot: bootstrap resamples over pairs.
    threads: torch intra-op threads while the observer runs (restored afterwards; None = leave as is). The
    observer's convs are too small to gain from several threads, and on a shared 2-core CPU two threads
    per process were ~10x slower than one (0.87 vs 0.09 s per step at load average 11.6).
    device: where the observer trains (default CUDA when present, else CPU). Deterministic for a seed on
    a given device and thread count.

    Returns a dict: `fooled` (fraction of held-out pairs with s(fake) > s(real), ties 1/2), `ci_low`,
    `ci_high` (95 % percentile bootstrap over pairs, fractions), `se` (bootstrap SD), `n_pairs`, `ties`,
    `fold_rates` (per held-out fold), `fold_sizes`, `train_loss` (per fold: mean 2AFC loss over the last
    10 % of steps, nats; log 2 = 0.693 is chance), `seconds`, `seed`, `config`, `score_real` / `score_fake`.
    """
    real_u8, fake_u8 = _validate(real, fake, folds)
    cfg = dict(
        folds=int(folds),
        widths=[int(w) for w in widths],
        steps=int(steps),
        batch_size=int(batch_size),
        lr=float(lr),
        flip=bool(flip),
        n_boot=int(n_boot),
        threads=None if threads is None else int(threads),
    )
    if cfg["steps"] < 1 or cfg["batch_size"] < 1 or cfg["n_boot"] < 2 or not cfg["lr"] > 0:
        raise ValueError(f"machine_fool_rate: need steps >= 1, batch_size >= 1, n_boot >= 2, lr > 0; got {cfg}")
    device = torch.device(device) if device is not None else default_device()
    t0 = time.perf_counter()
    if threads is not None and int(threads) < 1:
        raise ValueError(f"machine_fool_rate: threads must be >= 1 or None, got {threads!r}")
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        scores = np.full((real_u8.shape[0], 2), np.nan)  # (real, fake) per pair, filled fold by fold
        outcome, split, fold_rates, losses = _cross_validate(
            real_u8, fake_u8, cfg, seed, device, progress, desc, scores
        )
    finally:
        torch.set_num_threads(threads_before)
    n = real_u8.shape[0]
    boot = _bootstrap_means(outcome, cfg["n_boot"], seed)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return dict(
        fooled=float(outcome.mean()),
        ci_low=float(lo),
        ci_high=float(hi),
        se=float(boot.std(ddof=1)),
        n_pairs=int(n),
        ties=int((outcome == 0.5).sum()),
        fold_rates=fold_rates,
        fold_sizes=[int(len(p)) for p in split],
        train_loss=losses,
        seconds=time.perf_counter() - t0,
        seed=int(seed),
        config=cfg,
        **_pair_scores(scores),
    )


def machine_fool_rate_seeds(real, fake, seeds: Sequence[int] = (0, 1, 2), **kwargs) -> Dict[str, Any]:
    """`machine_fool_rate` with one observer per seed in `seeds` (>= 2 for a seed spread), on the same pairs.

    Returns `fooled` (mean over seeds, fraction), `ci_low`, `ci_high`, `se` and `df` of the interval that
    includes the observer's training randomness (`metrics.spread.combined_interval`, Student's t at the
    Welch-Satterthwaite degrees of freedom, clipped to [0, 1]), `sd_seed`
    (SD of the rate over seeds), `pair_se` (the pooled bootstrap SE over pairs alone), `rates` and
    `per_seed` (every `machine_fool_rate` result). Other keyword arguments go to `machine_fool_rate`.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"machine_fool_rate_seeds: need distinct seeds, got {seeds}")
    per_seed = [machine_fool_rate(real, fake, seed=s, **kwargs) for s in seeds]
    rates = [r["fooled"] for r in per_seed]
    ci = combined_interval(rates, [r["se"] for r in per_seed], 0.0, 1.0)
    return dict(
        fooled=ci["mean"],
        ci_low=ci["ci_low"],
        ci_high=ci["ci_high"],
        se=ci["se"],
        df=ci["df"],
        sd_seed=ci["sd_seed"],
        pair_se=float(np.sqrt(np.mean([r["se"] ** 2 for r in per_seed]))),
        rates=rates,
        seeds=seeds,
        per_seed=per_seed,
    )
