"""Shared pytest fixtures.

`postgres_server` (session) starts a throw-away PostgreSQL cluster (initdb + pg_ctl on 127.0.0.1 and a
free port, as the `postgres` user when root) and stops it at the end; `postgres_url` yields the
SQLAlchemy URL (`postgresql+psycopg://...`) of its `postgres` database, `postgres_db_url` a fresh,
empty database per test. Without the server binaries these fixtures skip with the install command —
except under CI (`CI=true`), where a missing server is a failure, never a skip. `load_script` imports a
repository script (bench/, scripts/) as a module.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_or_skip(reason: str) -> None:
    """Skip on a user's machine; fail under CI, where every test must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must not be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server():
    # conftest loads for every test: the study store (sqlalchemy) loads only for the tests that ask for it
    from study_app.pgserver import INSTALL_HINT, ThrowawayPostgres, find_pg_bin  # noqa: PLC0415

    if find_pg_bin() is None:
        require_or_skip(f"PostgreSQL server not installed; install: {INSTALL_HINT}")
    server = ThrowawayPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    return postgres_server.url()


@pytest.fixture
def postgres_db_url(postgres_server):
    """A new empty database on the throw-away server (engines of the study store are disposed after)."""
    url = postgres_server.create_database()
    yield url
    try:
        from study_app.db import dispose_engine  # noqa: PLC0415  only for the database fixtures

        dispose_engine(url)
    except ImportError:
        pass


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A study store URL, once on SQLite (a file in tmp_path) and once on the throw-away PostgreSQL server."""
    if request.param == "sqlite":
        from study_app.db import dispose_engine  # noqa: PLC0415  only for the database fixtures

        url = f"sqlite:///{tmp_path / 'study.db'}"
        yield url
        dispose_engine(url)
    else:
        yield request.getfixturevalue("postgres_db_url")


@pytest.fixture
def one_thread():
    """One torch thread for the test (2 shared cores: OpenMP spin-waits make millisecond steps far slower
    with 2 threads); restored afterwards."""
    import torch  # noqa: PLC0415  the tests without torch (study, analysis) start without it

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def load_script():
    """`load_script("bench/quality_search.py")`: a repository script (not a package module) imported as a module."""

    def load(relative_path: str):
        path = Path(__file__).resolve().parents[1] / relative_path
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
