"""In-memory, vectorised simulation of many 2AFC studies, for validating the fool-rate intervals.

The answer model is `study_app.fool_model`: a counted trial of rater r on image i fools the rater with
probability sigmoid(b0 + u_r + v_i), u_r ~ N(0, rater_sd^2), v_i ~ N(0, image_sd^2), and b0 is solved
so that the *marginal* rate over the population of raters and images equals the requested true rate.

Each simulated study draws its own raters and its own finite image pool from those populations; every
rater sees `n_trials` distinct images drawn at random from the pool (like the study app, which deals
each rater a random subset of the evaluation images). With `n_images == n_trials` every rater sees the
same images, the case where image variation is least averaged out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from study_app.fool_model import solve_logit_intercept

from .fool_rates import RATER_COLUMNS, TRIAL_COLUMNS


@dataclass
class SimulatedCounts:
    """Per-rater counts of many simulated studies of one method.

    fooled: int [S, R] — trials where the model's image was chosen, per study and rater.
    trials: int [S, R] — counted trials per study and rater.
    true_rate: the marginal fool rate the studies were drawn from (fraction in (0, 1)).
    """

    fooled: np.ndarray
    trials: np.ndarray
    true_rate: float


def _check(name: str, value: int, minimum: int) -> None:
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def simulate_counts(
    n_studies: int,
    true_rate: float,
    *,
    n_raters: int = 40,
    n_trials: int = 45,
    n_images: int = 200,
    rater_sd: float = 0.8,
    image_sd: float = 0.8,
    rng: np.random.Generator,
) -> SimulatedCounts:
    """Simulate `n_studies` independent studies of one method; returns per-rater counts [S, R].

    Studies are processed in chunks so the image deal (random keys [studies, R, n_images] float32)
    stays near 16 MB whatever `n_studies` is.
    """
    _check("n_studies", n_studies, 1)
    _check("n_raters", n_raters, 1)
    _check("n_trials", n_trials, 1)
    _check("n_images", n_images, 1)
    if n_trials > n_images:
        raise ValueError(f"n_trials ({n_trials}) must be <= n_images ({n_images}): a rater sees distinct images")
    b0 = solve_logit_intercept(true_rate, rater_sd, image_sd)
    fooled = np.empty((n_studies, n_raters), dtype=np.int64)
    chunk = max(1, 4_000_000 // (n_raters * n_images))
    for start in range(0, n_studies, chunk):
        s = min(chunk, n_studies - start)
        u = rng.normal(0.0, rater_sd, size=(s, n_raters, 1))
        v = rng.normal(0.0, image_sd, size=(s, 1, n_images))
        # a random subset of n_trials distinct images per rater: the smallest n_trials of random keys
        keys = rng.random((s, n_raters, n_images), dtype=np.float32)
        seen = np.argpartition(keys, n_trials - 1, axis=2)[:, :, :n_trials]
        v_seen = np.take_along_axis(np.broadcast_to(v, (s, n_raters, n_images)), seen, axis=2)
        p = 1.0 / (1.0 + np.exp(-(b0 + u + v_seen)))
        fooled[start : start + s] = (rng.random(p.shape) < p).sum(axis=2)
    trials = np.full((n_studies, n_raters), n_trials, dtype=np.int64)
    return SimulatedCounts(fooled=fooled, trials=trials, true_rate=float(true_rate))


def simulate_trials(
    true_rates: dict[str, float],
    *,
    n_raters: int = 40,
    n_trials: int = 45,
    n_images: int = 200,
    rater_sd: float = 0.8,
    image_sd: float = 0.8,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One simulated study as contract tables `(raters, trials)` (counted trials only, all raters complete).

    Rater ids are `"<method>-<k>"`; image ids `0 .. n_images-1` (a separate image population per method,
    because each method's image is its own output). Every trial has a perfect 1000 ms exposure and a
    visible tab, so only the design decides what counts.
    """
    rng = np.random.default_rng(seed)
    rater_rows, trial_rows = [], []
    for method, rate in true_rates.items():
        b0 = solve_logit_intercept(rate, rater_sd, image_sd)
        v = rng.normal(0.0, image_sd, size=n_images)
        for k in range(n_raters):
            rid = f"{method}-{k}"
            u = rng.normal(0.0, rater_sd)
            images = rng.choice(n_images, size=n_trials, replace=False)
            fooled = rng.random(n_trials) < 1.0 / (1.0 + np.exp(-(b0 + u + v[images])))
            rater_rows.append((rid, method, "complete", 0, 0))
            for t, (img, f) in enumerate(zip(images, fooled)):
                real = "left" if rng.random() < 0.5 else "right"
                other = "right" if real == "left" else "left"
                trial_rows.append(
                    (rid, method, int(img), t, False, False, real, other if f else real, bool(f), 1000.0, 1500.0, False)
                )
    raters = pd.DataFrame(rater_rows, columns=RATER_COLUMNS)
    trials = pd.DataFrame(
        trial_rows,
        columns=TRIAL_COLUMNS,
    )
    return raters, trials
