"""Persistence for the live process: SQLAlchemy 2.0 models, engine/session helpers, Alembic migrations and a
small transactional repository.

SQLite (``sqlite:///./trading_bot.db``, WAL) by default; PostgreSQL via ``DATABASE_URL``. Import the pieces
from their modules (``live.db.models``, ``live.db.session``, ``live.db.migrate``, ``live.db.repo``).
"""
