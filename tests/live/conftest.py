"""Backends for the live-database tests: SQLite in tmp_path and a real PostgreSQL server.

The PostgreSQL server is started once per session on a free localhost port: ``initdb`` into a fresh temporary
directory, ``pg_ctl start`` with the socket in that directory, one new database per test, ``pg_ctl stop`` at
teardown. As root (pg_ctl refuses root) both run through ``runuser -u postgres --`` on a directory owned by
postgres. Binaries are looked up in ``EE_PG_BIN``, ``PATH``, ``pg_config --bindir`` and
``/usr/lib/postgresql/*/bin``. Without them (or without psycopg) the postgres cases are skipped -- unless
``EE_REQUIRE_POSTGRES=1``, which turns that into a failure (CI sets it).
"""
from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

REQUIRE_PG = os.environ.get("EE_REQUIRE_POSTGRES", "") == "1"


def _pg_bindir() -> Path | None:
    candidates = []
    if os.environ.get("EE_PG_BIN"):
        candidates.append(Path(os.environ["EE_PG_BIN"]))
    if shutil.which("pg_ctl"):
        candidates.append(Path(shutil.which("pg_ctl")).parent)
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10).stdout
            candidates.append(Path(out.strip()))
        except (OSError, subprocess.SubprocessError):
            pass

    def _ver(p: str) -> float:
        try:
            return float(Path(p).parent.name)
        except ValueError:
            return 0.0

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_ver, reverse=True)]
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    return None


def _unavailable(reason: str):
    if REQUIRE_PG:
        pytest.fail(f"PostgreSQL required (EE_REQUIRE_POSTGRES=1) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason} (set EE_REQUIRE_POSTGRES=1 to make this an error)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="ee-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.started = False
        self._n = itertools.count()

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        if self.as_root:
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root and runuser is missing")
            shutil.chown(self.root, user="postgres", group="postgres")  # KeyError/LookupError if no such user
        r = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{r.stdout}\n{r.stderr}")
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        r = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", opts, "start")
        if r.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{r.stdout}\n{r.stderr}\n{log}")
        self.started = True

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        import psycopg

        name = f"ee_test_{os.getpid()}_{next(self._n)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("initdb/pg_ctl not found (install postgresql server binaries or set EE_PG_BIN)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed (pip install 'psycopg[binary]')")
    server = PgServer(bindir)
    try:
        server.start()
    except (RuntimeError, OSError, LookupError, subprocess.SubprocessError) as exc:
        server.stop()
        _unavailable(f"could not start a server from {bindir}: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """An empty database URL per test, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trading_bot.db'}"
    return request.getfixturevalue("pg_server").create_database()


@pytest.fixture
def engine(db_url):
    from live.db.migrate import upgrade
    from live.db.session import make_engine

    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def repo(engine):
    from live.db.repo import Repository

    return Repository(engine)


@pytest.fixture
def fake():
    """The fake exchange (REST, signed private endpoints) on loopback."""
    from tests.live.exchange_setup import start_exchange

    with start_exchange() as f:
        yield f


@pytest.fixture
def clock():
    from tests.live.exchange_setup import Clock

    return Clock()


@pytest.fixture
def db(tmp_path):
    """A migrated SQLite database file (the live loop's default backend)."""
    from live.db.migrate import upgrade
    from live.db.session import make_engine

    eng = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()
