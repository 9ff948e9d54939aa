"""Database URL, engine and session helpers.

* SQLite (default ``sqlite:///./trading_bot.db``): every connection runs ``PRAGMA journal_mode=WAL``,
  ``foreign_keys=ON`` and a 30 s busy timeout. pysqlite's own transaction handling is switched off so that
  SQLAlchemy emits ``BEGIN`` itself -- ``BEGIN IMMEDIATE`` for write transactions (``session_scope(write=True)``),
  which takes the write lock up front so read-modify-write sequences cannot lose updates.
* PostgreSQL: any ``DATABASE_URL`` starting ``postgresql://``/``postgres://`` is pointed at the psycopg 3 driver
  (``postgresql+psycopg://``; install ``psycopg[binary]``). Write transactions lock the rows they change with
  ``SELECT ... FOR UPDATE`` (see ``live.db.repo``).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///./trading_bot.db"
_IMMEDIATE = "ee_sqlite_begin_immediate"  # execution option read by the SQLite "begin" hook


def normalize_url(url: str) -> str:
    """``postgres://``/``postgresql://`` -> ``postgresql+psycopg://``; anything else unchanged."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def database_url() -> str:
    """``DATABASE_URL`` from the environment (normalised), else the SQLite default."""
    url = os.environ.get("DATABASE_URL", "").strip()
    return normalize_url(url) if url else DEFAULT_URL


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # pysqlite autocommit: SQLAlchemy's "begin" hook issues BEGIN
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA busy_timeout = 30000")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA journal_mode = WAL")  # persistent for file databases; 'memory' for :memory:
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """Create an engine for ``url`` (default :func:`database_url`) with the backend hooks described above."""
    url = normalize_url(url) if url else database_url()
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
    else:
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if backend == "sqlite":
        _install_sqlite_hooks(engine)
    return engine


@lru_cache(maxsize=8)
def _cached_engine(url: str) -> Engine:
    return make_engine(url)


def get_engine(url: str | None = None) -> Engine:
    """Process-wide engine per URL (default :func:`database_url`)."""
    return _cached_engine(normalize_url(url) if url else database_url())


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None, *, write: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception.

    ``write=True`` starts SQLite transactions with ``BEGIN IMMEDIATE`` (the write lock is taken before the first
    read); on PostgreSQL it changes nothing -- lock rows with ``with_for_update()``. Objects stay usable after
    the commit (``expire_on_commit=False``).
    """
    engine = engine if engine is not None else get_engine()
    session = Session(bind=engine, expire_on_commit=False)
    try:
        if write and engine.dialect.name == "sqlite":
            session.connection(execution_options={_IMMEDIATE: True})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
