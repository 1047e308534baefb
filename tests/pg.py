"""PostgreSQL test harness: a pytest plugin that runs a real, private server.

Register with ``pytest_plugins = ["tests.pg"]`` (or ``-p tests.pg``). Fixtures:

``pg_server``   session-scoped :class:`PgServer` (initdb + pg_ctl start on a free
                127.0.0.1 port and a private socket dir; stopped and deleted at
                session end, on failure too).
``pg_url``      session-scoped SQLAlchemy URL of a database on that server.
``pg_db_url``   function-scoped URL of a brand-new empty database, dropped after
                the test, so tests never see each other's rows.
``store_url``   function-scoped, parametrized ``sqlite`` / ``postgres``: a fresh
                database URL on each backend (the store suite runs on both).

Missing server binaries are a failure, never a skip: CI must not go green
without having run the PostgreSQL tests. Install them with
``bash .ci/system-deps``. ``TRADELAB_PG_BIN`` may point at another bin folder.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PG_USER = "postgres"
TEST_DB = "tradelab_test"
_counter = itertools.count()


def find_pg_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` holding initdb and pg_ctl."""
    override = os.environ.get("TRADELAB_PG_BIN")
    candidates = [override] if override else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True)
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found under "
                "/usr/lib/postgresql/*/bin: run `bash .ci/system-deps` to install them",
                pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """A throw-away PostgreSQL cluster owned by this test session."""

    bin: Path
    base: Path
    port: int = 0
    started_in: float = 0.0
    _running: bool = field(default=False, repr=False)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def _cmd(self, *args: str) -> list[str]:
        # initdb refuses to run as root, and the data dir must belong to the
        # server's user: as root, run the binaries as the `postgres` OS user.
        return ["runuser", "-u", PG_USER, "--", *args] if os.geteuid() == 0 else list(args)

    def _run(self, *args: str, timeout: float = 120) -> None:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout,
                              cwd=self.base, check=False)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            pytest.fail(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n"
                        f"{proc.stderr}\n{log}", pytrace=False)

    def start(self) -> None:
        t0 = time.perf_counter()
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        (self.base / "sock").mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(self.base / "sock", pw.pw_uid, pw.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", PG_USER, "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        # Durability is pointless for a throw-away cluster; speed is not.
        for attempt in range(3):  # the free port can be taken before we bind it
            self.port = _free_port()
            proc = self._pg_ctl_start()
            if proc.returncode == 0:
                break
            if attempt == 2:
                log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
                pytest.fail(f"pg_ctl start failed:\n{proc.stdout}\n{proc.stderr}\n{log}",
                            pytrace=False)
        self._running = True
        self.started_in = time.perf_counter() - t0

    def _pg_ctl_start(self) -> subprocess.CompletedProcess:
        opts = (f"-h 127.0.0.1 -k {self.base / 'sock'} -F -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=60 -c TimeZone=UTC")
        return subprocess.run(self._cmd(str(self.bin / "pg_ctl"), "start", "-w", "-t", "60",
                                        "-D", str(self.data), "-l", str(self.log),
                                        "-o", f"{opts} -p {self.port}"),
                              capture_output=True, text=True, cwd=self.base, check=False)

    def halt(self) -> None:
        """``pg_ctl stop -m fast``: the server goes away mid-work, its files stay."""
        self._run(str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w")

    def restart(self) -> None:
        """Start a halted server again on the same port and data."""
        proc = self._pg_ctl_start()
        if proc.returncode != 0:
            pytest.fail(f"pg_ctl restart failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)

    def stop(self) -> None:
        """Stop the server (fast mode, no checkpoint) and delete its files. Idempotent."""
        if self._running:
            self._running = False
            subprocess.run(self._cmd(str(self.bin / "pg_ctl"), "stop", "-D", str(self.data),
                                     "-m", "immediate", "-w"),
                           capture_output=True, cwd=self.base, check=False, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str) -> str:
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        # FORCE: a test that leaked a connection must not break the next one.
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _running(prefix: str) -> Iterator[PgServer]:
    server = PgServer(bin=find_pg_bin(), base=Path(tempfile.mkdtemp(prefix=prefix)))
    # atexit as well as the finalizer: an interrupted session still stops the server.
    atexit.register(server.stop)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A private PostgreSQL server for the whole session."""
    yield from _running("tradelab-pg-")


@pytest.fixture()
def private_pg() -> Iterator[PgServer]:
    """A PostgreSQL server of one test's own, which the test may stop and restart."""
    yield from _running("tradelab-pg-own-")


@pytest.fixture(scope="session")
def pg_url(pg_server: PgServer) -> str:
    """SQLAlchemy URL (``postgresql+psycopg://``) of a session-wide test database."""
    return pg_server.create_database(TEST_DB)


@pytest.fixture()
def pg_db_url(pg_server: PgServer) -> Iterator[str]:
    """URL of a fresh, empty database for one test; dropped afterwards."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    url = pg_server.create_database(name)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database URL on each backend: SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_db_url"))


@pytest.fixture()
def store(store_url: str) -> Iterator[Any]:
    """A migrated :class:`tradelab.store.Store` on a fresh database of each backend."""
    from tradelab.store import Store

    s = Store(store_url)
    s.upgrade()
    yield s
    s.close()
