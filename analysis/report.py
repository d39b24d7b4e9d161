"""Write an analysis to a folder: the three CSVs of DESIGN.md, the bar chart, `info.json`, and for a
simulated study a `SIMULATED.txt` marker (the CSV columns stay exactly as specified, so the label
lives in the figure, the marker, `info.json`, the printed output and the notebook)."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy
import statsmodels

from analysis.figures import fool_rate_bars
from analysis.fool_rates import Analysis
from analysis.per_image import image_extremes, per_image_table
from analysis.thresholds import method_thresholds, rater_thresholds
from study_app.staircase import StaircaseRule


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_outputs(result: Analysis, out: str | Path, agreement: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write fool_rates.csv, exclusions.csv, pairwise.csv, deviations.csv (settings that differ from the
    study's analysis plan; header only when none), per_image.csv, image_extremes.csv (`analysis.per_image`),
    agreement.csv (people vs machine per image, when `agreement` is given), thresholds.csv and
    rater_thresholds.csv (staircase studies: `analysis.thresholds`), fool_rates.png, info.json
    (+ SIMULATED.txt).

    Rates are fractions in [0, 1] written with full precision. Returns {name: path}.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        name: out / name for name in ("fool_rates.csv", "exclusions.csv", "pairwise.csv", "fool_rates.png", "info.json")
    }
    result.fool_rates.to_csv(paths["fool_rates.csv"], index=False)
    result.exclusions.to_csv(paths["exclusions.csv"], index=False)
    result.pairwise.to_csv(paths["pairwise.csv"], index=False)
    paths["deviations.csv"] = out / "deviations.csv"
    result.deviations.to_csv(paths["deviations.csv"], index=False)
    per_image = per_image_table(result)
    paths["per_image.csv"], paths["image_extremes.csv"] = out / "per_image.csv", out / "image_extremes.csv"
    per_image.to_csv(paths["per_image.csv"], index=False)
    image_extremes(per_image).to_csv(paths["image_extremes.csv"], index=False)
    paths.update(_write_thresholds(result, out))
    if agreement is not None:
        paths["agreement.csv"] = out / "agreement.csv"
        agreement.to_csv(paths["agreement.csv"], index=False)
    if result.fool_rates["fool_rate"].notna().any():
        fig = fool_rate_bars(result.fool_rates, simulated=result.simulated)
        fig.savefig(paths["fool_rates.png"], dpi=150)
        plt.close(fig)
    else:
        del paths["fool_rates.png"]
    info = dict(
        simulated=result.simulated,
        study_db=_redact(result.study.db_url),
        study_info=result.study.info,
        parameters=result.params,
        analysis_plan=dict(
            kind=result.deviations.attrs.get("plan", "implied"),
            sha256=result.study.info.get("analysis_plan_sha256"),
            deviations=result.deviations.to_dict(orient="records"),
        ),
        meaning_of_se="se, ci_low, ci_high: jackknife over raters (leave one rater out, pooled rate), SE and "
        "95 % logit-scale t interval (t with raters - 1 df); pairwise ci_low, ci_high, p_value: Welch t on "
        "those SEs; boot_*: percentile bootstrap over raters (resampled with replacement within a method), "
        "for comparison; glmm_*: crossed rater x image "
        "logistic GLMM, rate marginalised over raters and images; binomial_se: naive "
        "sqrt(p(1-p)/trials), for comparison with the paper only",
        written_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        versions=dict(
            python=platform.python_version(),
            numpy=np.__version__,
            pandas=pd.__version__,
            scipy=scipy.__version__,
            statsmodels=statsmodels.__version__,
        ),
    )
    paths["info.json"].write_text(json.dumps(_jsonable(info), indent=2) + "\n")
    marker = out / "SIMULATED.txt"
    if result.simulated:
        rates = result.study.info.get("true_fool_rates", {})
        marker.write_text(
            "These results come from a SIMULATED study database, not from human raters.\n"
            f"True marginal fool rates of the simulation: {json.dumps(_jsonable(rates))}\n"
        )
        paths["SIMULATED.txt"] = marker
    elif marker.exists():
        marker.unlink()  # a real study written over an old simulated one must not keep the label
    return paths


def _write_thresholds(result: Analysis, out: Path) -> dict[str, Path]:
    """A staircase (HYPE-time) study: thresholds.csv (per method) and rater_thresholds.csv; else nothing."""
    info = result.study.info
    if info.get("exposure_mode") != "staircase":
        return {}
    rule = StaircaseRule.from_json(info.get("staircase"))
    per_rater = rater_thresholds(result.counted, rule)
    table = method_thresholds(per_rater, rule, n_boot=result.params["n_boot"], seed=result.params["seed"])
    paths = {"thresholds.csv": out / "thresholds.csv", "rater_thresholds.csv": out / "rater_thresholds.csv"}
    table.to_csv(paths["thresholds.csv"], index=False)
    per_rater.to_csv(paths["rater_thresholds.csv"], index=False)
    return paths


def _redact(url: str | None) -> str | None:
    """The URL without a password (info.json may be shared)."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
