"""SQLAlchemy 2.0 models of the live database (architecture spec section 8, extended per bybit-v5-notes E).

Differences from the seed schema in spec 8.2, and why:

* ``orders`` is keyed for idempotency: ``client_order_id`` (sent to Bybit as ``orderLinkId``, at most 36 chars of
  ``[A-Za-z0-9_-]``) is UNIQUE NOT NULL; ``exchange_order_id`` is nullable (unknown until acknowledged) and UNIQUE.
  A row is written *before* any HTTP call (write-ahead intent, state ``Created``). ``state`` follows the order
  state machine in :data:`ALLOWED_TRANSITIONS`; every change is audited in ``order_events``.
* ``fills`` is new, keyed by Bybit's ``execId`` so a fill replayed by WebSocket, REST gap-fill or reconciliation
  is stored once. Round-trip ``trades`` are derived from fills, not written independently.
* ``positions`` are unique per (sleeve, symbol), not per symbol: four engines share one account.
* ``breaker_state`` keeps what ``eternal_engine.risk.breaker_nb`` needs to resume after a restart; ``control``
  is the singleton the ``halt``/``resume``/``status`` process commands act through.

Money and quantities are exact decimals (:class:`live.db.types.Money`), timestamps aware UTC
(:class:`live.db.types.UTCDateTime`); bar timestamps are int64 nanoseconds since the epoch, like the kernels.
"""
from __future__ import annotations

import enum
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import Money, UTCDateTime, utcnow

# Deterministic constraint names: the migration creates exactly these, on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


class OrderState(str, enum.Enum):
    CREATED = "Created"  # write-ahead intent persisted, nothing sent yet
    SUBMITTED = "Submitted"  # HTTP create about to go / in flight
    ACKNOWLEDGED = "Acknowledged"  # the exchange returned an orderId
    OPEN = "Open"  # resting on the book (Bybit "New")
    PARTIALLY_FILLED = "PartiallyFilled"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"  # definitive reject (or denied locally before sending)
    UNKNOWN = "Unknown"  # ambiguous outcome: resolve by querying orderLinkId, never by blind resend

    def __str__(self) -> str:
        return self.value


S = OrderState
TERMINAL_STATES = frozenset({S.FILLED, S.CANCELLED, S.REJECTED})

#: Allowed state changes (a state to itself is always allowed: duplicate exchange messages are normal).
#: Fills may additionally move any non-terminal order to PartiallyFilled/Filled (see ``Repository.record_fill``).
ALLOWED_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.CREATED: frozenset({S.SUBMITTED, S.REJECTED, S.CANCELLED, S.UNKNOWN}),
    S.SUBMITTED: frozenset(
        {S.ACKNOWLEDGED, S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.UNKNOWN}
    ),
    S.ACKNOWLEDGED: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.UNKNOWN}),
    S.OPEN: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.UNKNOWN}),
    S.PARTIALLY_FILLED: frozenset({S.FILLED, S.CANCELLED, S.UNKNOWN}),
    # Resolved by query: not found -> resend the same orderLinkId (Submitted) or give up (Rejected).
    S.UNKNOWN: frozenset(
        {S.SUBMITTED, S.ACKNOWLEDGED, S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED}
    ),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}


def can_transition(src: OrderState | str, dst: OrderState | str) -> bool:
    src, dst = OrderState(src), OrderState(dst)
    return src == dst or dst in ALLOWED_TRANSITIONS[src]


def _in(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


STATE_VALUES = [s.value for s in OrderState]
SIDES = ("Buy", "Sell")
SEVERITIES = ("P0", "P1", "P2", "P3")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {Decimal: Money(), datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"state IN ({_in(STATE_VALUES)})", name="state"),
        CheckConstraint(f"side IN ({_in(SIDES)})", name="side"),
        CheckConstraint("length(client_order_id) BETWEEN 1 AND 36", name="client_order_id_len"),
        Index(None, "state"),
        Index(None, "sleeve", "symbol"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(36), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    sleeve: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16))  # spot | linear
    side: Mapped[str] = mapped_column(String(4))  # Buy | Sell (Bybit spelling)
    order_type: Mapped[str] = mapped_column(String(16))  # Market | Limit
    qty: Mapped[Decimal]
    price: Mapped[Decimal | None]
    trigger_price: Mapped[Decimal | None]  # conditional (stop) orders: Bybit triggerPrice; migration 0002
    time_in_force: Mapped[str | None] = mapped_column(String(16))
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    bar_ts: Mapped[int | None] = mapped_column(BigInteger)  # ns since epoch of the bar that produced the intent
    intent: Mapped[str | None] = mapped_column(String(64))  # why: entry, exit, rebalance, stop, reconcile, ...
    state: Mapped[str] = mapped_column(String(20), default=OrderState.CREATED.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_exchange_update_ms: Mapped[int | None] = mapped_column(BigInteger)
    submit_attempts: Mapped[int] = mapped_column(Integer, default=0)
    filled_qty: Mapped[Decimal] = mapped_column(default=Decimal(0))
    avg_price: Mapped[Decimal | None]
    fees: Mapped[Decimal] = mapped_column(default=Decimal(0))

    def __repr__(self) -> str:
        return f"<Order {self.client_order_id} {self.side} {self.qty} {self.symbol} {self.state}>"


class OrderEvent(Base):
    """Audit trail: one row per state change (and per fill)."""

    __tablename__ = "order_events"
    __table_args__ = (Index(None, "client_order_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("orders.client_order_id", ondelete="CASCADE")
    )
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]


class Fill(Base):
    """One execution, keyed by Bybit ``execId``: the same execution reported twice is stored once."""

    __tablename__ = "fills"
    __table_args__ = (Index(None, "client_order_id"), Index(None, "exec_time"))

    exec_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(36), ForeignKey("orders.client_order_id"))
    exec_type: Mapped[str] = mapped_column(String(16), default="Trade")  # Trade | Funding | BustTrade | ...
    qty: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fee_currency: Mapped[str | None] = mapped_column(String(16))
    exec_time: Mapped[datetime]
    is_maker: Mapped[bool] = mapped_column(Boolean, default=False)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Position(Base):
    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("sleeve", "symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sleeve: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16), default="linear")
    qty: Mapped[Decimal] = mapped_column(default=Decimal(0))  # signed: > 0 long, < 0 short
    avg_price: Mapped[Decimal | None]
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Balance(Base):
    """Latest wallet snapshot per account type and coin (UNIFIED equity, spot holdings)."""

    __tablename__ = "balances"
    __table_args__ = (UniqueConstraint("account", "coin"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(32), default="UNIFIED")
    coin: Mapped[str] = mapped_column(String(16))
    wallet_balance: Mapped[Decimal] = mapped_column(default=Decimal(0))
    equity: Mapped[Decimal | None]
    available: Mapped[Decimal | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DailyStats(Base):
    """Per UTC day and sleeve (``sleeve='ALL'`` for the whole portfolio)."""

    __tablename__ = "daily_stats"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sleeve: Mapped[str] = mapped_column(String(32), primary_key=True, default="ALL")
    starting_balance: Mapped[Decimal | None]
    ending_balance: Mapped[Decimal | None]
    total_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fees: Mapped[Decimal] = mapped_column(default=Decimal(0))
    trade_count: Mapped[int] = mapped_column(Integer, default=0)
    win_count: Mapped[int] = mapped_column(Integer, default=0)
    loss_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EngineState(Base):
    """Checkpoint of one engine (CORE_HODL, TREND, FUNDING, TACTICAL) at its last processed bar."""

    __tablename__ = "engine_states"

    engine: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    bar_ts: Mapped[int | None] = mapped_column(BigInteger)
    allocation_pct: Mapped[float | None] = mapped_column(Double)
    detail: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BreakerState(Base):
    """Inputs/outputs of ``breaker_update_nb`` and ``loss_limits_update_nb`` carried between bars.

    NaN floats are stored as NULL (SQLite cannot store NaN); ``halted_since_ns = -1`` and ``day = week = -1``
    follow the kernels' "none yet" convention.
    """

    __tablename__ = "breaker_state"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True, default="portfolio")
    level: Mapped[int] = mapped_column(Integer, default=0)
    peak: Mapped[float | None] = mapped_column(Double)
    halted_since_ns: Mapped[int] = mapped_column(BigInteger, default=-1)
    day: Mapped[int] = mapped_column(BigInteger, default=-1)
    week: Mapped[int] = mapped_column(BigInteger, default=-1)
    day_anchor: Mapped[float | None] = mapped_column(Double)
    week_anchor: Mapped[float | None] = mapped_column(Double)
    day_halt: Mapped[bool] = mapped_column(Boolean, default=False)
    week_halt: Mapped[bool] = mapped_column(Boolean, default=False)
    prev_nav: Mapped[float | None] = mapped_column(Double)
    last_bar_ts: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(f"severity IN ({_in(SEVERITIES)})", name="severity"),
        Index(None, "acked", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    severity: Mapped[str] = mapped_column(String(2))  # P0 critical .. P3 low (spec 11.2)
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acked: Mapped[bool] = mapped_column(Boolean, default=False)
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(64))


class Control(Base):
    """Singleton row (id = 1) read by the live loop before every order: the emergency stop."""

    __tablename__ = "control"
    __table_args__ = (CheckConstraint("id = 1", name="singleton"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=1)
    halted: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


metadata = Base.metadata
