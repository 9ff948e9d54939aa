"""Run the Alembic migrations programmatically (no ``alembic.ini`` needed).

    python -m live.db.migrate upgrade [URL]   # to head; URL defaults to DATABASE_URL / sqlite:///./trading_bot.db
    python -m live.db.migrate current [URL]
"""
from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from .session import database_url, make_engine, normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged scripts; the URL travels in ``attributes`` (no %-escaping)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = normalize_url(url) if url else database_url()
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def upgrade(url: str | Engine | None = None, revision: str = "head") -> str | None:
    """Upgrade the database to ``revision`` (default head); idempotent. Returns the revision now current."""
    engine, owned = (url, False) if isinstance(url, Engine) else (make_engine(url), True)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(engine.url.render_as_string(hide_password=False))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return current(engine)
    finally:
        if owned:
            engine.dispose()


def current(url: str | Engine | None = None) -> str | None:
    """The revision stamped in the database, ``None`` for a database never migrated."""
    engine, owned = (url, False) if isinstance(url, Engine) else (make_engine(url), True)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if owned:
            engine.dispose()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in {"upgrade", "current"}:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    url = argv[1] if len(argv) > 1 else None
    rev = upgrade(url) if argv[0] == "upgrade" else current(url)
    print(rev or "<none>")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
