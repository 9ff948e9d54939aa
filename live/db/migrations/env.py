"""Alembic environment for the live database.

Run through ``live.db.migrate`` (which passes an open connection in ``config.attributes['connection']``) or the
``alembic`` CLI with ``-x url=...``/``DATABASE_URL``. ``target_metadata`` is the models' metadata, used by
``alembic revision --autogenerate`` when writing new revisions; migrations themselves are explicit scripts.
"""
from __future__ import annotations

from alembic import context

from live.db.models import metadata as target_metadata
from live.db.session import database_url, make_engine, normalize_url

config = context.config


def _url() -> str:
    x = context.get_x_argument(as_dictionary=True)
    url = x.get("url") or config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    return normalize_url(url) if url else database_url()


def _configure(**kw) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,  # SQLite needs batch mode (table copy) for ALTERs in future revisions
        **kw,
    )


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.begin() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
