"""Order management: write-ahead intents, deterministic client order ids, resolution by query.

The rules (issue 5 item 3, ``/work/shared/spec/bybit-v5-notes.md`` sections 0, C, D, E):

* :func:`client_order_id` derives the id sent as ``orderLinkId`` from (sleeve, symbol, bar, intent, seq) only, so
  the same trading decision always maps to the same id: a retry, a repeated ``submit`` or a restart can never
  create a second exchange order (Bybit answers 110072/170141 to a second create with the same id).
* :meth:`OrderManager.submit` applies the instrument filters (step, tick, minimum quantity/notional) first -- an
  order refused there is recorded as ``Rejected`` with the reason and nothing is sent -- then commits the intent
  (``Created``) and ``Submitted`` *before* the single ``place_order`` call. Outcomes:

  ========================  ==========================================================================
  ack                       ``Acknowledged`` with ``exchange_order_id``
  DuplicateOrderError       "already placed": query the order by ``orderLinkId`` and adopt it
  AmbiguousError            ``Unknown`` (never ``Rejected``, never resent)
  RejectedError             ``Rejected`` with the reason (AuthError additionally halts trading)
  TransientError            the client already retried with the same ``orderLinkId``; the request was
                            provably *not accepted*: stays ``Submitted`` (``last_error`` starts with
                            :data:`NOT_ACCEPTED`) for :meth:`OrderManager.resolve`
  ========================  ==========================================================================

* :meth:`OrderManager.resolve` (alias :meth:`~OrderManager.sync`) queries every non-final order by
  ``orderLinkId`` (realtime, then history, then the execution list), maps the exchange status onto our state
  machine and records the executions as fills (idempotent on ``execId``). When the exchange does not know the
  order:

  - ``Created`` (intent committed, never sent: a crash between intent and submit) -> sent now (same id), or
    ``Cancelled`` as "not sent" when ``resubmit_created=False`` or trading is halted -> left ``Created``;
  - ``Submitted`` whose send provably failed before acceptance (:data:`NOT_ACCEPTED`) -> ``Rejected``
    ("not found on exchange");
  - any other ``Submitted``/``Unknown`` -> ``Unknown`` plus one P1 alert while the row's last update (at or
    after the last send) is younger than ``unknown_grace_s`` (the request may still be in flight); once older, ``Rejected`` ("not found on exchange"). That is safe
    because a signed request older than ``recv_window`` (5 s) is refused by the gateway, and realtime + history
    + executions show every order accepted in the last 24 h (notes C, D row 4). Nothing is ever resent from
    ``Submitted``/``Unknown``.

* Restart safety: a new :class:`OrderManager` on the same database calls :meth:`resolve` first; ids are
  deterministic and the intent row exists, so nothing is placed twice.

The manager is single-threaded (one live loop); the repository serialises concurrent writers (WebSocket
handlers) itself, and fills are deduplicated on ``execId``.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from eternal_engine.errors import ConfigError
from live.bybit.client import round_price, round_qty
from live.bybit.errors import (
    AmbiguousError,
    AuthError,
    DuplicateOrderError,
    ExchangeError,
    OrderNotActiveError,
    RejectedError,
    TransientError,
)
from live.db.models import TERMINAL_STATES, Fill, Order, OrderState, can_transition
from live.db.repo import IllegalTransition, Repository
from live.db.session import session_scope

log = logging.getLogger("live.orders")

S = OrderState
NOT_ACCEPTED = "not accepted:"  # last_error prefix: the create provably did not reach the book (TransientError)
NOT_FOUND = "not found on exchange"
#: Exchange ``orderStatus`` -> our state. Conditional orders: ``Untriggered``/``Triggered`` (transient) are Open,
#: ``Deactivated`` (cancelled before or on triggering, e.g. a reduce-only stop with no position) is Cancelled.
EXCHANGE_STATUS: dict[str, OrderState] = {
    "Created": S.ACKNOWLEDGED, "New": S.OPEN, "Untriggered": S.OPEN, "Triggered": S.OPEN,
    "PartiallyFilled": S.PARTIALLY_FILLED, "Filled": S.FILLED, "Cancelled": S.CANCELLED,
    "PartiallyFilledCanceled": S.CANCELLED, "Deactivated": S.CANCELLED, "Rejected": S.REJECTED,
}
NON_FINAL = frozenset(S) - TERMINAL_STATES
ORDER_TYPES = {"market": ("Market", None), "limit": ("Limit", "GTC"), "postonly": ("Limit", "PostOnly"),
               "ioc": ("Limit", "IOC"), "fok": ("Limit", "FOK"), "stop": ("Market", None)}

_ID_VERSION = "v1"
_SAFE = re.compile(r"[^A-Za-z0-9]")


# ============================================================================================ client order ids
def client_order_id(sleeve: str, symbol: str, bar_ts: int, intent: str, seq: int = 0) -> str:
    """The deterministic ``orderLinkId`` of one trading decision.

    Format ``<sleeve:4><symbol:8>-<hash:22>`` (at most 35 characters of ``[A-Za-z0-9-]``), e.g.
    ``TRENBTCUSDT-ab3...``: a readable prefix (the first 4 alphanumerics of the sleeve, upper-cased, and the first 8
    of the symbol) plus the first 22 characters (110 bits) of the lower-case base32 SHA-256 of the full tuple
    ``v1 | sleeve | symbol | bar_ts | intent | seq``. The prefix is for humans only; uniqueness comes from the
    hash over the *untruncated* fields, so two different tuples collide with probability ~2^-110 per pair.
    ``seq`` distinguishes several orders of one decision (e.g. the legs of a rebalance).
    """
    if not sleeve or not symbol or intent is None or intent == "":
        raise ValueError("client_order_id needs a sleeve, a symbol and an intent")
    bar_ts, seq = int(bar_ts), int(seq)
    if seq < 0:
        raise ValueError("seq must be >= 0")
    key = "|".join((_ID_VERSION, str(sleeve), str(symbol), str(bar_ts), str(intent), str(seq)))
    digest = base64.b32encode(hashlib.sha256(key.encode("utf-8")).digest()).decode("ascii").lower()
    prefix = _SAFE.sub("", str(sleeve)).upper()[:4] + _SAFE.sub("", str(symbol)).upper()[:8]
    return f"{prefix}-{digest[:22]}"


# ============================================================================================ intents
@dataclass(frozen=True)
class OrderIntent:
    """One order the strategy wants. ``order_type``: market | limit | postonly | ioc | fok | stop.

    ``reference_price`` (optional) lets a market order's notional be checked before sending. ``stop``: an
    exchange-side stop-market order (linear, ``reduce_only=True``, ``trigger_price`` required), resting
    ``Untriggered`` (our ``Open``) until the last price falls to the trigger (Sell, protecting a long) or rises
    to it (Buy, protecting a short); the trigger is rounded to the tick towards the market (Sell up, Buy down)."""

    sleeve: str
    symbol: str
    side: str
    qty: Any
    bar_ts: int
    intent: str
    category: str = "linear"
    order_type: str = "market"
    price: Any = None
    reduce_only: bool = False
    seq: int = 0
    reference_price: Any = None
    trigger_price: Any = None

    def __post_init__(self):
        side = {"buy": "Buy", "sell": "Sell"}.get(str(self.side).lower())
        if side is None:
            raise ValueError(f"side must be Buy or Sell, got {self.side!r}")
        object.__setattr__(self, "side", side)
        otype = str(self.order_type).lower()
        if otype not in ORDER_TYPES:
            raise ValueError(f"order_type must be one of {sorted(ORDER_TYPES)}, got {self.order_type!r}")
        object.__setattr__(self, "order_type", otype)
        if Decimal(str(self.qty)) <= 0:
            raise ValueError(f"qty must be > 0, got {self.qty}")
        if otype not in ("market", "stop") and self.price is None:
            raise ValueError(f"a {otype} order needs a price")
        if otype == "stop":
            if self.trigger_price is None or Decimal(str(self.trigger_price)) <= 0:
                raise ValueError(f"a stop order needs a trigger_price > 0, got {self.trigger_price!r}")
            if not self.reduce_only or self.category != "linear":
                raise ValueError("a stop order closes a linear position: pass reduce_only=True, category='linear'")
        elif self.trigger_price is not None:
            raise ValueError(f"trigger_price is for order_type='stop' only, not {otype!r}")

    @property
    def client_order_id(self) -> str:
        return client_order_id(self.sleeve, self.symbol, self.bar_ts, self.intent, self.seq)


class TradingHalted(RuntimeError):
    """``submit`` while the control row says halted: nothing recorded, nothing sent."""


@dataclass
class ResolveReport:
    checked: int = 0
    changed: dict[str, str] = field(default_factory=dict)      # client_order_id -> new state
    unresolved: list[str] = field(default_factory=list)         # still Unknown (alerted)
    errors: dict[str, str] = field(default_factory=dict)        # query failed: state left alone


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


# ============================================================================================ the manager
class OrderManager:
    def __init__(self, repo: Repository, client, *, clock: Callable[[], float] = time.time,
                 unknown_grace_s: float = 120.0, resubmit_created: bool = True, alert=None, metrics=None):
        self.repo = repo
        self.client = client
        self.clock = clock
        self.unknown_grace_s = float(unknown_grace_s)
        self.resubmit_created = resubmit_created
        self.alert = alert or repo.add_alert  # e.g. `live.alerts.Alerter.alert` (stored, then Telegram)
        self.metrics = metrics  # `live.metrics.LiveMetrics`: submit-to-ack latency, errors, outcomes

    # ------------------------------------------------------------------ submit
    def prepare(self, intent: OrderIntent) -> Order:
        """Apply the instrument filters and commit the write-ahead intent (``Created``); nothing is sent.

        Idempotent: the same intent returns the existing row, whatever its state. Refused by the filters ->
        the row is recorded ``Rejected`` with the reason (no request)."""
        cid = intent.client_order_id
        existing = self.repo.get_order(cid)
        if existing is not None:
            return existing
        otype, tif = ORDER_TYPES[intent.order_type]
        base = dict(sleeve=intent.sleeve, symbol=intent.symbol, side=intent.side, category=intent.category,
                    order_type=otype, time_in_force=tif, reduce_only=bool(intent.reduce_only),
                    bar_ts=int(intent.bar_ts), intent=intent.intent)
        try:
            inst = self.client.instrument(intent.category, intent.symbol)
            px = round_price(inst, intent.price, intent.side) if otype == "Limit" else None
            trig = None if intent.trigger_price is None else round_price(inst, intent.trigger_price, intent.side)
            qty = round_qty(inst, intent.qty, px if px is not None else intent.reference_price,
                            check_notional=not intent.reduce_only)
        except RejectedError as exc:  # refused locally: record it, send nothing
            self.repo.record_intent(cid, qty=intent.qty, price=intent.price, trigger_price=intent.trigger_price,
                                    **base)
            return self.repo.transition(cid, S.REJECTED, note="instrument filters", last_error=str(exc)[:2000])
        return self.repo.record_intent(cid, qty=qty, price=px, trigger_price=trig, **base)

    def submit(self, intent: OrderIntent) -> Order:
        """Filters -> intent (Created) -> Submitted -> one ``place_order`` -> state per the module table.

        A repeated ``submit`` of the same intent sends nothing again: it returns the row as it is."""
        if self.repo.is_halted():
            raise TradingHalted(f"trading is halted: {intent.client_order_id} not submitted")
        order = self.prepare(intent)
        if OrderState(order.state) != S.CREATED:
            return order
        order = self._send(order)
        if self.metrics is not None:
            self.metrics.record_order(order.state)
        return order

    def _send(self, order: Order) -> Order:
        cid = order.client_order_id
        self.repo.transition(cid, S.SUBMITTED, note="create sent")
        t0 = time.monotonic()
        try:
            try:
                ack = self.client.place_order(
                    order.category, order.symbol, order.side, order.qty, client_order_id=cid,
                    order_type=order.order_type, price=order.price, time_in_force=order.time_in_force,
                    reduce_only=True if order.reduce_only else None,
                    instrument=self.client.instrument(order.category, order.symbol),
                    **({} if order.trigger_price is None else {"trigger_price": order.trigger_price}))
            except ExchangeError as exc:
                if self.metrics is not None:
                    self.metrics.record_error(exc)
                raise
        except DuplicateOrderError as exc:  # the order exists already: adopt it, never a second one
            log.info("%s: duplicate orderLinkId, adopting the existing order", cid)
            return self._adopt_after_duplicate(cid, exc)
        except AuthError as exc:
            order = self.repo.transition(cid, S.REJECTED, note="auth error", last_error=str(exc)[:2000])
            self.repo.set_halt(f"exchange authentication failed: {exc}", updated_by="order-manager")
            return order
        except RejectedError as exc:
            return self.repo.transition(cid, S.REJECTED, note="rejected by the exchange",
                                        last_error=str(exc)[:2000])
        except AmbiguousError as exc:
            return self.repo.transition(cid, S.UNKNOWN, note="ambiguous create", last_error=str(exc)[:2000])
        except TransientError as exc:  # every attempt was refused before acceptance
            return self.repo.transition(cid, S.SUBMITTED, last_error=f"{NOT_ACCEPTED} {exc}"[:2000])
        except BaseException as exc:  # a bug or an interrupt while the request may be out: ambiguous
            self.repo.transition(cid, S.UNKNOWN, note="unexpected error during create",
                                 last_error=f"{type(exc).__name__}: {exc}"[:2000])
            raise
        if self.metrics is not None:
            self.metrics.observe_order_latency(time.monotonic() - t0)
        return self.repo.transition(cid, S.ACKNOWLEDGED, note="ack", exchange_order_id=ack.order_id,
                                    last_error=None)

    def _adopt_after_duplicate(self, cid: str, exc: ExchangeError) -> Order:
        order = self.repo.get_order(cid)
        try:
            ex = self.client.get_order(order.category, order.symbol, client_order_id=cid)
        except ExchangeError as qexc:
            return self.repo.transition(cid, S.UNKNOWN, note="duplicate, query failed",
                                        last_error=f"{exc}; query: {qexc}"[:2000])
        if ex is None:  # the exchange says it exists but will not show it yet: resolve later
            return self.repo.transition(cid, S.UNKNOWN, note="duplicate, not visible yet",
                                        last_error=str(exc)[:2000])
        return self._apply_exchange(order, ex)

    # ------------------------------------------------------------------ resolve / sync
    def resolve(self) -> ResolveReport:
        """Bring every non-final order in line with the exchange (see the module docstring)."""
        report = ResolveReport()
        for order in self.repo.open_orders():
            report.checked += 1
            before = order.state
            try:
                after = self.resolve_order(order)
            except ExchangeError as exc:
                report.errors[order.client_order_id] = str(exc)
                log.warning("resolve %s: %s", order.client_order_id, exc)
                continue
            if after.state != before:
                report.changed[order.client_order_id] = after.state
            if after.state == S.UNKNOWN.value:
                report.unresolved.append(order.client_order_id)
        return report

    sync = resolve

    def resolve_order(self, order: Order | str) -> Order:
        """Resolve one order by query (raises :class:`ExchangeError` when the query itself fails). A given row
        is read again: a pushed update may have moved it on since it was loaded."""
        order = self.repo.get_order(order if isinstance(order, str) else order.client_order_id)
        cid, state = order.client_order_id, OrderState(order.state)
        if state in TERMINAL_STATES:
            return order
        ex = self.client.get_order(order.category, order.symbol, client_order_id=cid,
                                   order_id=order.exchange_order_id)
        if ex is not None:
            return self._apply_exchange(order, ex)
        execs = self.client.executions(order.category, order.symbol, client_order_id=cid)
        if execs:  # fills but no order record (history lag): the fills are the evidence
            self._record_fills(cid, execs)
            self._alert_once("P2", "ORDER_NOT_VISIBLE", cid, f"order {cid} has executions but no order record")
            return self.repo.get_order(cid)
        # -- the exchange does not know it
        if state == S.CREATED:
            if self.repo.is_halted():
                return order
            if not self.resubmit_created:
                return self.repo.transition(cid, S.CANCELLED, note="not sent (intent not resubmitted)")
            return self._send(order)
        if state == S.SUBMITTED and (order.last_error or "").startswith(NOT_ACCEPTED):
            return self.repo.transition(cid, S.REJECTED, note=NOT_FOUND,
                                        last_error=f"{NOT_FOUND}; {order.last_error}"[:2000])
        if state in (S.SUBMITTED, S.UNKNOWN):
            age = self.clock() - order.updated_at.timestamp()
            if age >= self.unknown_grace_s:
                return self.repo.transition(
                    cid, S.REJECTED, note=NOT_FOUND,
                    last_error=f"{NOT_FOUND} {age:.0f}s after the last send (realtime, history and executions "
                               f"empty); {order.last_error or ''}"[:2000])
            if state == S.SUBMITTED:
                order = self.repo.transition(cid, S.UNKNOWN, note="not found yet, maybe in flight")
            self._alert_once("P1", "ORDER_UNKNOWN", cid, f"order {cid} not found on the exchange yet; kept Unknown "
                             f"(never resent), rejected after {self.unknown_grace_s:.0f}s if still absent")
            return order
        # Acknowledged/Open/PartiallyFilled that the exchange no longer shows anywhere: do not guess
        self._alert_once("P1", "ORDER_VANISHED", cid, f"order {cid} ({state.value}) not found on the exchange")
        return order

    def _apply_exchange(self, order: Order, ex, *, fetch_fills: bool = True) -> Order:
        """Adopt the exchange's view of one order: id, fills (by execId), then the mapped state."""
        cid = order.client_order_id
        state = OrderState(order.state)
        fields = dict(exchange_order_id=ex.order_id or None, last_exchange_update_ms=ex.updated_ms or None)
        fields = {k: v for k, v in fields.items() if v is not None}
        if state in (S.CREATED, S.SUBMITTED, S.UNKNOWN):
            if state == S.CREATED:
                self.repo.transition(cid, S.SUBMITTED, note="found on the exchange")
            self.repo.transition(cid, S.ACKNOWLEDGED, note="found on the exchange", **fields)
        elif fields:
            self.repo.transition(cid, state, **fields)
        if fetch_fills and (ex.cum_exec_qty > 0 or ex.status in ("Filled", "PartiallyFilled",
                                                                  "PartiallyFilledCanceled")):
            self._record_fills(cid, self.client.executions(order.category, order.symbol, client_order_id=cid,
                                                           order_id=ex.order_id or None))
        target = EXCHANGE_STATUS.get(ex.status)
        current = self.repo.get_order(cid)
        if target is None:
            self._alert_once("P2", "ORDER_STATUS", cid, f"order {cid}: unmapped exchange status {ex.status!r}")
            return current
        cur = OrderState(current.state)
        if target == S.FILLED and current.filled_qty < ex.cum_exec_qty:
            target = S.PARTIALLY_FILLED if cur != S.FILLED else cur  # wait for the missing executions
        if cur != target and can_transition(cur, target):
            note = f"exchange status {ex.status}"
            err = ex.reject_reason if target in (S.REJECTED, S.CANCELLED) and ex.reject_reason not in (
                "", "EC_NoError") else None
            current = self.repo.transition(cid, target, note=note, **({"last_error": err} if err else {}))
        return current

    def _record_fills(self, cid: str, execs) -> int:
        new = 0
        for e in execs:
            if e.exec_type not in ("Trade", "BustTrade", "AdlTrade", "Delivery", "Settle", "") or e.qty <= 0:
                continue
            r = self.repo.record_fill(e.exec_id, cid, qty=e.qty, price=e.price, exec_time=_ms_to_dt(e.exec_time_ms),
                                      fee=e.fee, fee_currency=e.fee_currency or None, is_maker=e.is_maker,
                                      exec_type=e.exec_type or "Trade",
                                      seq=int(e.seq) if e.seq not in (None, "") else None)
            new += 0 if r.duplicate else 1
        return new

    # ------------------------------------------------------------------ pushed updates (WebSocket), gap-fill
    def apply_update(self, ex) -> Order | None:
        """Adopt one pushed order update (a parsed WebSocket ``order`` item) without any query.

        Ignored: orders that are not ours and updates older (``updatedTime``) than the last one applied; states
        never move backwards (the state machine refuses it); fills come only from executions."""
        order = self.repo.get_order(ex.client_order_id) if ex.client_order_id else None
        if order is None:
            return None
        if ex.updated_ms and ex.updated_ms < (order.last_exchange_update_ms or 0):
            return order
        try:
            return self._apply_exchange(order, ex, fetch_fills=False)
        except IllegalTransition:  # another writer moved the order on meanwhile
            return self.repo.get_order(ex.client_order_id)

    def record_executions(self, execs) -> int:
        """Record executions (pushed or from ``/v5/execution/list``) of our orders as fills, idempotent on
        ``execId``; executions of orders we do not know are skipped. Returns how many fills were new."""
        by_cid: dict[str, list] = {}
        for e in execs:
            by_cid.setdefault(e.client_order_id, []).append(e)
        new = 0
        for cid, group in by_cid.items():
            if cid and self.repo.get_order(cid) is not None:
                new += self._record_fills(cid, group)
            else:
                log.info("skipped executions of an order that is not ours (%r): %s", cid,
                         [e.exec_id for e in group])
        return new

    def last_exec_time_ms(self) -> int | None:
        """The newest recorded fill's execution time (ms), the start of a REST executions gap-fill."""
        with session_scope(self.repo.engine) as s:
            newest = s.scalar(select(func.max(Fill.exec_time)))
        return None if newest is None else int(newest.timestamp() * 1000)

    def _alert_once(self, severity: str, code: str, cid: str, message: str) -> None:
        for a in self.repo.unacked_alerts():
            if a.code == code and (a.detail or {}).get("client_order_id") == cid:
                return
        self.alert(severity, code, message, {"client_order_id": cid})

    # ------------------------------------------------------------------ cancel
    def cancel(self, client_order_id: str) -> Order:
        """Cancel one order. Never sent -> ``Cancelled`` locally; finished meanwhile (110001/110008/170213)
        -> its final state by query; an ambiguous cancel -> re-queried, left as the exchange shows it."""
        order = self.repo.get_order(client_order_id)
        if order is None:
            raise LookupError(f"no order {client_order_id}")
        state = OrderState(order.state)
        if state in TERMINAL_STATES:
            return order
        if state == S.CREATED:
            return self.repo.transition(client_order_id, S.CANCELLED, note="cancelled before sending")
        if order.exchange_order_id is None:
            order = self.resolve_order(order)
            if OrderState(order.state) in TERMINAL_STATES or order.exchange_order_id is None:
                return order
        try:
            self.client.cancel_order(order.category, order.symbol, client_order_id=client_order_id,
                                     order_id=order.exchange_order_id)
        except OrderNotActiveError:
            pass  # filled or cancelled meanwhile: the query below tells which
        except (AmbiguousError, TransientError) as exc:
            log.warning("cancel %s: %s; querying", client_order_id, exc)
        return self.resolve_order(self.repo.get_order(client_order_id))

    # ------------------------------------------------------------------ positions
    def db_net_positions(self, category: str = "linear") -> dict[str, Decimal]:
        """Signed net quantity per symbol from the recorded fills (all sleeves)."""
        with session_scope(self.repo.engine) as s:
            rows = s.execute(select(Order.symbol, Order.side, Fill.qty).join(
                Fill, Fill.client_order_id == Order.client_order_id).where(
                Order.category == category, Fill.exec_type != "Funding")).all()
        out: dict[str, Decimal] = {}
        for sym, side, qty in rows:
            out[sym] = out.get(sym, Decimal(0)) + (qty if side == "Buy" else -qty)
        return out

    def check_positions(self, category: str = "linear") -> dict[str, tuple[Decimal, Decimal]]:
        """Compare the fill-derived net positions with the exchange's (linear only); each mismatch
        ``symbol -> (db, exchange)`` raises a P1 ``POSITION_MISMATCH`` alert. Nothing is traded to fix it."""
        if category != "linear":
            raise ConfigError(f"check_positions compares linear positions only, got category={category!r}: spot "
                              "holdings live in the wallet balance, which this check does not read yet")
        db = self.db_net_positions(category)
        exch = {p.symbol: p.signed_size for p in self.client.positions(category)}
        mismatches = {}
        for sym in sorted(set(db) | set(exch)):
            a, b = db.get(sym, Decimal(0)), exch.get(sym, Decimal(0))
            if a != b:
                mismatches[sym] = (a, b)
        if mismatches:
            self.alert("P1", "POSITION_MISMATCH",
                       "positions differ from the exchange: " + ", ".join(
                           f"{s} db={a} exchange={b}" for s, (a, b) in mismatches.items()),
                       {s: [str(a), str(b)] for s, (a, b) in mismatches.items()})
        return mismatches


__all__ = ["EXCHANGE_STATUS", "NOT_ACCEPTED", "NOT_FOUND", "OrderIntent", "OrderManager", "ResolveReport",
           "TradingHalted", "client_order_id"]
