"""The study's trial logic as plain functions: the Streamlit app, the simulator and the tests call these.

A rater's whole trial list lives in the database, never in a browser session:

- `enrol(engine, pid)` returns the rater's enrolment. A new participant claims the lowest free slot
  (slots interleave the methods, so methods fill evenly) in the same transaction that creates the
  rater and copies the slot's planned trials; a returning participant resumes and never gets a
  second slot. Slots of raters idle for longer than the study's `abandon_after_s` are freed first.
- `next_trial(engine, rater_id)` issues the first unanswered trial. If that trial had already been
  issued (the page was refreshed while it was on screen) it is voided — copied to `voided_trials`
  with reason `reload` — and replaced by a new pair, with a new `attempt` number. `void_trial` does
  the same for a pair whose window changed size during the exposure (reason `resize`).
  The replacement rule: the replacement image is drawn at random from the pool images this rater has
  not been shown (in any trial or voided attempt); when the rater has seen every image of the pool,
  the voided image itself is shown again (with a new left/right draw). `init` reports how many
  images the pool holds beyond one session (`spare_images`).
- `record_answer(...)` stores an answer for (rater, trial_index, attempt) once: a second submission
  of the same answer is reported as `duplicate` and changes nothing; an answer to a voided attempt
  is `stale` and ignored. With a response window (`study.response_window_ms`), an answer whose
  browser-measured `reaction_ms` (from the erase of the pair to the choice) exceeds the window is
  stored with `timed_out` true: it is kept, not voided, never counts as a golden miss, and the
  analysis leaves it out of the fool rates (its own `timeout` rule).

- Participant ids are compared trimmed and case-insensitively: `rater_id` is the lower-case form,
  `participant_id` keeps the id as the platform gave it.
- Slot claims are rate-limited per client (`max_claims_per_client` per `claim_window_s`, counted in
  the `rate_events` table, so every app process sees the same counts); admin attempts likewise.

- Several app processes may share one database: every decision (slots, trial order, voiding, rate
  limits) is made in a database transaction, never in process memory. The operations marked with
  `retry_on_disconnect` are idempotent and rerun after a lost connection (a database restart); a
  rerun of `next_trial` after a commit whose acknowledgement was lost voids the trial it had just
  issued (never shown) and issues a replacement, like a refresh would.

Nothing here builds SQL from text: values reach the database only as bound parameters.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import numpy as np
from PIL import Image
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .db import retry_on_disconnect
from .schema import images, plan_items, rate_buckets, rate_events, raters, slots, study, trials, voided_trials
from .staircase import StaircaseRule, exposures_for

SIDES = ("left", "right")
_PID_RE = re.compile(r"^[A-Za-z0-9_.@:+-]{1,64}$")


class StudyFull(RuntimeError):
    """Every rater slot is taken or complete."""


class SessionExpired(RuntimeError):
    """The rater's slot was reclaimed after inactivity (or the id is unknown)."""


class TooManyClaims(RuntimeError):
    """This client claimed `max_claims_per_client` slots within `claim_window_s` already."""


DEFAULT_MAX_CLAIMS = 5  # slot claims per client per window, for databases that do not set it
DEFAULT_CLAIM_WINDOW_S = 3600
ADMIN_MAX_FAILURES = 5  # wrong admin secrets per client per ADMIN_WINDOW_S before attempts are refused
ADMIN_WINDOW_S = 600
RATE_EVENTS_KEEP_S = 86400  # rate events older than this (and than their window) are deleted
ENV_FIELDS = ("viewport_w", "viewport_h", "device_pixel_ratio", "user_agent", "refresh_hz")
ID_FIELDS = ("participant_id", "study_id", "session_id", "platform")


@dataclass(frozen=True)
class Enrolment:
    rater_id: str
    method: str
    status: str  # in_progress | complete | abandoned | screened_out
    resumed: bool
    completion_code: str | None


@dataclass(frozen=True)
class Trial:
    """One issued trial. `trial_index` is 0-based over the practice trials, then the counted ones."""

    rater_id: str
    trial_index: int
    attempt: int
    method: str
    image_id: str
    is_practice: bool
    is_golden: bool
    real_side: str  # "left" | "right": where the ground-truth image is shown
    n_practice: int
    n_test: int
    exposure_ms: float = 1000.0  # the exposure this pair is issued with (the study's, or its staircase's step)

    @property
    def token(self) -> str:
        """A key unique to this issue of this trial (a new attempt gets a new token)."""
        return f"{self.rater_id}|{self.trial_index}|{self.attempt}"


@dataclass(frozen=True)
class AnswerResult:
    status: str  # recorded | duplicate | stale
    correct: bool | None  # the real image was chosen (None when stale)
    complete: bool  # the rater has answered every trial
    screened_out: bool = False  # this answer failed the study's attention rule: the session ends
    timed_out: bool = False  # the answer came after the study's response window


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(t: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; every time stored here is UTC
    if t is not None and t.tzinfo is None:
        return t.replace(tzinfo=timezone.utc)
    return t


def validate_participant_id(pid: object) -> str:
    """`pid` if it is a short printable id (1-64 of A-Z a-z 0-9 _ . @ : + -); ValueError otherwise."""
    if not isinstance(pid, str) or not _PID_RE.fullmatch(pid):
        shown = repr(pid)[:80]
        raise ValueError(f"invalid participant id {shown}: expected 1-64 characters of A-Z a-z 0-9 _ . @ : + -")
    return pid


def normalise_participant_id(pid: object) -> str:
    """The rater id of a participant id: trimmed, validated, lower-case (so `CaseTest` is `casetest`)."""
    return validate_participant_id(pid.strip() if isinstance(pid, str) else pid).lower()


def new_resume_token() -> str:
    """A random participant id for raters who arrive without `?pid=` (20 lower-case hex characters)."""
    return secrets.token_hex(10)


def client_key(address: str | None, salt: str) -> str | None:
    """A salted hash (32 hex characters) of a client address: equal for equal addresses, not reversible
    without the study's salt. None when the address is unknown."""
    if not address:
        return None
    return hashlib.sha256(f"{salt}|{address.strip().lower()}".encode()).hexdigest()[:32]


def _lock_bucket(conn, kind: str, key: str) -> None:
    """Serialise this client's rate checks: insert its bucket row if missing, then lock it."""
    name = conn.dialect.name
    if name in ("postgresql", "sqlite"):
        dialect_insert = __import__(f"sqlalchemy.dialects.{name}", fromlist=["insert"]).insert
        conn.execute(dialect_insert(rate_buckets).values(kind=kind, client_key=key).on_conflict_do_nothing())
    elif (
        conn.execute(select(rate_buckets).where(rate_buckets.c.kind == kind, rate_buckets.c.client_key == key)).first()
        is None
    ):
        conn.execute(insert(rate_buckets).values(kind=kind, client_key=key))
    conn.execute(
        select(rate_buckets).where(rate_buckets.c.kind == kind, rate_buckets.c.client_key == key).with_for_update()
    ).first()


def _prune_events(conn, kind: str, now: datetime, window_s: int) -> None:
    """Delete `kind` events older than both the rate window and RATE_EVENTS_KEEP_S, in the caller's
    transaction: no rate check looks that far back, and rate_events stays as small as a day's traffic
    (the last day of admin attempts stays readable as a log)."""
    before = now - timedelta(seconds=max(window_s, RATE_EVENTS_KEEP_S))
    conn.execute(delete(rate_events).where(rate_events.c.kind == kind, rate_events.c.at < before))


def _events(conn, kind: str, key: str, since: datetime, outcomes: tuple[str, ...]) -> int:
    return conn.execute(
        select(func.count())
        .select_from(rate_events)
        .where(
            rate_events.c.kind == kind,
            rate_events.c.client_key == key,
            rate_events.c.at >= since,
            rate_events.c.outcome.in_(outcomes),
        )
    ).scalar_one()


def admin_attempt(
    engine: Engine,
    key: str | None,
    correct: bool,
    *,
    now: datetime | None = None,
    max_failures: int = ADMIN_MAX_FAILURES,
    window_s: int = ADMIN_WINDOW_S,
) -> str:
    """Log one admin login attempt; "ok", "wrong", or "limited" (more than `max_failures` wrong
    attempts from this client in `window_s`: refused whatever was typed, and logged as such)."""
    now = now or utcnow()
    key = key or "unknown"
    with engine.begin() as conn:
        _lock_bucket(conn, "admin", key)
        _prune_events(conn, "admin", now, window_s)
        failures = _events(conn, "admin", key, now - timedelta(seconds=window_s), ("wrong", "limited"))
        outcome = "limited" if failures >= max_failures else ("ok" if correct else "wrong")
        conn.execute(insert(rate_events).values(kind="admin", client_key=key, at=now, outcome=outcome))
    return outcome


def _study_row(conn):
    row = conn.execute(select(study).where(study.c.id == 1)).mappings().first()
    if row is None:
        raise ValueError("the database holds no study; create one with `prsr study init`")
    return row


@retry_on_disconnect
def study_settings(engine: Engine) -> dict:
    """The study row as a dict (protocol sizes, display size, exposure, ...)."""
    with engine.connect() as conn:
        return dict(_study_row(conn))


def _reclaim_abandoned(conn, now: datetime, abandon_after_s: int) -> int:
    """Mark raters idle for longer than `abandon_after_s` as abandoned and free their slots."""
    cutoff = now - timedelta(seconds=abandon_after_s)
    stale = conn.execute(
        select(raters.c.rater_id, raters.c.slot_id)
        .where(raters.c.status == "in_progress", raters.c.last_seen_at < cutoff)
        .with_for_update(skip_locked=True)
    ).all()
    for rater_id, slot_id in stale:
        conn.execute(update(raters).where(raters.c.rater_id == rater_id).values(status="abandoned"))
        conn.execute(
            update(slots)
            .where(slots.c.slot_id == slot_id, slots.c.rater_id == rater_id)
            .values(status="free", rater_id=None)
        )
    return len(stale)


@retry_on_disconnect
def reclaim_abandoned(engine: Engine, *, now: datetime | None = None) -> int:
    """Free the slots of raters idle for longer than the study's timeout; returns how many."""
    now = now or utcnow()
    with engine.begin() as conn:
        return _reclaim_abandoned(conn, now, _study_row(conn)["abandon_after_s"])


def _enrolment(row, resumed: bool) -> Enrolment:
    return Enrolment(row["rater_id"], row["method"], row["status"], resumed, row["completion_code"])


def _find_rater(conn, rid: str, *, lock: bool = False):
    """The rater row whose id equals `rid` case-insensitively (older databases kept ids as given)."""
    q = select(raters).where(func.lower(raters.c.rater_id) == rid).order_by(raters.c.enrolled_at).limit(1)
    return conn.execute(q.with_for_update() if lock else q).mappings().first()


def _clean_env(env: dict | None) -> dict:
    """The environment fields of `env` (numbers checked, the user agent cut to 512 characters)."""
    out = {}
    for k in ENV_FIELDS:
        v = (env or {}).get(k)
        if v is None:
            continue
        if k == "user_agent":
            out[k] = str(v)[:512]
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(x) and 0 <= x < 1e5:
            out[k] = int(round(x)) if k in ("viewport_w", "viewport_h") else x
    return out


def _check_claims(conn, settings, client: str | None, now: datetime) -> None:
    """TooManyClaims if `client` made the study's `max_claims_per_client` claims in its window."""
    limit = settings.get("max_claims_per_client")
    limit = DEFAULT_MAX_CLAIMS if limit is None else limit
    if not client or limit <= 0:
        return
    _lock_bucket(conn, "claim", client)
    window = settings.get("claim_window_s") or DEFAULT_CLAIM_WINDOW_S
    _prune_events(conn, "claim", now, window)
    if _events(conn, "claim", client, now - timedelta(seconds=window), ("claimed",)) >= limit:
        raise TooManyClaims(
            f"this connection took {limit} places in the last {window // 60} minutes; no further place is given to it"
        )


def _claim_slot(conn, pid: str, id_source: str, now: datetime, client: str | None, values: dict) -> Enrolment:
    """Give `pid` the lowest free slot, create the rater (with `values`: platform ids and environment)
    and copy the slot's planned trials; StudyFull when no slot is free."""
    slot = conn.execute(
        select(slots.c.slot_id, slots.c.method)
        .where(slots.c.status == "free")
        .order_by(slots.c.slot_order)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if slot is None:
        raise StudyFull("every rater slot of this study is taken; thank you for your interest")
    conn.execute(
        insert(raters).values(
            rater_id=pid,
            id_source=id_source,
            slot_id=slot.slot_id,
            method=slot.method,
            status="in_progress",
            enrolled_at=now,
            last_seen_at=now,
            client_key=client,
            **values,
        )
    )
    if client:
        conn.execute(insert(rate_events).values(kind="claim", client_key=client, at=now, outcome="claimed"))
    conn.execute(update(slots).where(slots.c.slot_id == slot.slot_id).values(status="taken", rater_id=pid))
    plan = conn.execute(
        select(plan_items).where(plan_items.c.slot_id == slot.slot_id).order_by(plan_items.c.position)
    ).mappings()
    conn.execute(
        insert(trials),
        [
            dict(
                rater_id=pid,
                trial_index=p["position"],
                is_practice=p["is_practice"],
                is_golden=p["is_golden"],
                image_id=p["image_id"],
                real_side=p["real_side"],
                attempt=0,
            )
            for p in plan.all()
        ],
    )
    return Enrolment(pid, slot.method, "in_progress", False, None)


@retry_on_disconnect
def enrol(
    engine: Engine,
    participant_id: str,
    *,
    id_source: str = "pid",
    now: datetime | None = None,
    client: str | None = None,
    ids: dict | None = None,
    env: dict | None = None,
) -> Enrolment:
    """Enrol `participant_id` (trimmed, validated, compared case-insensitively) or resume it.

    `client`: the client's key (`client_key`); a NEW claim from a client that made
    `max_claims_per_client` claims in the last `claim_window_s` raises TooManyClaims (resuming is
    never limited). `ids`: platform ids (participant_id, study_id, session_id, platform) and `env`:
    the measured environment, stored with a new rater (and the environment refreshed on resume).
    Raises StudyFull when no slot is free. A returning rater whose slot was reclaimed gets an
    enrolment with status "abandoned" (never a second slot).
    """
    pid = normalise_participant_id(participant_id)
    if id_source not in ("pid", "token"):
        raise ValueError(f"id_source must be 'pid' or 'token', got {id_source!r}")
    now = now or utcnow()
    env = _clean_env(env)
    given = {k: (str(v)[:64] if v is not None else None) for k, v in (ids or {}).items() if k in ID_FIELDS}
    given.setdefault("participant_id", participant_id.strip())
    for _ in range(3):  # an IntegrityError means the same id enrolled concurrently: resume it
        try:
            with engine.begin() as conn:
                existing = _find_rater(conn, pid, lock=True)
                if existing is not None:
                    if existing["status"] == "in_progress":
                        conn.execute(
                            update(raters)
                            .where(raters.c.rater_id == existing["rater_id"])
                            .values(last_seen_at=now, **env)
                        )
                    return _enrolment(existing, resumed=True)
                settings = _study_row(conn)
                _reclaim_abandoned(conn, now, settings["abandon_after_s"])
                _check_claims(conn, settings, client, now)
                return _claim_slot(conn, pid, id_source, now, client, {**given, **env})
        except IntegrityError:
            continue
    raise RuntimeError(f"could not enrol {pid!r}: repeated conflicts")


def _replacement_image(conn, rater_id: str, trial_index: int, attempt: int, current: str) -> str:
    """An image id of the pool this rater has not been shown (the voided image if none is left)."""
    pool = (
        conn.execute(select(images.c.image_id).where(images.c.kind == "truth").order_by(images.c.image_id))
        .scalars()
        .all()
    )
    seen = set(conn.execute(select(trials.c.image_id).where(trials.c.rater_id == rater_id)).scalars())
    seen |= set(conn.execute(select(voided_trials.c.image_id).where(voided_trials.c.rater_id == rater_id)).scalars())
    unseen = [i for i in pool if i not in seen]
    if not unseen:
        return current
    return random.Random(f"{rater_id}:{trial_index}:{attempt}").choice(unseen)


def _complete(conn, rater_id: str, slot_id: int | None, now: datetime) -> str:
    # a study-wide code (Prolific's usual set-up) or one random code per rater
    code = _study_row(conn).get("completion_code") or secrets.token_hex(4).upper()
    conn.execute(
        update(raters)
        .where(raters.c.rater_id == rater_id)
        .values(status="complete", completed_at=now, completion_code=code, last_seen_at=now)
    )
    if slot_id is not None:
        conn.execute(
            update(slots).where(slots.c.slot_id == slot_id, slots.c.rater_id == rater_id).values(status="complete")
        )
    return code


def _lock_rater(conn, rater_id: str, now: datetime):
    """Lock the rater's row (serialising this rater's transactions) and record activity, in one
    statement: an UPDATE takes the row lock on PostgreSQL, and SQLite's BEGIN IMMEDIATE already holds
    the write lock."""
    row = (
        conn.execute(update(raters).where(raters.c.rater_id == rater_id).values(last_seen_at=now).returning(*raters.c))
        .mappings()
        .first()
    )
    if row is None:
        raise SessionExpired(f"unknown rater id {rater_id!r}")
    return row


class _Fixed(NamedTuple):
    """What the study fixes at init, read once per database URL."""

    n_practice: int
    n_test_trials: int
    response_window_ms: int | None
    exposure_ms: int
    staircase: StaircaseRule | None  # None: the exposure is fixed


_FIXED: dict[str, _Fixed] = {}


def _sizes(conn) -> tuple[int, int]:
    """(n_practice, n_test_trials) of the study."""
    return _fixed(conn)[:2]


def _fixed(conn) -> _Fixed:
    """The study's settings fixed at init, cached per database URL."""
    key = str(conn.engine.url)
    if key not in _FIXED:
        row = _study_row(conn)
        staircase = row.get("exposure_mode") == "staircase"
        rule = StaircaseRule.from_json(json.loads(row["staircase"] or "{}")) if staircase else None
        _FIXED[key] = _Fixed(
            row["n_practice"], row["n_test_trials"], row.get("response_window_ms"), int(row["exposure_ms"]), rule
        )
    return _FIXED[key]


def _target_exposure(conn, rater_id: str, row) -> float:
    """The exposure (ms) trial `row` is issued with: the study's fixed one, or its staircase's (the rules in
    study_app.staircase: practice at the start, golden at the longest, counted pairs by the rater's answers)."""
    settings = _fixed(conn)
    fixed_ms, rule = settings.exposure_ms, settings.staircase
    if rule is None:
        return float(fixed_ms)
    if row["is_practice"]:
        return float(rule.start_ms)
    if row["is_golden"]:
        return float(rule.grid_ms[-1])
    answered = conn.execute(
        select(trials.c.choice, trials.c.real_side)
        .where(
            trials.c.rater_id == rater_id,
            trials.c.trial_index < row["trial_index"],
            trials.c.is_practice.is_(False),
            trials.c.is_golden.is_(False),
            trials.c.answered_at.is_not(None),
            trials.c.timed_out.is_not(True),
        )
        .order_by(trials.c.trial_index)
    ).all()
    return float(exposures_for(rule, [a.choice == a.real_side for a in answered])[-1])


def _void(conn, row, now: datetime, reason: str) -> dict:
    """Copy the issued attempt `row` (a trials row) to `voided_trials` with `reason`; returns the
    replacement's values (attempt + 1, an image by the replacement rule, a new side draw)."""
    voided = {k: row[k] for k in row.keys() if k != "id"}
    conn.execute(insert(voided_trials).values(**voided, voided_at=now, reason=reason))
    attempt = row["attempt"] + 1
    rater_id, index = row["rater_id"], row["trial_index"]
    return dict(
        attempt=attempt,
        image_id=_replacement_image(conn, rater_id, index, attempt, row["image_id"]),
        real_side=random.Random(f"{rater_id}:{index}:{attempt}:side").choice(SIDES),
    )


@retry_on_disconnect
def void_trial(
    engine: Engine, rater_id: str, trial_index: int, attempt: int, reason: str, *, now: datetime | None = None
) -> bool:
    """Void the issued, unanswered attempt (rater_id, trial_index, attempt) — e.g. the window changed
    size during its exposure (`reason` "resize") — and queue its replacement, which `next_trial`
    then issues as a fresh pair. False (nothing changed) if that attempt is not the open one (already
    answered or voided: a repeated request is harmless)."""
    validate_participant_id(rater_id)
    if reason not in ("reload", "resize"):
        raise ValueError(f"reason must be 'reload' or 'resize', got {reason!r}")
    now = now or utcnow()
    with engine.begin() as conn:
        rater = _lock_rater(conn, rater_id, now)
        row = (
            conn.execute(
                select(trials).where(
                    trials.c.rater_id == rater_id,
                    trials.c.trial_index == trial_index,
                    trials.c.attempt == attempt,
                    trials.c.answered_at.is_(None),
                    trials.c.issued_at.is_not(None),
                )
            )
            .mappings()
            .first()
        )
        if row is None or rater["status"] != "in_progress":
            return False
        replacement = _void(conn, row, now, reason)
        conn.execute(update(trials).where(trials.c.id == row["id"]).values(issued_at=None, **replacement))
        return True


@retry_on_disconnect
def next_trial(engine: Engine, rater_id: str, *, now: datetime | None = None) -> Trial | None:
    """Issue the rater's first unanswered trial (voiding and replacing it if it was issued before).

    Returns None once every trial is answered (the rater is then marked complete). Raises
    SessionExpired if the rater's slot was reclaimed.
    """
    validate_participant_id(rater_id)
    now = now or utcnow()
    with engine.begin() as conn:
        rater = _lock_rater(conn, rater_id, now)
        if rater["status"] in ("abandoned", "screened_out"):
            raise SessionExpired(f"the session of {rater_id!r} ended ({rater['status']})")
        if rater["status"] == "complete":
            return None
        row = (
            conn.execute(
                select(trials)
                .where(trials.c.rater_id == rater_id, trials.c.answered_at.is_(None))
                .order_by(trials.c.trial_index)
                .limit(1)
            )
            .mappings()
            .first()
        )
        if row is None:
            _complete(conn, rater_id, rater["slot_id"], now)
            return None
        issue = dict(attempt=row["attempt"], image_id=row["image_id"], real_side=row["real_side"])
        if row["issued_at"] is not None:
            # shown before and not answered: the page was refreshed mid-trial (the rater may have
            # seen the pair for longer than the exposure), so void it and show a different pair
            issue = _void(conn, row, now, "reload")
        issue["target_exposure_ms"] = _target_exposure(conn, rater_id, row)
        conn.execute(update(trials).where(trials.c.id == row["id"]).values(issued_at=now, **issue))
        attempt, image_id, real_side = issue["attempt"], issue["image_id"], issue["real_side"]
        n_practice, n_test = _sizes(conn)
        return Trial(
            rater_id=rater_id,
            trial_index=row["trial_index"],
            attempt=attempt,
            method=rater["method"],
            image_id=image_id,
            is_practice=bool(row["is_practice"]),
            is_golden=bool(row["is_golden"]),
            real_side=real_side,
            n_practice=n_practice,
            n_test=n_test,
            exposure_ms=issue["target_exposure_ms"],
        )


def _check_ms(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of milliseconds, got {value!r}") from None
    if not math.isfinite(v) or not 0.0 <= v <= 1e8:
        raise ValueError(f"{name} must be finite and in [0, 1e8] ms, got {value!r}")
    return v


def _check_answer(choice, trial_index, attempt, exposure_ms, reaction_ms) -> tuple[float, float]:
    """ValueError for an answer that cannot be stored; the two times as floats (ms)."""
    if choice not in SIDES:
        raise ValueError(f"choice must be 'left' or 'right', got {choice!r}")
    if isinstance(trial_index, bool) or not isinstance(trial_index, int) or trial_index < 0:
        raise ValueError(f"trial_index must be an int >= 0, got {trial_index!r}")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValueError(f"attempt must be an int >= 0, got {attempt!r}")
    return _check_ms("exposure_ms", exposure_ms), _check_ms("reaction_ms", reaction_ms)


def _all_answered(conn, rater_id: str, trial_index: int) -> bool:
    """Trials are issued in order, so answering the last index with nothing open means complete."""
    n_practice, n_test = _sizes(conn)
    return trial_index == n_practice + n_test - 1 and not (
        conn.execute(
            select(func.count())
            .select_from(trials)
            .where(trials.c.rater_id == rater_id, trials.c.answered_at.is_(None))
        ).scalar_one()
    )


@retry_on_disconnect
def record_answer(
    engine: Engine,
    rater_id: str,
    trial_index: int,
    attempt: int,
    choice: str,
    exposure_ms: float,
    reaction_ms: float,
    tab_hidden: bool,
    *,
    now: datetime | None = None,
) -> AnswerResult:
    """Store one answer, once. `choice` is the side ("left"/"right") the rater took for the real image.
    With a response window, `timed_out` = reaction_ms > response_window_ms (the module docstring's rule)."""
    validate_participant_id(rater_id)
    exposure_ms, reaction_ms = _check_answer(choice, trial_index, attempt, exposure_ms, reaction_ms)
    now = now or utcnow()
    with engine.begin() as conn:
        rater = _lock_rater(conn, rater_id, now)  # serialises with next_trial's voiding for this rater
        if rater["status"] == "in_progress":
            window = _fixed(conn).response_window_ms
            late = window is not None and reaction_ms > window
            # the common path is this one conditional UPDATE: only the current, issued, unanswered attempt
            row = conn.execute(
                update(trials)
                .where(
                    trials.c.rater_id == rater_id,
                    trials.c.trial_index == trial_index,
                    trials.c.attempt == attempt,
                    trials.c.answered_at.is_(None),
                    trials.c.issued_at.is_not(None),
                )
                .values(
                    answered_at=now,
                    choice=choice,
                    exposure_ms=exposure_ms,
                    reaction_ms=reaction_ms,
                    tab_hidden=bool(tab_hidden),
                    timed_out=late,
                    shown_at=now - timedelta(milliseconds=exposure_ms + reaction_ms),
                )
                .returning(trials.c.real_side, trials.c.is_golden, trials.c.is_practice)
            ).first()
            if row is not None:
                correct = choice == row.real_side
                missed = row.is_golden and not row.is_practice and not correct and not late
                if missed and _screen_out_for_attention(conn, rater, now):
                    return AnswerResult("recorded", False, False, screened_out=True, timed_out=late)
                complete = _all_answered(conn, rater_id, trial_index)
                if complete:
                    _complete(conn, rater_id, rater["slot_id"], now)
                return AnswerResult("recorded", correct, complete, timed_out=late)
        old = conn.execute(
            select(
                trials.c.attempt, trials.c.answered_at, trials.c.choice, trials.c.real_side, trials.c.timed_out
            ).where(trials.c.rater_id == rater_id, trials.c.trial_index == trial_index)
        ).first()
        if old is not None and old.attempt == attempt and old.answered_at is not None:
            return AnswerResult(
                "duplicate", old.choice == old.real_side, rater["status"] == "complete", timed_out=bool(old.timed_out)
            )
        return AnswerResult("stale", None, rater["status"] == "complete")


def _screen_out_for_attention(conn, rater, now: datetime) -> bool:
    """After a failed golden answer: end the session (status `screened_out`, slot freed for someone
    else) if the rater now has more misses than the study's `attention_max_misses` (NULL: never).
    A miss is a wrong, in-time answer to a counted golden pair (a timed-out answer is not a miss)."""
    limit = _study_row(conn).get("attention_max_misses")
    if limit is None:
        return False
    misses = conn.execute(
        select(func.count())
        .select_from(trials)
        .where(
            trials.c.rater_id == rater["rater_id"],
            trials.c.is_golden.is_(True),
            trials.c.is_practice.is_(False),
            trials.c.answered_at.is_not(None),
            trials.c.choice != trials.c.real_side,
            trials.c.timed_out.is_not(True),
        )
    ).scalar_one()
    if misses <= limit:
        return False
    conn.execute(
        update(raters)
        .where(raters.c.rater_id == rater["rater_id"])
        .values(status="screened_out", completed_at=now, slot_id=None)
    )
    if rater["slot_id"] is not None:
        conn.execute(
            update(slots)
            .where(slots.c.slot_id == rater["slot_id"], slots.c.rater_id == rater["rater_id"])
            .values(status="free", rater_id=None)
        )
    return True


@retry_on_disconnect
def record_comments(engine: Engine, rater_id: str, text: str) -> None:
    """Store the rater's optional end-of-study comments (at most 4,000 characters)."""
    with engine.begin() as conn:
        conn.execute(update(raters).where(raters.c.rater_id == rater_id).values(comments=str(text)[:4000]))


@retry_on_disconnect
def rater_status(engine: Engine, rater_id: str) -> dict | None:
    """The rater's row (status, method, completion_code, ...) and answer counts, or None if unknown.
    `rater_id` is matched like a participant id (trimmed, case-insensitive); the row has the stored id."""
    rid = normalise_participant_id(rater_id)
    with engine.connect() as conn:
        row = _find_rater(conn, rid)
        if row is None:
            return None
        answered = conn.execute(
            select(func.count())
            .select_from(trials)
            .where(trials.c.rater_id == row["rater_id"], trials.c.answered_at.is_not(None))
        ).scalar_one()
        return {**dict(row), "answered": int(answered)}


@retry_on_disconnect
def trial_pngs(engine: Engine, trial: Trial) -> tuple[bytes, bytes]:
    """The PNG bytes (left, right) of a trial: the ground truth on `real_side`, the other image opposite."""
    other_kind = "golden" if trial.is_golden else trial.method
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                select(images.c.kind, images.c.png).where(
                    images.c.image_id == trial.image_id, images.c.kind.in_(["truth", other_kind])
                )
            ).all()
        )
    if "truth" not in rows or other_kind not in rows:
        raise ValueError(f"the study database lacks the images of {other_kind!r} / {trial.image_id!r}")
    real, fake = rows["truth"], rows[other_kind]
    return (real, fake) if trial.real_side == "left" else (fake, real)


def trial_images(engine: Engine, trial: Trial):
    """The images (left, right) of a trial as uint8 arrays [32, 32, C] (see `trial_pngs`)."""

    def decode(png: bytes):
        arr = np.asarray(Image.open(io.BytesIO(png)))
        return arr[:, :, None] if arr.ndim == 2 else arr

    left, right = trial_pngs(engine, trial)
    return decode(left), decode(right)
