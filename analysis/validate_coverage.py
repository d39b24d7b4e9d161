"""Coverage of the fool-rate intervals over many simulated studies (the figures in docs/analysis.md come from here).

    python -m analysis.validate_coverage                  # bootstrap vs binomial, 1,000 studies per cell
    python -m analysis.validate_coverage --glmm-studies 100   # also the GLMM check (slow: ~3-15 s per fit)

Each study: `n_raters` raters x `n_trials` counted trials of one method, rater and image effects with
SD 0.8 on the logit scale, the true marginal fool rate known (`analysis.simulation`). Every study
draws its own raters *and* its own image pool of `n_images` images from the populations, and each
rater sees `n_trials` distinct images of the pool, so the truth being covered is the rate over the
populations of raters and images, not over this study's images. The bootstrap over raters treats the
pool as fixed: it covers well when the pool is large (the study app deals each rater a different part
of the evaluation set), and less when every rater sees the same few images (`--n-images 45`).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from tqdm import tqdm

from analysis.bootstrap import bootstrap_rates, summarize
from analysis.glmm import fit_glmm
from analysis.simulation import simulate_counts, simulate_trials

Z95 = 1.959963984540054


def coverage_table(
    true_rates=(0.04, 0.085, 0.11, 0.2, 0.3),
    *,
    n_studies: int = 1000,
    n_boot: int = 2000,
    n_raters: int = 40,
    n_trials: int = 45,
    n_images: int = 200,
    rater_sd: float = 0.8,
    image_sd: float = 0.8,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per true rate: share of studies whose 95 % interval covers it, bootstrap and binomial.

    Columns: true_rate, studies, boot_coverage, binomial_coverage, true_sd (spread of the estimates
    across studies), boot_se, binomial_se (mean estimated SEs); rates and SEs as fractions.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for p in tqdm(true_rates, desc="coverage", unit="rate", disable=not progress):
        sim = simulate_counts(
            n_studies,
            p,
            n_raters=n_raters,
            n_trials=n_trials,
            n_images=n_images,
            rater_sd=rater_sd,
            image_sd=image_sd,
            rng=rng,
        )
        boot = bootstrap_rates(sim.fooled, sim.trials, n_boot, rng)
        se, lo, hi = summarize(boot)
        n = sim.trials.sum(axis=1)
        est = sim.fooled.sum(axis=1) / n
        binom_se = np.sqrt(est * (1 - est) / n)
        rows.append(
            dict(
                true_rate=p,
                studies=n_studies,
                boot_coverage=float(np.mean((lo <= p) & (p <= hi))),
                binomial_coverage=float(np.mean(np.abs(est - p) <= Z95 * binom_se)),
                true_sd=float(est.std(ddof=1)),
                boot_se=float(se.mean()),
                binomial_se=float(binom_se.mean()),
            )
        )
    return pd.DataFrame(rows)


def glmm_coverage(true_rate: float = 0.1, *, n_studies: int = 100, n_images: int = 200, seed: int = 0) -> dict:
    """Share of `n_studies` simulated studies whose GLMM 95 % interval covers `true_rate` (slow: one fit each)."""
    covered = []
    for s in tqdm(range(n_studies), desc="GLMM fits", unit="study"):
        _, trials = simulate_trials({"m": true_rate}, n_images=n_images, seed=seed + s)
        res = fit_glmm(trials, seed=s)
        covered.append(res.ci_low <= true_rate <= res.ci_high)
    return dict(true_rate=true_rate, studies=n_studies, glmm_coverage=float(np.mean(covered)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument(
        "--n-images",
        type=int,
        nargs="+",
        default=[45, 200, 1000],
        help="image pool sizes per study (each rater sees n_trials distinct images of it)",
    )
    parser.add_argument("--glmm-studies", type=int, default=0, help="also check the GLMM on this many studies")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for n_images in args.n_images:
        table = coverage_table(
            n_studies=args.studies, n_boot=args.n_boot, n_images=n_images, seed=args.seed, progress=True
        )
        print(f"\n40 raters x 45 trials, rater/image SD 0.8, image pool {n_images}, {args.studies} studies per rate")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"all rates: bootstrap {table.boot_coverage.mean():.3f}, binomial {table.binomial_coverage.mean():.3f}")
    if args.glmm_studies:
        print(glmm_coverage(n_studies=args.glmm_studies, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
