"""The study database's tables (SQLAlchemy 2.x Core; the same schema on SQLite and PostgreSQL).

- `study`: one row (id 1) describing the protocol, and whether the answers are simulated.
- `images`: every image the study shows, as PNG bytes, keyed by (kind, image_id); kind is `truth`,
  `golden` (the degraded image of a golden pair) or a method name. A database is self-contained.
- `slots`: the balanced plan of rater slots; each slot is one method; `slot_order` interleaves the
  methods so that claiming the lowest free slot fills methods evenly.
- `plan_items`: per slot, the planned trials (position, practice/golden flags, image, left/right).
- `raters`: one row per participant id; `slot_id` is the slot they hold (NULL once abandoned).
- `trials`: the trials issued to a rater, unique per (rater_id, trial_index); `attempt` counts
  replacements after a void, and an answer is accepted only for the current attempt.
- `voided_trials`: a copy of each trial that was shown but not answered: before a refresh (`reason`
  `reload`) or because the window changed size during the exposure (`resize`).
- `rate_buckets` / `rate_events`: rate limiting that every app process sees (slot claims per client,
  admin secret attempts). A bucket row per (kind, client) is locked to serialise one client's checks;
  each event (with its outcome) is kept, so admin attempts are also a log.

Columns added after the first release are nullable and `upgrade()` adds them to an older database
(ALTER TABLE ... ADD COLUMN, tables created if missing): nothing stored is rewritten or dropped.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)

metadata = MetaData()

study = Table(
    "study",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset", String(64), nullable=False),
    Column("methods", Text, nullable=False),  # JSON list, in slot-interleaving order
    Column("n_practice", Integer, nullable=False),
    Column("n_test_trials", Integer, nullable=False),  # counted trials, golden included
    Column("n_golden", Integer, nullable=False),
    Column("raters_per_method", Integer, nullable=False),
    Column("display_px", Integer, nullable=False),  # CSS pixels each 32x32 image is shown at
    Column("exposure_ms", Integer, nullable=False),
    Column("fixation_ms", Integer, nullable=False),
    Column("abandon_after_s", Integer, nullable=False),
    Column("golden_kind", Text, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("simulated", Boolean, nullable=False, default=False),
    Column("sim_params", Text, nullable=True),  # JSON, for simulated studies
    # crowd hand-off (NULL in databases made before it: platform "none", per-rater codes)
    Column("platform", String(16), nullable=True),  # none | prolific | mturk
    Column("completion_url", Text, nullable=True),  # with a {code} placeholder
    Column("completion_code", String(64), nullable=True),  # study-wide code; NULL: one code per rater
    Column("require_pid", Boolean, nullable=True),
    Column("screenout", Text, nullable=True),  # JSON {reason: code} for no_consent, failed_attention, ...
    Column("texts", Text, nullable=True),  # JSON {consent, instructions, debrief, contact, comments}
    Column("max_claims_per_client", Integer, nullable=True),  # 0: no limit
    Column("claim_window_s", Integer, nullable=True),
    Column("attention_max_misses", Integer, nullable=True),  # screen out after more golden misses; NULL: never
    # ms from the erase of the pair to the choice; a later choice is a timeout. NULL: no window
    Column("response_window_ms", Integer, nullable=True),
    Column("client_salt", String(64), nullable=True),  # keys client addresses (stored only hashed)
    # the analysis plan fixed at init (study_app.analysis_plan): canonical JSON and its sha256; NULL in older studies
    Column("analysis_plan", Text, nullable=True),
    Column("analysis_plan_sha256", String(64), nullable=True),
    # how long pairs are shown: fixed (`exposure_ms`; NULL in older studies) or staircase (HYPE-time,
    # study_app.staircase; its rule as JSON in `staircase`)
    Column("exposure_mode", String(16), nullable=True),
    Column("staircase", Text, nullable=True),
)

images = Table(
    "images",
    metadata,
    Column("kind", String(64), primary_key=True),
    Column("image_id", String(64), primary_key=True),
    Column("png", LargeBinary, nullable=False),
)

slots = Table(
    "slots",
    metadata,
    Column("slot_id", Integer, primary_key=True),
    Column("slot_order", Integer, nullable=False, unique=True),
    Column("method", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),  # free | taken | complete
    Column("rater_id", String(64), nullable=True),
)

plan_items = Table(
    "plan_items",
    metadata,
    Column("slot_id", Integer, ForeignKey("slots.slot_id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("is_practice", Boolean, nullable=False),
    Column("is_golden", Boolean, nullable=False),
    Column("image_id", String(64), nullable=False),
    Column("real_side", String(5), nullable=False),
)

raters = Table(
    "raters",
    metadata,
    Column("rater_id", String(64), primary_key=True),
    Column("id_source", String(8), nullable=False),  # pid | token
    Column("slot_id", Integer, ForeignKey("slots.slot_id"), nullable=True),
    Column("method", String(64), nullable=False),
    Column("status", String(16), nullable=False, index=True),  # in_progress | complete | abandoned
    Column("enrolled_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False, index=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("completion_code", String(32), nullable=True),
    # platform ids as given (rater_id is their trimmed lower-case form) and the measured environment
    Column("participant_id", String(64), nullable=True),
    Column("study_id", String(64), nullable=True),
    Column("session_id", String(64), nullable=True),
    Column("platform", String(16), nullable=True),
    Column("client_key", String(32), nullable=True, index=True),  # salted hash of the client address
    Column("viewport_w", Integer, nullable=True),  # CSS px
    Column("viewport_h", Integer, nullable=True),
    Column("device_pixel_ratio", Float, nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("refresh_hz", Float, nullable=True),  # measured from requestAnimationFrame in the page
    Column("comments", Text, nullable=True),
)


def _trial_columns() -> list[Column]:
    """The answer columns shared by `trials` and `voided_trials` (fresh objects for each table)."""
    return [
        Column("is_practice", Boolean, nullable=False),
        Column("is_golden", Boolean, nullable=False),
        Column("image_id", String(64), nullable=False),
        Column("real_side", String(5), nullable=False),
        Column("attempt", Integer, nullable=False),
        Column("issued_at", DateTime(timezone=True), nullable=True),
        # server time of the answer minus the browser-measured exposure + reaction time
        Column("shown_at", DateTime(timezone=True), nullable=True),
        Column("answered_at", DateTime(timezone=True), nullable=True),
        Column("choice", String(5), nullable=True),
        Column("exposure_ms", Float, nullable=True),  # measured in the browser
        Column("reaction_ms", Float, nullable=True),
        Column("tab_hidden", Boolean, nullable=True),
        # the choice came after the study's response window (NULL in databases made before it: False)
        Column("timed_out", Boolean, nullable=True),
        # the exposure the pair was issued with, ms (NULL in databases made before it: the study's exposure_ms)
        Column("target_exposure_ms", Float, nullable=True),
    ]


trials = Table(
    "trials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rater_id", String(64), ForeignKey("raters.rater_id"), nullable=False),
    Column("trial_index", Integer, nullable=False),  # 0-based over practice then counted trials
    *_trial_columns(),
    UniqueConstraint("rater_id", "trial_index", name="uq_trial_rater_index"),
)

voided_trials = Table(
    "voided_trials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rater_id", String(64), ForeignKey("raters.rater_id"), nullable=False, index=True),
    Column("trial_index", Integer, nullable=False),
    *_trial_columns(),
    Column("voided_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(16), nullable=True),  # reload (a new page load) | resize (during the exposure)
)

rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("kind", String(16), primary_key=True),  # claim | admin
    Column("client_key", String(32), primary_key=True),
)

rate_events = Table(
    "rate_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("client_key", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),  # claim: claimed; admin: ok | wrong | limited
)


UPGRADE_LOCK_KEY = 0x70727372  # "prsr": the PostgreSQL advisory lock serialising schema upgrades


def upgrade(engine) -> list[str]:
    """Bring an older study database up to this schema, additively: create missing tables and add
    missing (nullable) columns. Returns the "table.column" names added. Nothing is rewritten.

    Every app process runs this when it first opens a database, so replicas may run it at once: the
    whole upgrade is one transaction holding a lock (PostgreSQL: `pg_advisory_xact_lock`; SQLite: the
    store's `BEGIN IMMEDIATE`), and the columns are read after the lock is taken, so a second
    upgrader waits and then finds nothing to add."""
    added = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
        insp = inspect(conn)
        have_by_table = {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}
        for table in metadata.sorted_tables:
            if table.name not in have_by_table:
                continue
            have = have_by_table[table.name]
            for col in table.columns:
                if col.name in have:
                    continue
                if not col.nullable:
                    raise ValueError(
                        f"study database lacks the required column {table.name}.{col.name}; "
                        "it was made by an incompatible version (nothing was changed)"
                    )
                kind = col.type.compile(dialect=engine.dialect)
                prep = engine.dialect.identifier_preparer
                conn.execute(text(f"ALTER TABLE {prep.quote(table.name)} ADD COLUMN {prep.quote(col.name)} {kind}"))
                added.append(f"{table.name}.{col.name}")
        metadata.create_all(conn, checkfirst=True)
    return added
