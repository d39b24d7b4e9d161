"""The study's trial logic as plain functions: the Streamlit app, the simulator and the tests call these.

A rater's whole trial list lives in the database, never in a browser session:

- `enrol(engine, pid)` returns the rater's enrolment. A new participant claims the lowest free slot
  (slots interleave the methods, so methods fill evenly) in the same transaction that creates the
  rater and copies the slot's planned trials; a returning participant resumes and never gets a
  second slot. Slots of raters idle for longer than the study's `abandon_after_s` are freed first.
- `next_trial(engine, rater_id)` issues the first unanswered trial. If that trial had already been
  issued (the page was refreshed while it was on screen) it is voided — copied to `voided_trials` —
  and replaced by a new pair on an image this rater has not seen, with a new `attempt` number.
- `record_answer(...)` stores an answer for (rater, trial_index, attempt) once: a second submission
  of the same answer is reported as `duplicate` and changes nothing; an answer to a voided attempt
  is `stale` and ignored.

Nothing here builds SQL from text: values reach the database only as bound parameters.
"""

from __future__ import annotations

import math
import random
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .schema import images, plan_items, raters, slots, study, trials, voided_trials

SIDES = ("left", "right")
_PID_RE = re.compile(r"^[A-Za-z0-9_.@:+-]{1,64}$")


class StudyFull(RuntimeError):
    """Every rater slot is taken or complete."""


class SessionExpired(RuntimeError):
    """The rater's slot was reclaimed after inactivity (or the id is unknown)."""


@dataclass(frozen=True)
class Enrolment:
    rater_id: str
    method: str
    status: str  # in_progress | complete | abandoned
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

    @property
    def token(self) -> str:
        """A key unique to this issue of this trial (a new attempt gets a new token)."""
        return f"{self.rater_id}|{self.trial_index}|{self.attempt}"


@dataclass(frozen=True)
class AnswerResult:
    status: str  # recorded | duplicate | stale
    correct: bool | None  # the real image was chosen (None when stale)
    complete: bool  # the rater has answered every trial


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


def new_resume_token() -> str:
    """A random participant id for raters who arrive without `?pid=` (16 URL-safe characters)."""
    return secrets.token_urlsafe(12)


def _study_row(conn):
    row = conn.execute(select(study).where(study.c.id == 1)).mappings().first()
    if row is None:
        raise ValueError("the database holds no study; create one with `prsr study init`")
    return row


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
            update(slots).where(slots.c.slot_id == slot_id, slots.c.rater_id == rater_id)
            .values(status="free", rater_id=None)
        )
    return len(stale)


def reclaim_abandoned(engine: Engine, *, now: datetime | None = None) -> int:
    """Free the slots of raters idle for longer than the study's timeout; returns how many."""
    now = now or utcnow()
    with engine.begin() as conn:
        return _reclaim_abandoned(conn, now, _study_row(conn)["abandon_after_s"])


def _enrolment(row, resumed: bool) -> Enrolment:
    return Enrolment(row["rater_id"], row["method"], row["status"], resumed, row["completion_code"])


def enrol(engine: Engine, participant_id: str, *, id_source: str = "pid", now: datetime | None = None) -> Enrolment:
    """Enrol `participant_id` (validated) or resume it if it is already enrolled.

    Raises StudyFull when no slot is free. A returning rater whose slot was reclaimed gets an
    enrolment with status "abandoned" (never a second slot).
    """
    pid = validate_participant_id(participant_id)
    if id_source not in ("pid", "token"):
        raise ValueError(f"id_source must be 'pid' or 'token', got {id_source!r}")
    now = now or utcnow()
    for _ in range(3):  # an IntegrityError means the same id enrolled concurrently: resume it
        try:
            with engine.begin() as conn:
                existing = conn.execute(
                    select(raters).where(raters.c.rater_id == pid).with_for_update()
                ).mappings().first()
                if existing is not None:
                    if existing["status"] == "in_progress":
                        conn.execute(update(raters).where(raters.c.rater_id == pid).values(last_seen_at=now))
                    return _enrolment(existing, resumed=True)
                settings = _study_row(conn)
                _reclaim_abandoned(conn, now, settings["abandon_after_s"])
                slot = conn.execute(
                    select(slots.c.slot_id, slots.c.method)
                    .where(slots.c.status == "free")
                    .order_by(slots.c.slot_order)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if slot is None:
                    raise StudyFull("every rater slot of this study is taken; thank you for your interest")
                conn.execute(insert(raters).values(
                    rater_id=pid, id_source=id_source, slot_id=slot.slot_id, method=slot.method,
                    status="in_progress", enrolled_at=now, last_seen_at=now,
                ))
                conn.execute(update(slots).where(slots.c.slot_id == slot.slot_id)
                             .values(status="taken", rater_id=pid))
                plan = conn.execute(
                    select(plan_items).where(plan_items.c.slot_id == slot.slot_id).order_by(plan_items.c.position)
                ).mappings().all()
                conn.execute(insert(trials), [
                    dict(rater_id=pid, trial_index=p["position"], is_practice=p["is_practice"],
                         is_golden=p["is_golden"], image_id=p["image_id"], real_side=p["real_side"], attempt=0)
                    for p in plan
                ])
                return Enrolment(pid, slot.method, "in_progress", False, None)
        except IntegrityError:
            continue
    raise RuntimeError(f"could not enrol {pid!r}: repeated conflicts")


def _replacement_image(conn, rater_id: str, trial_index: int, attempt: int, current: str) -> str:
    """An image id of the pool this rater has not been shown (the voided image if none is left)."""
    pool = conn.execute(select(images.c.image_id).where(images.c.kind == "truth").order_by(images.c.image_id)).scalars().all()
    seen = set(conn.execute(select(trials.c.image_id).where(trials.c.rater_id == rater_id)).scalars())
    seen |= set(conn.execute(select(voided_trials.c.image_id).where(voided_trials.c.rater_id == rater_id)).scalars())
    unseen = [i for i in pool if i not in seen]
    if not unseen:
        return current
    return random.Random(f"{rater_id}:{trial_index}:{attempt}").choice(unseen)


def _complete(conn, rater_id: str, slot_id: int | None, now: datetime) -> str:
    code = secrets.token_hex(4).upper()
    conn.execute(update(raters).where(raters.c.rater_id == rater_id)
                 .values(status="complete", completed_at=now, completion_code=code, last_seen_at=now))
    if slot_id is not None:
        conn.execute(update(slots).where(slots.c.slot_id == slot_id, slots.c.rater_id == rater_id)
                     .values(status="complete"))
    return code


def _lock_rater(conn, rater_id: str, now: datetime):
    """Lock the rater's row (serialising this rater's transactions) and record activity, in one
    statement: an UPDATE takes the row lock on PostgreSQL, and SQLite's BEGIN IMMEDIATE already holds
    the write lock."""
    row = conn.execute(
        update(raters).where(raters.c.rater_id == rater_id).values(last_seen_at=now).returning(*raters.c)
    ).mappings().first()
    if row is None:
        raise SessionExpired(f"unknown rater id {rater_id!r}")
    return row


_SIZES: dict[str, tuple[int, int]] = {}


def _sizes(conn) -> tuple[int, int]:
    """(n_practice, n_test_trials) of the study; fixed at init, so cached per database URL."""
    key = str(conn.engine.url)
    if key not in _SIZES:
        row = _study_row(conn)
        _SIZES[key] = (row["n_practice"], row["n_test_trials"])
    return _SIZES[key]


def next_trial(engine: Engine, rater_id: str, *, now: datetime | None = None) -> Trial | None:
    """Issue the rater's first unanswered trial (voiding and replacing it if it was issued before).

    Returns None once every trial is answered (the rater is then marked complete). Raises
    SessionExpired if the rater's slot was reclaimed.
    """
    validate_participant_id(rater_id)
    now = now or utcnow()
    with engine.begin() as conn:
        rater = _lock_rater(conn, rater_id, now)
        if rater["status"] == "abandoned":
            raise SessionExpired(f"the session of {rater_id!r} expired after inactivity")
        if rater["status"] == "complete":
            return None
        row = conn.execute(
            select(trials).where(trials.c.rater_id == rater_id, trials.c.answered_at.is_(None))
            .order_by(trials.c.trial_index).limit(1)
        ).mappings().first()
        if row is None:
            _complete(conn, rater_id, rater["slot_id"], now)
            return None
        image_id, real_side, attempt = row["image_id"], row["real_side"], row["attempt"]
        if row["issued_at"] is not None:
            # shown before and not answered: the page was refreshed mid-trial (the rater may have
            # seen the pair for longer than the exposure), so void it and show a different pair
            voided = {k: row[k] for k in row.keys() if k != "id"}
            conn.execute(insert(voided_trials).values(**voided, voided_at=now))
            attempt += 1
            image_id = _replacement_image(conn, rater_id, row["trial_index"], attempt, image_id)
            real_side = random.Random(f"{rater_id}:{row['trial_index']}:{attempt}:side").choice(SIDES)
        conn.execute(
            update(trials).where(trials.c.id == row["id"])
            .values(issued_at=now, attempt=attempt, image_id=image_id, real_side=real_side)
        )
        n_practice, n_test = _sizes(conn)
        return Trial(
            rater_id=rater_id, trial_index=row["trial_index"], attempt=attempt, method=rater["method"],
            image_id=image_id, is_practice=bool(row["is_practice"]), is_golden=bool(row["is_golden"]),
            real_side=real_side, n_practice=n_practice, n_test=n_test,
        )


def _check_ms(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of milliseconds, got {value!r}") from None
    if not math.isfinite(v) or not 0.0 <= v <= 1e8:
        raise ValueError(f"{name} must be finite and in [0, 1e8] ms, got {value!r}")
    return v


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
    """Store one answer, once. `choice` is the side ("left"/"right") the rater took for the real image."""
    validate_participant_id(rater_id)
    if choice not in SIDES:
        raise ValueError(f"choice must be 'left' or 'right', got {choice!r}")
    if isinstance(trial_index, bool) or not isinstance(trial_index, int) or trial_index < 0:
        raise ValueError(f"trial_index must be an int >= 0, got {trial_index!r}")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValueError(f"attempt must be an int >= 0, got {attempt!r}")
    exposure_ms = _check_ms("exposure_ms", exposure_ms)
    reaction_ms = _check_ms("reaction_ms", reaction_ms)
    tab_hidden = bool(tab_hidden)
    now = now or utcnow()
    with engine.begin() as conn:
        rater = _lock_rater(conn, rater_id, now)  # serialises with next_trial's voiding for this rater
        if rater["status"] == "in_progress":
            # the common path is this one conditional UPDATE: only the current, issued, unanswered attempt
            row = conn.execute(
                update(trials)
                .where(trials.c.rater_id == rater_id, trials.c.trial_index == trial_index,
                       trials.c.attempt == attempt, trials.c.answered_at.is_(None), trials.c.issued_at.is_not(None))
                .values(answered_at=now, choice=choice, exposure_ms=exposure_ms, reaction_ms=reaction_ms,
                        tab_hidden=tab_hidden)
                .returning(trials.c.real_side)
            ).first()
            if row is not None:
                # trials are issued in order, so answering the last index means every trial is answered
                n_practice, n_test = _sizes(conn)
                complete = trial_index == n_practice + n_test - 1 and not conn.execute(
                    select(func.count()).select_from(trials)
                    .where(trials.c.rater_id == rater_id, trials.c.answered_at.is_(None))
                ).scalar_one()
                if complete:
                    _complete(conn, rater_id, rater["slot_id"], now)
                return AnswerResult("recorded", choice == row.real_side, complete)
        old = conn.execute(
            select(trials.c.attempt, trials.c.answered_at, trials.c.choice, trials.c.real_side)
            .where(trials.c.rater_id == rater_id, trials.c.trial_index == trial_index)
        ).first()
        if old is not None and old.attempt == attempt and old.answered_at is not None:
            return AnswerResult("duplicate", old.choice == old.real_side, rater["status"] == "complete")
        return AnswerResult("stale", None, rater["status"] == "complete")


def rater_status(engine: Engine, rater_id: str) -> dict | None:
    """The rater's row (status, method, completion_code, ...) and answer counts, or None if unknown."""
    validate_participant_id(rater_id)
    with engine.connect() as conn:
        row = conn.execute(select(raters).where(raters.c.rater_id == rater_id)).mappings().first()
        if row is None:
            return None
        answered = conn.execute(
            select(func.count()).select_from(trials)
            .where(trials.c.rater_id == rater_id, trials.c.answered_at.is_not(None))
        ).scalar_one()
        return {**dict(row), "answered": int(answered)}


def trial_pngs(engine: Engine, trial: Trial) -> tuple[bytes, bytes]:
    """The PNG bytes (left, right) of a trial: the ground truth on `real_side`, the other image opposite."""
    other_kind = "golden" if trial.is_golden else trial.method
    with engine.connect() as conn:
        rows = dict(conn.execute(
            select(images.c.kind, images.c.png)
            .where(images.c.image_id == trial.image_id, images.c.kind.in_(["truth", other_kind]))
        ).all())
    if "truth" not in rows or other_kind not in rows:
        raise ValueError(f"the study database lacks the images of {other_kind!r} / {trial.image_id!r}")
    real, fake = rows["truth"], rows[other_kind]
    return (real, fake) if trial.real_side == "left" else (fake, real)
