"""Column types that behave identically on SQLite and PostgreSQL.

* :class:`Money` -- exact ``Decimal`` quantised to 18 places. PostgreSQL stores ``NUMERIC(36, 18)``; SQLite has no
  exact decimal (NUMERIC affinity turns ``0.3`` into a binary float), so it stores the canonical text form.
* :class:`UTCDateTime` -- timezone-aware UTC datetimes in and out. PostgreSQL stores ``TIMESTAMP WITH TIME ZONE``;
  SQLite stores naive UTC text. Naive datetimes are refused on the way in.

These types are referenced by the migration scripts: keep their names and storage stable.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.types import TypeDecorator

SCALE = 18
PRECISION = 36
_QUANTUM = Decimal(1).scaleb(-SCALE)


def to_decimal(value) -> Decimal:
    """Exact conversion: floats go through ``repr`` (``0.1`` -> ``Decimal('0.1')``), not their binary expansion."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, float):
        d = Decimal(repr(value))
    else:
        try:
            d = Decimal(value)
        except (InvalidOperation, TypeError) as exc:
            raise ValueError(f"not a decimal number: {value!r}") from exc
    if not d.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return d


def quantize(value) -> Decimal:
    d = to_decimal(value).quantize(_QUANTUM)
    if d.adjusted() >= PRECISION - SCALE:
        raise ValueError(f"{value!r} exceeds NUMERIC({PRECISION}, {SCALE})")
    return d


class Money(TypeDecorator):
    """Exact decimal: NUMERIC(36, 18) on PostgreSQL, canonical text on SQLite."""

    impl = Numeric(PRECISION, SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(PRECISION, SCALE, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        d = quantize(value)
        return format(d, "f") if dialect.name == "sqlite" else d

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return quantize(value)

    @property
    def python_type(self):
        return Decimal


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    @property
    def python_type(self):
        return datetime


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
