"""Alembic migration scripts for the live database (run via ``live.db.migrate``)."""
