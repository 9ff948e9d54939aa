"""Transactional operations the order manager and the process commands need.

Every public method runs in its own transaction (``session_scope(write=True)``: ``BEGIN IMMEDIATE`` on SQLite,
``SELECT ... FOR UPDATE`` on the order row on PostgreSQL) and is retried a few times on transient lock errors, so
concurrent writers (WebSocket thread, REST reconciler, CLI ``halt``) serialise instead of losing updates.
Returned ORM objects are detached snapshots.

Idempotency:
* :meth:`Repository.record_intent` -- one row per ``client_order_id``; a repeat returns the existing row
  (and raises :class:`IntentMismatch` if the repeat describes a different order).
* :meth:`Repository.record_fill` -- one row per ``exec_id``; a repeat is reported as ``duplicate`` and changes
  nothing.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from .models import (
    CLIENT_ORDER_ID_RE,
    SEVERITIES,
    SIDES,
    TERMINAL_STATES,
    Alert,
    Balance,
    BreakerState,
    Control,
    EngineState,
    Fill,
    Order,
    OrderEvent,
    OrderState,
    Position,
    can_transition,
)
from .session import session_scope
from .types import quantize, utcnow

T = TypeVar("T")


class RepoError(Exception):
    """Base class of the repository's errors."""


class InvalidClientOrderId(RepoError, ValueError):
    pass


class IntentMismatch(RepoError):
    """``record_intent`` repeated with the same client_order_id but a different order."""


class UnknownOrder(RepoError, LookupError):
    pass


class IllegalTransition(RepoError):
    def __init__(self, client_order_id: str, src: str, dst: str):
        super().__init__(f"order {client_order_id}: illegal transition {src} -> {dst}")
        self.client_order_id, self.src, self.dst = client_order_id, src, dst


@dataclass(frozen=True)
class FillResult:
    fill: Fill
    order: Order
    duplicate: bool


@dataclass(frozen=True)
class Status:
    halted: bool
    reason: str | None
    updated_by: str | None
    updated_at: datetime | None
    open_orders: int
    unacked_alerts: int


#: Fields ``transition`` may set together with the state.
TRANSITION_FIELDS = frozenset({"exchange_order_id", "last_error", "last_exchange_update_ms", "submit_attempts"})
_INTENT_KEY = ("sleeve", "symbol", "category", "side", "order_type", "qty", "price", "trigger_price", "reduce_only")
_NO_ORDER_FILL = frozenset({"Funding"})  # executions that do not fill an order
RECONCILE_EXEC_TYPE = "Reconcile"  # synthetic fills written by reconciliation (no exchange execId)


def validate_client_order_id(client_order_id: str) -> str:
    if not isinstance(client_order_id, str) or not CLIENT_ORDER_ID_RE.match(client_order_id):
        raise InvalidClientOrderId(
            f"client_order_id must be 1-36 chars of [A-Za-z0-9_-], got {client_order_id!r}"
        )
    return client_order_id


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _none_to_nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


class Repository:
    def __init__(self, engine: Engine, *, retries: int = 8, backoff_s: float = 0.02):
        self.engine = engine
        self.retries = retries
        self.backoff_s = backoff_s

    # -- plumbing -------------------------------------------------------------------------------------------
    def _run(self, fn: Callable[[Session], T], *, write: bool = True, retry_integrity: bool = False) -> T:
        """Run ``fn`` in one transaction; retry on lock/deadlock errors (and unique races if asked)."""
        retry_on: tuple[type[Exception], ...] = (OperationalError,) + ((IntegrityError,) if retry_integrity else ())
        for attempt in range(self.retries + 1):
            try:
                with session_scope(self.engine, write=write) as s:
                    return fn(s)
            except retry_on:
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff_s * (attempt + 1))
        raise AssertionError("unreachable")

    @staticmethod
    def _lock_order(s: Session, client_order_id: str) -> Order:
        order = s.scalars(
            select(Order).where(Order.client_order_id == client_order_id).with_for_update()
        ).one_or_none()
        if order is None:
            raise UnknownOrder(f"no order with client_order_id {client_order_id!r}")
        return order

    # -- orders ---------------------------------------------------------------------------------------------
    def record_intent(
        self,
        client_order_id: str,
        *,
        sleeve: str,
        symbol: str,
        side: str,
        qty,
        category: str = "linear",
        order_type: str = "Market",
        price=None,
        time_in_force: str | None = None,
        reduce_only: bool = False,
        bar_ts: int | None = None,
        intent: str | None = None,
        trigger_price=None,
    ) -> Order:
        """Write-ahead intent (state Created), before any HTTP call. Idempotent on ``client_order_id``."""
        validate_client_order_id(client_order_id)
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        qty = quantize(qty)
        if qty <= 0:
            raise ValueError(f"qty must be > 0, got {qty}")
        price = None if price is None else quantize(price)
        trigger_price = None if trigger_price is None else quantize(trigger_price)
        wanted = dict(sleeve=sleeve, symbol=symbol, category=category, side=side, order_type=order_type, qty=qty,
                      price=price, trigger_price=trigger_price, reduce_only=bool(reduce_only))

        def op(s: Session) -> Order:
            existing = s.scalars(select(Order).where(Order.client_order_id == client_order_id)).one_or_none()
            if existing is not None:
                diff = {k: (getattr(existing, k), v) for k, v in wanted.items() if getattr(existing, k) != v}
                if diff:
                    raise IntentMismatch(f"order {client_order_id} exists with different fields: {diff}")
                return existing
            order = Order(client_order_id=client_order_id, time_in_force=time_in_force, bar_ts=bar_ts,
                          intent=intent, state=OrderState.CREATED.value, **wanted)
            s.add(order)
            s.flush()  # the unique constraint fires here, inside the retry loop
            s.add(OrderEvent(client_order_id=client_order_id, from_state=None, to_state=order.state,
                             note=intent or "intent"))
            return order

        return self._run(op, retry_integrity=True)

    def get_order(self, client_order_id: str) -> Order | None:
        return self._run(
            lambda s: s.scalars(select(Order).where(Order.client_order_id == client_order_id)).one_or_none(),
            write=False,
        )

    def open_orders(self) -> list[Order]:
        """Every non-terminal order (what reconciliation must resolve against the exchange)."""
        terminal = [st.value for st in TERMINAL_STATES]
        return self._run(
            lambda s: list(s.scalars(select(Order).where(Order.state.not_in(terminal)).order_by(Order.id))),
            write=False,
        )

    def events(self, client_order_id: str) -> list[OrderEvent]:
        return self._run(
            lambda s: list(s.scalars(select(OrderEvent).where(OrderEvent.client_order_id == client_order_id)
                                     .order_by(OrderEvent.id))),
            write=False,
        )

    def transition(self, client_order_id: str, new_state: OrderState | str, *, note: str | None = None,
                   detail: dict[str, Any] | None = None, **fields) -> Order:
        """Move an order to ``new_state`` (audited), setting ``fields``; :class:`IllegalTransition` if forbidden.

        Moving to Submitted counts a submit attempt. A state to itself is allowed (duplicate exchange message):
        fields are applied, no event is written.
        """
        new = OrderState(new_state)
        bad = set(fields) - TRANSITION_FIELDS
        if bad:
            raise TypeError(f"transition() cannot set {sorted(bad)}; allowed: {sorted(TRANSITION_FIELDS)}")

        def op(s: Session) -> Order:
            order = self._lock_order(s, client_order_id)
            old = OrderState(order.state)
            if not can_transition(old, new):
                raise IllegalTransition(client_order_id, old.value, new.value)
            xid = fields.get("exchange_order_id")
            if xid is not None and order.exchange_order_id not in (None, xid):
                raise RepoError(f"order {client_order_id}: exchange_order_id {order.exchange_order_id} != {xid}")
            for k, v in fields.items():
                setattr(order, k, v)
            if new != old:
                order.state = new.value
                if new == OrderState.SUBMITTED and "submit_attempts" not in fields:
                    order.submit_attempts = (order.submit_attempts or 0) + 1
                order.updated_at = utcnow()
                s.add(OrderEvent(client_order_id=client_order_id, from_state=old.value, to_state=new.value,
                                 note=note, detail=detail))
            return order

        return self._run(op)

    def record_fill(self, exec_id: str, client_order_id: str, *, qty, price, exec_time: datetime, fee=0,
                    fee_currency: str | None = None, is_maker: bool = False, exec_type: str = "Trade",
                    seq: int | None = None) -> FillResult:
        """Store one execution (idempotent on ``exec_id``) and roll it into the order.

        ``filled_qty``, the volume-weighted ``avg_price`` and ``fees`` are updated; a non-terminal order becomes
        Filled once ``filled_qty >= qty``, else PartiallyFilled (a fill is evidence the order reached the book,
        whatever state the order was in). A fill for a terminal order is stored and counted but leaves the state
        alone (a late report); an overfill raises a P1 alert.
        """
        if not exec_id or len(exec_id) > 64:
            raise ValueError(f"exec_id must be 1-64 chars, got {exec_id!r}")
        qty, price, fee = quantize(qty), quantize(price), quantize(fee)
        if qty <= 0:
            raise ValueError(f"fill qty must be > 0, got {qty}")

        def op(s: Session) -> FillResult:
            order = self._lock_order(s, client_order_id)
            existing = s.get(Fill, exec_id)
            if existing is not None:
                if existing.client_order_id != client_order_id:
                    raise RepoError(f"exec_id {exec_id} already recorded for order {existing.client_order_id}")
                return FillResult(existing, order, True)
            fill = Fill(exec_id=exec_id, client_order_id=client_order_id, exec_type=exec_type, qty=qty,
                        price=price, fee=fee, fee_currency=fee_currency, exec_time=exec_time,
                        is_maker=bool(is_maker), seq=seq)
            s.add(fill)
            s.flush()
            if exec_type in _NO_ORDER_FILL:
                return FillResult(fill, order, False)
            old_state = OrderState(order.state)
            prev = order.filled_qty or Decimal(0)
            total = prev + qty
            prev_avg = order.avg_price or Decimal(0)
            order.avg_price = quantize((prev_avg * prev + price * qty) / total)
            order.filled_qty = total
            order.fees = (order.fees or Decimal(0)) + fee
            if old_state in TERMINAL_STATES:
                new_state, note = old_state, f"fill {exec_id} after terminal state"
            else:
                new_state = OrderState.FILLED if total >= order.qty else OrderState.PARTIALLY_FILLED
                note = f"fill {exec_id}"
            order.state = new_state.value
            order.updated_at = utcnow()
            s.add(OrderEvent(client_order_id=client_order_id, from_state=old_state.value, to_state=new_state.value,
                             note=note, detail={"exec_id": exec_id, "qty": str(qty), "price": str(price)}))
            if total > order.qty:
                s.add(Alert(severity="P1", code="OVERFILL", message=f"order {client_order_id} filled {total} > "
                            f"{order.qty}", detail={"client_order_id": client_order_id, "exec_id": exec_id}))
            return FillResult(fill, order, False)

        return self._run(op, retry_integrity=True)

    def fills(self, client_order_id: str) -> list[Fill]:
        return self._run(
            lambda s: list(s.scalars(select(Fill).where(Fill.client_order_id == client_order_id)
                                     .order_by(Fill.exec_time, Fill.exec_id))),
            write=False,
        )

    # -- control (process commands) ----------------------------------------------------------------------
    @staticmethod
    def _control(s: Session) -> Control:
        row = s.scalars(select(Control).where(Control.id == 1).with_for_update()).one_or_none()
        if row is None:  # a database created without the migration's seed row
            row = Control(id=1, halted=False)
            s.add(row)
            s.flush()
        return row

    def set_halt(self, reason: str, updated_by: str = "operator") -> Status:
        """Emergency stop: the live loop must place no order while halted. Raises a P0 alert."""
        def op(s: Session) -> None:
            row = self._control(s)
            row.halted, row.reason, row.updated_by, row.updated_at = True, reason, updated_by, utcnow()
            s.add(Alert(severity="P0", code="HALT", message=f"halted by {updated_by}: {reason}"))

        self._run(op)
        return self.status()

    def clear_halt(self, updated_by: str = "operator", reason: str | None = None) -> Status:
        def op(s: Session) -> None:
            row = self._control(s)
            row.halted, row.reason, row.updated_by, row.updated_at = False, reason, updated_by, utcnow()
            s.add(Alert(severity="P2", code="RESUME", message=f"resumed by {updated_by}" + (f": {reason}"
                                                                                            if reason else "")))

        self._run(op)
        return self.status()

    def status(self) -> Status:
        def op(s: Session) -> Status:
            row = s.get(Control, 1)
            terminal = [st.value for st in TERMINAL_STATES]
            n_open = s.scalar(select(func.count()).select_from(Order).where(Order.state.not_in(terminal)))
            n_alerts = s.scalar(select(func.count()).select_from(Alert).where(Alert.acked.is_(False)))
            if row is None:
                return Status(False, None, None, None, n_open, n_alerts)
            return Status(row.halted, row.reason, row.updated_by, row.updated_at, n_open, n_alerts)

        return self._run(op, write=False)

    def is_halted(self) -> bool:
        return self.status().halted

    # -- alerts -------------------------------------------------------------------------------------------
    def add_alert(self, severity: str, code: str, message: str, detail: dict[str, Any] | None = None) -> Alert:
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")

        def op(s: Session) -> Alert:
            alert = Alert(severity=severity, code=code, message=message, detail=detail)
            s.add(alert)
            s.flush()
            return alert

        return self._run(op)

    def ack_alert(self, alert_id: int, acked_by: str = "operator") -> Alert:
        def op(s: Session) -> Alert:
            alert = s.get(Alert, alert_id, with_for_update=True)
            if alert is None:
                raise LookupError(f"no alert {alert_id}")
            alert.acked, alert.acked_at, alert.acked_by = True, utcnow(), acked_by
            return alert

        return self._run(op)

    def unacked_alerts(self) -> list[Alert]:
        return self._run(
            lambda s: list(s.scalars(select(Alert).where(Alert.acked.is_(False)).order_by(Alert.id))), write=False
        )

    # -- positions, engines, breaker ------------------------------------------------------------------------
    def upsert_position(self, sleeve: str, symbol: str, qty, avg_price=None, *, category: str = "linear",
                        realized_pnl=None) -> Position:
        def op(s: Session) -> Position:
            pos = s.scalars(select(Position).where(Position.sleeve == sleeve, Position.symbol == symbol)
                            .with_for_update()).one_or_none()
            if pos is None:
                pos = Position(sleeve=sleeve, symbol=symbol, category=category)
                s.add(pos)
            pos.qty = quantize(qty)
            pos.avg_price = None if avg_price is None else quantize(avg_price)
            if realized_pnl is not None:
                pos.realized_pnl = quantize(realized_pnl)
            pos.updated_at = utcnow()
            s.flush()
            return pos

        return self._run(op, retry_integrity=True)

    def save_engine_state(self, engine: str, state: str, *, bar_ts: int | None = None,
                          allocation_pct: float | None = None, detail: dict[str, Any] | None = None) -> EngineState:
        def op(s: Session) -> EngineState:
            row = s.get(EngineState, engine, with_for_update=True) or EngineState(engine=engine)
            row.state, row.bar_ts, row.allocation_pct, row.detail = state, bar_ts, allocation_pct, detail
            row.updated_at = utcnow()
            s.add(row)
            s.flush()
            return row

        return self._run(op, retry_integrity=True)

    def save_breaker_state(self, *, level: int, peak: float, halted_since_ns: int, day: int = -1, week: int = -1,
                           day_anchor: float = math.nan, week_anchor: float = math.nan, day_halt: bool = False,
                           week_halt: bool = False, prev_nav: float = math.nan, last_bar_ts: int | None = None,
                           scope: str = "portfolio") -> None:
        """Persist the breaker/loss-limit carry (the arguments of ``breaker_update_nb``/``loss_limits_update_nb``)."""
        def op(s: Session) -> None:
            row = s.get(BreakerState, scope, with_for_update=True) or BreakerState(scope=scope)
            row.level, row.peak, row.halted_since_ns = int(level), _nan_to_none(peak), int(halted_since_ns)
            row.day, row.week = int(day), int(week)
            row.day_anchor, row.week_anchor = _nan_to_none(day_anchor), _nan_to_none(week_anchor)
            row.day_halt, row.week_halt = bool(day_halt), bool(week_halt)
            row.prev_nav, row.last_bar_ts, row.updated_at = _nan_to_none(prev_nav), last_bar_ts, utcnow()
            s.add(row)

        self._run(op, retry_integrity=True)

    def load_breaker_state(self, scope: str = "portfolio") -> dict[str, Any] | None:
        """The saved carry with NaN restored, or ``None`` (start with level 0, peak NaN, day = week = -1)."""
        def op(s: Session) -> dict[str, Any] | None:
            row = s.get(BreakerState, scope)
            if row is None:
                return None
            return dict(level=row.level, peak=_none_to_nan(row.peak), halted_since_ns=row.halted_since_ns,
                        day=row.day, week=row.week, day_anchor=_none_to_nan(row.day_anchor),
                        week_anchor=_none_to_nan(row.week_anchor), day_halt=row.day_halt, week_halt=row.week_halt,
                        prev_nav=_none_to_nan(row.prev_nav), last_bar_ts=row.last_bar_ts)

        return self._run(op, write=False)

    # -- reconciliation (live.reconcile) ----------------------------------------------------------------------
    def position_fills(self, category: str) -> list:
        """Rows ``(sleeve, symbol, side, qty, fee, fee_currency, exec_type, exec_time)`` of every fill in
        ``category`` except funding: the ledger that positions and spot holdings are derived from."""
        return self._run(
            lambda s: list(s.execute(
                select(Order.sleeve, Order.symbol, Order.side, Fill.qty, Fill.fee, Fill.fee_currency,
                       Fill.exec_type, Fill.exec_time)
                .join(Fill, Fill.client_order_id == Order.client_order_id)
                .where(Order.category == category, Fill.exec_type.not_in(_NO_ORDER_FILL))).all()),
            write=False,
        )

    def record_reconciliation_fill(self, client_order_id: str, exec_id: str, *, sleeve: str, symbol: str,
                                   category: str, side: str, qty, price, exec_time: datetime,
                                   note: str) -> FillResult:
        """A synthetic order and its fill (``exec_type`` :data:`RECONCILE_EXEC_TYPE`) in one transaction, for a
        position change no execution explains. The order is Filled from the start, so it is never sent;
        idempotent on ``exec_id``."""
        validate_client_order_id(client_order_id)
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        qty, price = quantize(qty), quantize(price)

        def op(s: Session) -> FillResult:
            existing = s.get(Fill, exec_id)
            if existing is not None:
                return FillResult(existing, self._lock_order(s, existing.client_order_id), True)
            order = Order(client_order_id=client_order_id, sleeve=sleeve, symbol=symbol, category=category,
                          side=side, order_type="Market", qty=qty, price=None, intent="reconcile",
                          state=OrderState.FILLED.value, filled_qty=qty, avg_price=price)
            s.add(order)
            s.flush()
            s.add(OrderEvent(client_order_id=client_order_id, from_state=None, to_state=order.state, note=note))
            fill = Fill(exec_id=exec_id, client_order_id=client_order_id, exec_type=RECONCILE_EXEC_TYPE, qty=qty,
                        price=price, exec_time=exec_time)
            s.add(fill)
            s.flush()
            return FillResult(fill, order, False)

        return self._run(op, retry_integrity=True)

    def save_balances(self, coins: dict[str, dict[str, Any]], account: str = "UNIFIED") -> None:
        """Upsert the latest wallet snapshot: ``coin -> {wallet_balance, equity, available}``."""
        def op(s: Session) -> None:
            for coin, v in coins.items():
                row = s.scalars(select(Balance).where(Balance.account == account, Balance.coin == coin)
                                .with_for_update()).one_or_none()
                if row is None:
                    row = Balance(account=account, coin=coin)
                    s.add(row)
                row.wallet_balance = quantize(v["wallet_balance"])
                row.equity = None if v.get("equity") is None else quantize(v["equity"])
                row.available = None if v.get("available") is None else quantize(v["available"])
                row.updated_at = utcnow()

        self._run(op, retry_integrity=True)

    def balances(self, account: str = "UNIFIED") -> dict[str, Balance]:
        return self._run(lambda s: {b.coin: b for b in s.scalars(select(Balance).where(Balance.account == account))},
                         write=False)
