"""A throw-away PostgreSQL server for tests and benchmarks (Debian's `postgresql` package).

`ThrowawayPostgres()` runs `initdb` on a fresh temporary directory (as the `postgres` user when
running as root, since PostgreSQL refuses to run as root; as the current user otherwise), starts it
with `pg_ctl` on 127.0.0.1 and a free port with trust authentication, and removes everything on
`stop()`. Nothing listens beyond the loopback interface.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

INSTALL_HINT = "sudo apt-get install postgresql   (or: sudo scripts/install-test-deps.sh)"


def find_pg_bin() -> Path | None:
    """The folder holding `initdb` and `pg_ctl` (PATH first, then /usr/lib/postgresql/<newest>/bin)."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """Start with `start()`, get `url(dbname)` / `create_database()`, end with `stop()`."""

    def __init__(self) -> None:
        self.bin = find_pg_bin()
        if self.bin is None:
            raise FileNotFoundError(f"PostgreSQL server binaries (initdb, pg_ctl) not found; install: {INSTALL_HINT}")
        self.as_postgres = os.geteuid() == 0
        self.user = "postgres" if self.as_postgres else (os.environ.get("USER") or "postgres")
        self.dir: Path | None = None
        self.port: int | None = None

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> "ThrowawayPostgres":
        # /tmp itself, not pytest's per-user 0700 folder, so that the postgres user can enter it
        self.dir = Path(tempfile.mkdtemp(prefix="prsr-pg-", dir="/tmp"))
        if self.as_postgres:
            shutil.chown(self.dir, user="postgres", group="postgres")
        data = self.dir / "data"
        try:
            self._run(
                "initdb", "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"
            )
            self.port = _free_port()
            opts = (
                f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c full_page_writes=off "
                f"-c synchronous_commit=off -c max_connections=200"
            )
            self._run(
                "pg_ctl", "-D", str(data), "-l", str(self.dir / "server.log"), "-o", opts, "-w", "-t", "60", "start"
            )
        except subprocess.CalledProcessError as exc:
            log = self.dir / "server.log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            self._cleanup()
            raise RuntimeError(f"could not start PostgreSQL: {exc.stderr or exc.stdout}\n{detail}") from exc
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg  # noqa: PLC0415  (optional: the PostgreSQL driver, needed only with a PostgreSQL study)

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is generated here, never user input
        return self.url(name)

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every client connection is cut, the server is back on the same port
        (the fault the study app must survive)."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.dir / "data"),
            "-l",
            str(self.dir / "server.log"),
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            "restart",
        )

    def stop(self) -> None:
        if self.dir is not None and (self.dir / "data" / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
        self._cleanup()

    def _cleanup(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "ThrowawayPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
