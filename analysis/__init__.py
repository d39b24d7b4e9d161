"""Fool-rate analysis of the 2AFC study: exclusion rules, bootstrap-over-raters intervals, the GLMM
check, pairwise tests, figures and the analysis notebook.

    import analysis
    table = analysis.fool_rates("sqlite:///study.db")        # fool_rates.csv columns, attrs["simulated"]
    result = analysis.analyze("sqlite:///study.db")          # .fool_rates, .exclusions, .pairwise, ...
"""

from analysis.fool_rates import (
    Analysis,
    StudyData,
    analyze,
    apply_exclusions,
    exclusions,
    fool_rates,
    load_study,
    pairwise,
    per_image_rates,
    temperature_of,
)

__all__ = [
    "Analysis",
    "StudyData",
    "analyze",
    "apply_exclusions",
    "exclusions",
    "fool_rates",
    "load_study",
    "pairwise",
    "per_image_rates",
    "temperature_of",
]
