"""The check on the bootstrap: a logistic mixed model with crossed random effects for rater and image.

Model (one method at a time): logit P(fooled) = b0 + u_rater + v_image, u ~ N(0, s_r^2), v ~ N(0, s_i^2),
fitted by statsmodels' `BinomialBayesMixedGLM` (mean-field variational Bayes, N(0, 1) prior on the log
SDs, N(0, 2^2) on b0). The reported rate is *marginalised* over raters and images,
E[sigmoid(b0 + u + v)] (`study_app.fool_model.marginal_rate`), the same quantity the simulations call the
true rate; its 95 % interval comes from draws of (b0, log s_r, log s_i) from the fitted posterior, with
the intercept's SD widened for what mean-field VB leaves out (see `fit_glmm`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from study_app.fool_model import marginal_rate


@dataclass
class GlmmResult:
    """Marginal fool rate (fraction) with its 95 % interval, and the fitted parameters (logit scale)."""

    rate: float
    ci_low: float
    ci_high: float
    intercept: float
    rater_sd: float
    image_sd: float


def fit_glmm(trials: pd.DataFrame, *, n_draws: int = 2000, seed: int = 0, level: float = 0.95) -> GlmmResult:
    """Fit the crossed random-effects model to one method's counted trials.

    trials: rows with columns `rater_id`, `image_id`, `chose_model` (bool), all counted trials of one method.
    """
    # lazy: statsmodels takes ~1 s to import and only the GLMM check (off with --no-glmm) needs it
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM  # noqa: PLC0415

    missing = {"rater_id", "image_id", "chose_model"} - set(trials.columns)
    if missing:
        raise ValueError(f"GLMM needs columns rater_id, image_id, chose_model; missing {sorted(missing)}")
    if len(trials) == 0:
        raise ValueError("GLMM needs at least one counted trial")
    y = trials["chose_model"].to_numpy(dtype=float)
    raters = pd.factorize(trials["rater_id"])[0]
    images = pd.factorize(trials["image_id"])[0]
    n = len(y)
    exog = np.ones((n, 1))
    # random-effect design: one indicator column per rater, then per image (sparse would help only for
    # far bigger studies; 2,000 trials x ~1,000 columns is a few MB)
    z_r = np.zeros((n, raters.max() + 1))
    z_r[np.arange(n), raters] = 1.0
    z_i = np.zeros((n, images.max() + 1))
    z_i[np.arange(n), images] = 1.0
    exog_vc = np.hstack([z_r, z_i])
    ident = np.concatenate([np.zeros(z_r.shape[1], dtype=int), np.ones(z_i.shape[1], dtype=int)])
    model = BinomialBayesMixedGLM(
        y, exog, exog_vc, ident, vcp_p=1.0, fe_p=2.0, fep_names=["intercept"], vcp_names=["rater", "image"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from the optimiser; the result is checked below
        # L-BFGS-B: the same optimum as the default BFGS (checked to 4 digits) without BFGS's dense
        # inverse Hessian over all ~2 x (raters + images) variational parameters, which dominated the time;
        # a fixed rng makes the random starting point, hence the fit, reproducible
        res = model.fit_vb(fit_method="L-BFGS-B", rng=seed)
    b0, vb_sd = float(res.fe_mean[0]), float(res.fe_sd[0])
    log_sd, log_sd_sd = np.asarray(res.vcp_mean, float), np.asarray(res.vcp_sd, float)
    if not np.all(np.isfinite([b0, vb_sd, *log_sd, *log_sd_sd])):
        raise RuntimeError("GLMM fit did not converge to finite values")
    s_r, s_i = np.exp(log_sd)
    # Mean-field VB treats the intercept as independent of the random effects, so its SD holds only the
    # Bernoulli noise. The intercept is confounded with the trial-weighted mean of the rater and image
    # effects, whose variance is s^2 * sum(n_g^2) / N^2 for groups g with n_g trials: add it back.
    w_r = np.bincount(raters) / n
    w_i = np.bincount(images) / n
    b0_sd = float(np.sqrt(vb_sd**2 + s_r**2 * np.sum(w_r**2) + s_i**2 * np.sum(w_i**2)))
    rate = marginal_rate(b0, s_r, s_i)
    rng = np.random.default_rng(seed)
    draws_b0 = rng.normal(b0, b0_sd, n_draws)
    draws_sd = np.exp(rng.normal(log_sd, log_sd_sd, size=(n_draws, 2)))
    draws = np.array([marginal_rate(b, r, i) for b, (r, i) in zip(draws_b0, draws_sd)])
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(draws, [alpha, 1.0 - alpha])
    return GlmmResult(
        rate=float(rate), ci_low=float(lo), ci_high=float(hi), intercept=b0, rater_sd=float(s_r), image_sd=float(s_i)
    )
