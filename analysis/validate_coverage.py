"""Coverage of the fool-rate intervals over many simulated studies (the figures in docs/analysis.md come from here).

    python -m analysis.validate_coverage                  # bootstrap vs binomial, 1,000 studies per cell
    python -m analysis.validate_coverage --glmm-studies 100   # also the GLMM check (slow: ~3-15 s per fit)
    python -m analysis.validate_coverage --grid           # the paper's design: rates x rater SD, rates and pairs
    python -m analysis.validate_coverage --grid --full-studies 100   # ... and `analysis.analyze` on 100 studies

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
import itertools

import numpy as np
import pandas as pd
from tqdm import tqdm

import analysis
from analysis.bootstrap import bootstrap_rates, method_rng, summarize
from analysis.glmm import fit_glmm
from analysis.intervals import difference_test, rate_interval
from analysis.planning import Design, simulate_design
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

    Columns: true_rate, studies, boot_coverage, jackknife_coverage (the default interval,
    `analysis.intervals`), binomial_coverage, true_sd (spread of the estimates across studies), boot_se,
    jackknife_se, binomial_se (mean estimated SEs); rates and SEs as fractions.
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
        _, jse, jlo, jhi = rate_interval(sim.fooled, sim.trials)
        n = sim.trials.sum(axis=1)
        est = sim.fooled.sum(axis=1) / n
        binom_se = np.sqrt(est * (1 - est) / n)
        rows.append(
            dict(
                true_rate=p,
                studies=n_studies,
                boot_coverage=float(np.mean((lo <= p) & (p <= hi))),
                jackknife_coverage=float(np.mean((jlo <= p) & (p <= jhi))),
                binomial_coverage=float(np.mean(np.abs(est - p) <= Z95 * binom_se)),
                true_sd=float(est.std(ddof=1)),
                boot_se=float(se.mean()),
                jackknife_se=float(np.nanmean(jse)),
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


GRID_RATES = {"a": 0.03, "b": 0.10, "c": 0.30}


def grid_coverage(
    rater_sds=(0.4, 1.0), *, rates=None, n_studies: int = 500, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Coverage at the paper's design (`planning.Design()`: 40 raters x 40 counted trials, pool 1,000, image
    SD 0.8, no exclusions) of the default interval and the percentile bootstrap, on the same simulated studies.

    The studies are drawn exactly as `planning.simulate_design` draws them (same generators), and the default
    column is checked against that fast path's own coverage. One row per rater SD and target (a method's rate,
    or a pair's difference a - b): rater_sd, target, truth, studies, default_coverage, boot_coverage,
    default_halfwidth, boot_halfwidth (mean half-widths, fractions).
    """
    rates = dict(rates or GRID_RATES)
    rows = []
    for sd in rater_sds:
        design = Design(rater_sd=sd, exclusion_rate=0.0)
        fast = simulate_design(rates, design, n_studies=n_studies, seed=seed)
        jack, boot = {}, {}
        for m, p in rates.items():
            rng = method_rng(seed, m)
            sim = simulate_counts(
                n_studies, p, n_raters=design.kept_raters, n_trials=design.counted_trials,
                n_images=design.n_images, rater_sd=sd, image_sd=design.image_sd, rng=rng,
            )  # fmt: skip
            jack[m] = rate_interval(sim.fooled, sim.trials)
            boot[m] = bootstrap_rates(sim.fooled, sim.trials, n_boot, rng)
            lo, hi = jack[m][2], jack[m][3]
            if abs(float(np.mean((lo <= p) & (p <= hi))) - fast["methods"][m]["coverage"]) > 1e-12:
                raise RuntimeError(f"grid draws differ from planning.simulate_design's for method {m!r}")
            blo, bhi = np.quantile(boot[m], [0.025, 0.975], axis=1)
            rows.append(_coverage_row(sd, f"rate {m}", p, (lo, hi), (blo, bhi)))
        n = design.kept_raters
        for a, b in itertools.combinations(rates, 2):
            d = rates[a] - rates[b]
            lo, hi, _ = difference_test(jack[a][0], jack[a][1], n, jack[b][0], jack[b][1], n)
            blo, bhi = np.quantile(boot[a] - boot[b], [0.025, 0.975], axis=1)
            rows.append(_coverage_row(sd, f"diff {a}-{b}", d, (lo, hi), (blo, bhi)))
    return pd.DataFrame(rows)


def _coverage_row(sd, target, truth, default, boot) -> dict:
    (lo, hi), (blo, bhi) = default, boot
    return dict(
        rater_sd=sd,
        target=target,
        truth=truth,
        studies=len(lo),
        default_coverage=float(np.mean((lo <= truth) & (truth <= hi))),
        boot_coverage=float(np.mean((blo <= truth) & (truth <= bhi))),
        default_halfwidth=float(np.mean(hi - lo) / 2),
        boot_halfwidth=float(np.mean(bhi - blo) / 2),
    )


def full_path_check(rater_sd: float = 1.0, *, n_studies: int = 100, n_boot: int = 200, seed: int = 0) -> dict:
    """`analysis.analyze` (the full path of `prsr analyze`, from trial tables) on `n_studies` studies of
    the grid's design: the largest difference of its ci_low/ci_high from the fast path's formula on the same
    per-rater counts, and its own coverage of the rates and differences (share of all targets covered)."""
    rates = GRID_RATES
    worst, covered, total = 0.0, 0, 0
    for s in tqdm(range(n_studies), desc=f"analyze, rater SD {rater_sd}", unit="study"):
        raters, trials = simulate_trials(
            rates, n_raters=40, n_trials=40, n_images=1000, rater_sd=rater_sd, image_sd=0.8, seed=seed + s
        )
        res = analysis.analyze((raters, trials), n_boot=n_boot, glmm=False, seed=s)
        table = res.fool_rates.set_index("method")
        for m, p in rates.items():
            mine = res.per_rater[res.per_rater.method == m]
            _, _, lo, hi = rate_interval(mine.fooled.to_numpy(), mine.trials.to_numpy())
            worst = max(worst, abs(lo - table.ci_low[m]), abs(hi - table.ci_high[m]))
            covered += int(table.ci_low[m] <= p <= table.ci_high[m])
        for row in res.pairwise.itertuples():
            d = rates[row.method_a] - rates[row.method_b]
            covered += int(row.ci_low <= d <= row.ci_high)
        total += len(rates) + len(res.pairwise)
    return dict(rater_sd=rater_sd, studies=n_studies, max_abs_diff_from_fast_path=float(worst),
                coverage_all_targets=covered / total)  # fmt: skip


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
    parser.add_argument("--grid", action="store_true", help="the paper's design: rates x rater SD (see grid_coverage)")
    parser.add_argument("--full-studies", type=int, default=0, help="with --grid: also analysis.analyze on N studies")
    args = parser.parse_args(argv)
    if args.grid:
        return _grid_main(args)
    for n_images in args.n_images:
        table = coverage_table(
            n_studies=args.studies, n_boot=args.n_boot, n_images=n_images, seed=args.seed, progress=True
        )
        print(f"\n40 raters x 45 trials, rater/image SD 0.8, image pool {n_images}, {args.studies} studies per rate")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        means = {c: table[f"{c}_coverage"].mean() for c in ("jackknife", "boot", "binomial")}
        print("all rates: " + ", ".join(f"{c} {v:.3f}" for c, v in means.items()))
    if args.glmm_studies:
        print(glmm_coverage(n_studies=args.glmm_studies, seed=args.seed))
    return 0


def _grid_main(args) -> int:
    table = grid_coverage(n_studies=args.studies, n_boot=args.n_boot, seed=args.seed)
    print(f"\npaper's design (40 raters x 40 counted trials, pool 1000, image SD 0.8), {args.studies} studies per cell")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for what in ("default", "boot"):
        col = table[f"{what}_coverage"]
        print(f"{what}: coverage {col.min():.3f}-{col.max():.3f}")
    for sd in (0.4, 1.0) if args.full_studies else ():
        print(full_path_check(sd, n_studies=args.full_studies, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
