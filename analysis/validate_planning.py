"""Bench: the plan's fast-path half-width against the full `prsr analyze` estimator at one design.

    python -m analysis.validate_planning [--studies 100] [--raters 40] [--trials 40] [--images 1000]

Simulates `--studies` studies as contract tables (`analysis.simulation.simulate_trials`), analyses each
with `analysis.analyze` (its default jackknife interval; bootstrap columns with 2,000 resamples; no GLMM)
and prints each method's mean 95 % half-width beside `analysis.planning.simulate_design`'s prediction
(500 studies) and their ratio.
Kept out of `make bench` (a minute or two on one core).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import analysis
from analysis.planning import Design, simulate_design
from analysis.simulation import simulate_trials


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--studies", type=int, default=100)
    p.add_argument("--raters", type=int, default=40)
    p.add_argument("--trials", type=int, default=40, help="counted trials per rater (45 with 5 golden)")
    p.add_argument("--images", type=int, default=1000)
    args = p.parse_args(argv)
    rates = {"gan": 0.10, "pixel_recursive_t1.0": 0.30}
    design = Design(args.raters, args.trials, 0, args.images, exclusion_rate=0.0)
    t0 = time.perf_counter()
    predicted = simulate_design(rates, design, n_studies=500, n_boot=2000)["methods"]
    fast_s = time.perf_counter() - t0
    widths = {m: [] for m in rates}
    t0 = time.perf_counter()
    for s in range(args.studies):
        tables = simulate_trials(rates, n_raters=args.raters, n_trials=args.trials, n_images=args.images, seed=s)
        table = analysis.analyze(tables, n_boot=2000, glmm=False, seed=s).fool_rates.set_index("method")
        for m in rates:
            widths[m].append((table.ci_high[m] - table.ci_low[m]) / 2)
    full_s = time.perf_counter() - t0
    print(f"design {args.raters} raters x {args.trials} counted trials, pool {args.images}, rater/image SD 0.8")
    for m in rates:
        full = float(np.mean(widths[m]))
        ratio = predicted[m]["ci_halfwidth"] / full
        plan = 100 * predicted[m]["ci_halfwidth"]
        print(f"  {m:22s} plan {plan:.2f}  analyze {100 * full:.2f} points  ratio {ratio:.3f}")
    print(f"fast path 500 studies {fast_s:.1f} s; full analyze {args.studies} studies {full_s:.1f} s")


if __name__ == "__main__":
    main()
