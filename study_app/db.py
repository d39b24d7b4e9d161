"""Engines for the study database: SQLite (WAL, `BEGIN IMMEDIATE`) by default, any SQLAlchemy URL otherwise.

On SQLite every transaction starts with `BEGIN IMMEDIATE`, which takes the write lock up front: two
raters claiming slots at once are serialised instead of one failing half-way with "database is
locked". WAL mode lets readers (the admin page, exports) proceed while a writer holds that lock.
On PostgreSQL the store uses row locks (`FOR UPDATE`, `FOR UPDATE SKIP LOCKED` for slot claims).

Several app processes may share one PostgreSQL database (docs/datasets-and-gpus.md, "Several study app
processes, one PostgreSQL"), and that server may restart under them: every pooled connection is pinged
before use (`pool_pre_ping`), a new connection waits up to `CONNECT_WAIT_S` for the server to come back,
and `retry_on_disconnect` reruns a whole transaction that lost its connection (only for the store's
idempotent operations).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from .schema import upgrade

CONNECT_WAIT_S = 30.0  # how long a new connection waits for a (re)starting server
RETRIES = 5  # reruns of a transaction whose connection was lost
_log = logging.getLogger(__name__)

_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


def normalise_url(db: str | Path) -> str:
    """A SQLAlchemy URL for `db`: URLs pass through; a plain file path becomes `sqlite:///<path>`."""
    text = str(db).strip()
    if not text:
        raise ValueError("empty database URL; give a SQLAlchemy URL or a SQLite file path")
    if "://" in text:
        make_url(text)  # raises a clear ArgumentError on a malformed URL
        return text
    return f"sqlite:///{Path(text).expanduser()}"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # take transaction control away from the sqlite3 module so that SQLAlchemy's "begin"
        # below is the only BEGIN issued
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine(db: str | Path) -> Engine:
    """The (cached, thread-safe) engine for a database URL or SQLite path."""
    url = normalise_url(db)
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            if is_sqlite(url):
                database = make_url(url).database
                if not database or database == ":memory:":
                    raise ValueError("the study needs a SQLite *file* (in-memory databases are per-connection)")
                engine = create_engine(
                    url,
                    pool_size=8,
                    max_overflow=64,
                    pool_timeout=120,
                    connect_args={"check_same_thread": False, "timeout": 60},
                )
                _configure_sqlite(engine)
            else:
                engine = create_engine(
                    url, pool_size=8, max_overflow=64, pool_timeout=120, pool_recycle=1800, pool_pre_ping=True
                )
                _wait_for_server(engine)
            _ENGINES[url] = engine
        return engine


def _wait_for_server(engine: Engine) -> None:
    """New connections retry for up to CONNECT_WAIT_S while the server refuses them (a restart)."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, _record, cargs, cparams):
        deadline = time.monotonic() + CONNECT_WAIT_S
        delay = 0.1
        while True:
            try:
                return dialect.loaded_dbapi.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError:
                if time.monotonic() + delay > deadline:
                    raise
                _log.warning("database refused a connection; retrying in %.1f s", delay)
                time.sleep(delay)
                delay = min(2 * delay, 1.0)


def _lost_connection(exc: Exception) -> bool:
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or isinstance(exc, OperationalError))


def retry_on_disconnect(fn):
    """Rerun `fn` (one or more whole transactions) when its connection was lost mid-way, e.g. by a
    database restart: up to RETRIES times, backing off 0.2 s .. 2 s. Only for idempotent
    operations: a rerun after a commit whose acknowledgement was lost must change nothing more
    (answers are unique per (rater, trial index, attempt); enrolment resumes)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for k in range(RETRIES + 1):
            try:
                return fn(*args, **kwargs)
            except DBAPIError as exc:
                if k == RETRIES or not _lost_connection(exc):
                    raise
                _log.warning("%s lost its database connection (%s); retrying", fn.__name__, type(exc.orig).__name__)
                time.sleep(min(0.2 * 2**k, 2.0))

    return wrapper


def dispose_engine(db: str | Path) -> None:
    """Close every pooled connection of `db` (before dropping a database, or at the end of a command)."""
    url = normalise_url(db)
    with _LOCK:
        engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


_CHECKED: set[str] = set()


def open_study(db: str | Path) -> Engine:
    """The engine of an EXISTING study database (upgraded additively to the current schema, see
    `schema.upgrade`); a clear error (and no new empty file) otherwise."""
    url = normalise_url(db)
    if url not in _CHECKED:
        if is_sqlite(url):
            path = Path(make_url(url).database or "")
            if not path.is_file():
                raise FileNotFoundError(f"study database {path} does not exist (create it with `prsr study init`)")
        if "study" not in inspect(get_engine(url)).get_table_names():
            raise ValueError(f"{url} holds no study (create one with `prsr study init`)")
        added = upgrade(get_engine(url))  # older databases gain the new nullable columns, nothing else changes
        if added:
            _log.warning("upgraded study database %s: added %s", url, ", ".join(added))
        _CHECKED.add(url)
    return get_engine(url)
