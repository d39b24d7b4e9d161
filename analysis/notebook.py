"""Execute `analysis/fool_rate_analysis.ipynb` headless (nbconvert) against a study database.

The notebook reads its inputs from the environment: `PRSR_STUDY_DB` (SQLAlchemy URL) and
`PRSR_ANALYSIS_PARAMS` (JSON of `analysis.analyze` keyword arguments, e.g. `{"n_boot": 10000}`) and
optionally `PRSR_TABLE1` (a `table1.csv` whose machine-observer rates are shown beside the study's; by
default one found next to the study database).
The kernel inherits this process' environment, so setting them here reaches the notebook.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

NOTEBOOK = Path(__file__).with_name("fool_rate_analysis.ipynb")
ENV_DB = "PRSR_STUDY_DB"
ENV_PARAMS = "PRSR_ANALYSIS_PARAMS"
ENV_TABLE1 = "PRSR_TABLE1"


def execute_notebook(
    db_url: str, out: str | Path, params: dict | None = None, *, table1: str | Path | None = None, timeout_s: int = 900
) -> tuple[Path, Path]:
    """Run the notebook on `db_url`, write the executed `fool_rate_analysis.ipynb` and `.html` into `out`.

    params: keyword arguments for `analysis.analyze` (JSON-serialisable). table1: `table1.csv` with the
    machine observer's rates (default: one next to the study database, if any). Raises nbconvert's
    `CellExecutionError` (with the failing cell's traceback) if any cell fails.
    """
    # lazy: nbformat / nbconvert are heavy and only `prsr analyze --notebook` executes the notebook
    import nbformat  # noqa: PLC0415
    from nbconvert import HTMLExporter  # noqa: PLC0415
    from nbconvert.preprocessors import ExecutePreprocessor  # noqa: PLC0415

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    saved = {k: os.environ.get(k) for k in (ENV_DB, ENV_PARAMS, ENV_TABLE1, "MPLBACKEND")}
    os.environ[ENV_DB] = db_url
    os.environ[ENV_PARAMS] = json.dumps(params or {})
    if table1:
        os.environ[ENV_TABLE1] = str(Path(table1).resolve())
    else:
        os.environ.pop(ENV_TABLE1, None)
    os.environ.pop("MPLBACKEND", None)  # the kernel picks its inline backend
    try:
        ExecutePreprocessor(timeout=timeout_s, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(out)}})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    ipynb = out / NOTEBOOK.name
    nbformat.write(nb, ipynb)
    html, _ = HTMLExporter().from_notebook_node(nb)
    html_path = ipynb.with_suffix(".html")
    html_path.write_text(html, encoding="utf-8")
    return ipynb, html_path
