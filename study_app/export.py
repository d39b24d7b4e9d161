"""Reading a study database: the analysis' contract (STUDY_CONTRACT.md) and `prsr study export`.

- `read_tables(db_url) -> (raters, trials)` as pandas DataFrames with exactly the DESIGN.md columns;
  trials are the ANSWERED, non-voided ones (practice and golden included, flagged). `trial_index`
  is the 0-based position in the rater's session (practice first). `chose_model` is True when the
  non-real image was chosen (for golden trials: the degraded image, i.e. the golden question failed).
  `attempt` is 0 unless earlier attempts at that position were voided; `shown_at` / `answered_at`
  are UTC ISO 8601 (`shown_at` = server time of the answer minus the browser-measured exposure and
  reaction time). Raters carry their platform ids, enrolment/completion times, completion code,
  the environment measured in their browser and their optional `comments` (empty where not
  recorded, e.g. older databases). `exposure_ms` / `reaction_ms` are rounded to 0.1 ms (the
  browser's clock is no finer); `timed_out` is True for an answer after the study's response window.
- `read_voided(db_url)`: every voided attempt (`VOIDED_COLUMNS`; `reason` reload | resize, empty in
  older databases), so that skipped pairs are visible.
- `study_info(db_url) -> dict`: protocol, methods, display and timing, the crowd settings (platform,
  codes, attention rule, response window, texts), whether simulated (and the simulation parameters).
- `write_export(db_url, out)`: `raters.csv`, `trials.csv`, `voided.csv` and `study.json` (study_info).
  Columns are only ever added at the end, so older readers keep working.
- `read_images(db_url, method, image_ids) -> {image_id: (truth, model)}` uint8 [H, W, C].
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

from .analysis_plan import preregistration_markdown, stored_plan
from .builder import decode_png
from .db import open_study
from .schema import images, raters, slots, study, trials, voided_trials
from .store import _aware

_RATER_DB = [
    "participant_id",
    "study_id",
    "session_id",
    "completion_code",
    "enrolled_at",
    "completed_at",
    "viewport_w",
    "viewport_h",
    "device_pixel_ratio",
    "user_agent",
    "refresh_hz",
    "comments",
]
RATER_COLUMNS = ["rater_id", "method", "status", "golden_correct", "golden_total", *_RATER_DB]
TRIAL_COLUMNS = [
    "rater_id",
    "method",
    "image_id",
    "trial_index",
    "attempt",
    "is_practice",
    "is_golden",
    "real_side",
    "choice",
    "chose_model",
    "exposure_ms",
    "reaction_ms",
    "tab_hidden",
    "shown_at",
    "answered_at",
    "timed_out",
    "target_exposure_ms",  # new columns go last: scripts that read an older export by position keep working
]
VOIDED_COLUMNS = [
    "rater_id",
    "method",
    "image_id",
    "trial_index",
    "attempt",
    "is_practice",
    "is_golden",
    "real_side",
    "issued_at",
    "voided_at",
    "reason",
]
# the study row's settings in study.json (client_salt stays out: it keys the stored client hashes)
_SETTINGS = (
    "dataset",
    "n_practice",
    "n_test_trials",
    "n_golden",
    "raters_per_method",
    "display_px",
    "exposure_ms",
    "fixation_ms",
    "response_window_ms",
    "abandon_after_s",
    "golden_kind",
    "attention_max_misses",
    "seed",
    "platform",
    "completion_url",
    "completion_code",
    "require_pid",
    "max_claims_per_client",
    "claim_window_s",
)
TIME_DECIMALS = 1  # exported exposure and reaction times: 0.1 ms


def _iso(values) -> list:
    """UTC ISO 8601 text (None stays None) of datetimes read from SQLite (naive, UTC) or PostgreSQL."""
    out = []
    for v in values:
        if v is None or pd.isna(v):  # pandas turns a missing time into NaT
            out.append(None)
            continue
        ts = pd.Timestamp(v)
        out.append((ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).isoformat())
    return out


def read_tables(db_url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(raters, trials) of the study at `db_url`; see the module docstring for the columns."""
    engine = open_study(db_url)
    with engine.connect() as conn:
        r = pd.DataFrame(
            conn.execute(
                select(raters.c.rater_id, raters.c.method, raters.c.status, *(raters.c[c] for c in _RATER_DB)).order_by(
                    raters.c.enrolled_at, raters.c.rater_id
                )
            ).all(),
            columns=["rater_id", "method", "status", *_RATER_DB],
        )
        t = pd.DataFrame(
            conn.execute(
                select(
                    trials.c.rater_id,
                    raters.c.method,
                    trials.c.image_id,
                    trials.c.trial_index,
                    trials.c.attempt,
                    trials.c.is_practice,
                    trials.c.is_golden,
                    trials.c.real_side,
                    trials.c.choice,
                    trials.c.exposure_ms,
                    trials.c.reaction_ms,
                    trials.c.tab_hidden,
                    trials.c.shown_at,
                    trials.c.answered_at,
                    trials.c.timed_out,
                    trials.c.target_exposure_ms,
                )
                .join(raters, raters.c.rater_id == trials.c.rater_id)
                .where(trials.c.answered_at.is_not(None))
                .order_by(trials.c.rater_id, trials.c.trial_index)
            ).all(),
            columns=[c for c in TRIAL_COLUMNS if c != "chose_model"],
        )
    for frame, cols in ((r, ("enrolled_at", "completed_at")), (t, ("shown_at", "answered_at"))):
        for col in cols:
            frame[col] = pd.Series(_iso(frame[col].tolist()), index=frame.index, dtype=object)
    t["attempt"] = t["attempt"].astype(int)
    t["timed_out"] = t["timed_out"].fillna(False)  # NULL before response windows existed: none
    for col in ("is_practice", "is_golden", "tab_hidden", "timed_out"):
        t[col] = t[col].astype(bool)
    t["trial_index"] = t["trial_index"].astype(int)
    t["exposure_ms"] = t["exposure_ms"].astype(float).round(TIME_DECIMALS)
    t["target_exposure_ms"] = t["target_exposure_ms"].astype(float)  # NaN: issued before it was recorded
    t["reaction_ms"] = t["reaction_ms"].astype(float).round(TIME_DECIMALS)
    t["chose_model"] = (t["choice"] != t["real_side"]).astype(bool)
    t = t[TRIAL_COLUMNS].reset_index(drop=True)
    golden = t[t["is_golden"] & ~t["is_practice"]]
    stats = golden.groupby("rater_id")["chose_model"].agg(golden_total="size", golden_failed="sum")
    r = r.merge(stats, how="left", left_on="rater_id", right_index=True)
    r["golden_total"] = r["golden_total"].fillna(0).astype(int)
    r["golden_correct"] = (r["golden_total"] - r["golden_failed"].fillna(0)).astype(int)
    return r[RATER_COLUMNS].reset_index(drop=True), t


def read_voided(db_url: str) -> pd.DataFrame:
    """Every voided attempt (`VOIDED_COLUMNS`; times UTC ISO 8601), by rater and time."""
    engine = open_study(db_url)
    v = voided_trials
    with engine.connect() as conn:
        out = pd.DataFrame(
            conn.execute(
                select(
                    v.c.rater_id,
                    raters.c.method,
                    v.c.image_id,
                    v.c.trial_index,
                    v.c.attempt,
                    v.c.is_practice,
                    v.c.is_golden,
                    v.c.real_side,
                    v.c.issued_at,
                    v.c.voided_at,
                    v.c.reason,
                )
                .join(raters, raters.c.rater_id == v.c.rater_id)
                .order_by(v.c.rater_id, v.c.voided_at, v.c.id)
            ).all(),
            columns=VOIDED_COLUMNS,
        )
    for col in ("issued_at", "voided_at"):
        out[col] = pd.Series(_iso(out[col].tolist()), index=out.index, dtype=object)
    for col in ("is_practice", "is_golden"):
        out[col] = out[col].astype(bool)
    return out


def study_info(db_url: str) -> dict:
    """The study's description and settings: `simulated`, `methods`, `created_at` (ISO 8601), the
    protocol (`n_test_trials`, `n_practice`, `n_golden`, `raters_per_method`, `golden_kind`, `seed`),
    display and timing (`display_px`, `exposure_ms`, `fixation_ms`, `response_window_ms`: None = no
    window; `exposure_mode` fixed | staircase, with its rule in `staircase`), the attention rule
    (`attention_max_misses`: None = never screened out), the crowd settings (`platform`, `completion_url`,
    `completion_code`, `require_pid`, `screenout`, `max_claims_per_client`, `claim_window_s`, `texts`), and
    for simulated studies the simulation parameters (`true_fool_rates`, `rater_sd`, `image_sd`, `seed`, ...),
    which override `seed`."""
    engine = open_study(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(study).where(study.c.id == 1)).mappings().first()
    if row is None:
        raise ValueError(f"{db_url} holds no study; create one with `prsr study init`")
    info = {k: row[k] for k in _SETTINGS}
    info["require_pid"] = bool(info["require_pid"])
    info["screenout"] = json.loads(row["screenout"] or "{}")
    info["texts"] = json.loads(row["texts"] or "{}")
    info["methods"] = json.loads(row["methods"])
    info["simulated"] = bool(row["simulated"])
    info["created_at"] = _aware(row["created_at"]).isoformat()
    info["exposure_mode"] = row["exposure_mode"] or "fixed"  # NULL: made before staircases existed
    info["staircase"] = json.loads(row["staircase"]) if row["staircase"] else None
    if row["sim_params"]:
        info.update(json.loads(row["sim_params"]))
    if row["analysis_plan"]:  # studies made before analysis plans have none
        info["analysis_plan"] = json.loads(row["analysis_plan"])
        info["analysis_plan_sha256"] = row["analysis_plan_sha256"]
    return info


def read_images(db_url: str, method: str, image_ids) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{image_id: (truth, model)} uint8 [H, W, C] for the given ids of `method` (or "golden")."""
    ids = [str(i) for i in image_ids]
    engine = open_study(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(images.c.kind, images.c.image_id, images.c.png).where(
                images.c.kind.in_(["truth", method]), images.c.image_id.in_(ids)
            )
        ).all()
    found = {(k, i): png for k, i, png in rows}
    missing = [i for i in ids if ("truth", i) not in found or (method, i) not in found]
    if missing:
        raise ValueError(f"{db_url}: no images of method {method!r} for ids {missing[:5]}")
    return {i: (decode_png(found[("truth", i)]), decode_png(found[(method, i)])) for i in ids}


def write_export(db_url: str, out: str | Path) -> dict[str, Path]:
    """Write `raters.csv`, `trials.csv`, `voided.csv`, `study.json` and, for a study with an analysis
    plan, `preregistration.md` into `out` (created), each atomically; returns {file name: path}."""
    # lazy: the sr_data package imports torch (~2 s), which the app (a reader of this module) never needs
    from sr_data.files import atomic_write_json, atomic_write_text  # noqa: PLC0415

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    r, t = read_tables(db_url)
    frames = {"raters.csv": r, "trials.csv": t, "voided.csv": read_voided(db_url)}
    paths = {name: out / name for name in (*frames, "study.json")}
    for name, frame in frames.items():
        atomic_write_text(paths[name], frame.to_csv(index=False))
    info = study_info(db_url)
    atomic_write_json(paths["study.json"], info)
    if "analysis_plan" in info:
        paths["preregistration.md"] = out / "preregistration.md"
        atomic_write_text(paths["preregistration.md"], preregistration(info))
    return paths


def preregistration(info: dict) -> str:
    """The pre-registration markdown of a study's stored analysis plan (`study_info` dict); a plan whose
    text no longer matches its stored sha256 is rendered with a warning line at the top."""
    found = stored_plan(info)
    if found is None:
        raise ValueError("this study has no analysis plan (made before `prsr study init` stored one)")
    plan, sha, intact = found
    text = preregistration_markdown(plan, sha, dataset=info.get("dataset", ""), created_at=info.get("created_at", ""))
    if not intact:
        text = f"**WARNING: the stored plan does not match its sha256 {sha}: it was changed after init.**\n\n{text}"
    return text


def write_csvs(db_url: str, out: str | Path) -> tuple[Path, Path, Path]:
    """`write_export`, returning the paths of raters.csv, trials.csv and voided.csv (study.json is written too)."""
    paths = write_export(db_url, out)
    return paths["raters.csv"], paths["trials.csv"], paths["voided.csv"]


def progress_table(db_url: str) -> pd.DataFrame:
    """Per method: `slots`, raters `complete` / `in_progress` / `abandoned`, and counted `trials` answered."""
    engine = open_study(db_url)
    with engine.connect() as conn:
        s = pd.DataFrame(conn.execute(select(slots.c.method)).all(), columns=["method"])
    r, t = read_tables(db_url)
    out = s.groupby("method").size().rename("slots").to_frame()
    for status in ("complete", "in_progress", "abandoned"):
        out[status] = r[r.status == status].groupby("method").size().reindex(out.index, fill_value=0)
    out["trials"] = t[~t.is_practice].groupby("method").size().reindex(out.index, fill_value=0)
    methods = study_info(db_url)["methods"]
    return out.reindex(methods).fillna(0).astype(int).reset_index()
