"""Reconciliation of the database with the exchange, on start-up and after every reconnect (issue 5 item 6).

The rules (``/work/shared/spec/bybit-v5-notes.md`` B.1, C, D rows 9, 10 and 15, E.5; architecture 5.2/5.3):

1. Every non-final order is resolved by ``orderLinkId`` (:meth:`OrderManager.resolve`, which may send an
   intent that was committed but never sent, per its ``resubmit_created`` policy). An order left ``Unknown``,
   or whose query failed, is an unresolved discrepancy.
2. An open exchange order whose ``orderLinkId`` the database does not know is tagged ``EXTERNAL`` (report and
   alert). It is never cancelled, adopted or traded.
3. Executions since the last persisted ``execTime`` (minus :data:`OVERLAP_MS`, or from ``since_ms`` when that
   is earlier, e.g. when a stream was lost) are read in windows of at most 7 days, every page. Those of our
   orders are recorded once (keyed by ``execId``); the others are only counted.
4. Linear positions: the fill ledger's net per symbol (summed over sleeves, as
   :meth:`OrderManager.check_positions`) is compared with ``/v5/position/list``. A position the exchange shows
   and the ledger does not, or a different size, stays unresolved. A ledger position that the exchange shows
   flat is closed as "closed externally" only when the symbol's own query returns an explicit flat row (a
   missing row is not evidence of flat) *and* this run's execution import succeeded (so no fill of ours
   explains it). The close is one synthetic ``Reconcile`` fill per sleeve at the mark price, with a
   deterministic id.
5. Spot: the ledger's holdings per coin (buys - sells - fees paid in that coin, plus ``spot_assets``) are
   compared with the UNIFIED wallet's ``walletBalance`` of every coin except the cash coin USDT. The wallet
   snapshot (USDT equity and every coin) is recorded in ``balances``.
6. A failed query is *unknown*, never empty or flat: nothing is closed on its evidence.

Policy: while any discrepancy is unresolved the report is not ``ok`` and trading is halted through the
repository (``updated_by="reconcile"``), as nautilus refuses to start. A later clean run lifts only a halt
the reconciler set; an operator's halt stays. Each discrepancy raises one P1 alert (spec 11.2: exchange
state at risk) until it is acknowledged. Resolving an external position or order is the operator's job:
close or cancel it on the exchange, or declare spot coins held outside the engine in ``spot_assets``.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from live.bybit.errors import ExchangeError
from live.db.repo import RECONCILE_EXEC_TYPE, Repository
from live.orders import OrderManager, ResolveReport, client_order_id

log = logging.getLogger("live.reconcile")

RECONCILER = "reconcile"  # ``updated_by`` of the halts this module sets (and may lift)
CASH_COINS = frozenset({"USDT"})
CATEGORIES = ("linear", "spot")
WINDOW_MS = 7 * 86_400_000  # /v5/execution/list: endTime - startTime <= 7 days
OVERLAP_MS = 5 * 60_000  # the execution list may lag: re-read the last minutes (deduplicated by execId)
MAX_PAGES = 1_000
SEVERITY = "P1"
D0 = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Discrepancy:
    """One difference between the database and the exchange.

    ``kind``: order_unresolved | open_orders_unknown | external_order | executions_unknown | position_unknown |
    external_position | position_mismatch | closed_externally | balance_unknown | spot_mismatch.
    ``symbol``: a symbol, a coin (spot) or ``"*"`` (a whole query failed). ``db`` / ``exchange``: a quantity or
    an order description; ``exchange`` is None when unknown."""

    kind: str
    symbol: str
    db: Any
    exchange: Any
    action: str
    resolved: bool = False
    detail: dict = field(default_factory=dict)


@dataclass
class ReconcileReport:
    discrepancies: list[Discrepancy] = field(default_factory=list)
    orders: ResolveReport | None = None
    fills_imported: int = 0  # by the execution import (fills recorded while resolving orders are not counted)
    foreign_executions: int = 0  # executions of orders we do not own (not recorded)
    equity: Decimal | None = None  # UNIFIED total equity (USD)
    halted: bool = False  # the trading halt flag after this run

    @property
    def unresolved(self) -> list[Discrepancy]:
        return [d for d in self.discrepancies if not d.resolved]

    @property
    def ok(self) -> bool:
        return not self.unresolved


def reconcile(manager: OrderManager, *, spot_assets: dict | None = None, since_ms: int | None = None,
              lookback_days: float = 7.0) -> ReconcileReport:
    """Compare the database with the exchange and resolve what the rules allow (see the module docstring).

    ``spot_assets``: coin -> amount held outside the engine (added to the ledger's spot holdings).
    ``since_ms``: read executions from here at the latest (e.g. when the private stream was lost).
    ``lookback_days``: how far back executions are read when the database has no fill yet."""
    repo, rep = manager.repo, ReconcileReport()
    now_ms = int(manager.clock() * 1000)
    rep.orders = manager.resolve()
    _order_discrepancies(repo, rep)
    imported = {}
    for category in CATEGORIES:
        _external_orders(manager, category, rep)
        imported[category] = _import_executions(manager, category, rep, now_ms, since_ms, lookback_days)
    _linear_positions(manager, rep, now_ms, executions_ok=imported["linear"])
    _wallet(manager, rep, spot_assets or {})
    for d in rep.discrepancies:
        _alert_once(repo, manager.alert, d)
    _apply_halt_policy(repo, rep)
    log.info("reconciliation: %d discrepancies, %d unresolved, %d fills imported", len(rep.discrepancies),
             len(rep.unresolved), rep.fills_imported)
    return rep


# ============================================================================================ orders
def _order_discrepancies(repo: Repository, rep: ReconcileReport) -> None:
    for cid in [*rep.orders.unresolved, *sorted(rep.orders.errors)]:
        order, error = repo.get_order(cid), rep.orders.errors.get(cid)
        action = "query failed: state left alone" if error else "not found yet: kept Unknown, never resent"
        rep.discrepancies.append(Discrepancy("order_unresolved", order.symbol, order.state, None, action,
                                             detail={"ref": cid, **({"error": error} if error else {})}))


def _external_orders(manager: OrderManager, category: str, rep: ReconcileReport) -> None:
    try:
        live = manager.client.open_orders(category)
    except ExchangeError as exc:
        rep.discrepancies.append(Discrepancy("open_orders_unknown", "*", None, None, "nothing assumed",
                                             detail={"ref": category, "error": str(exc)}))
        return
    for o in live:
        if o.client_order_id and manager.repo.get_order(o.client_order_id) is not None:
            continue
        rep.discrepancies.append(Discrepancy(
            "external_order", o.symbol, None, f"{o.side} {o.qty} @ {o.price} {o.status}",
            "tagged EXTERNAL: never cancelled, adopted or traded",
            detail={"ref": o.order_id, "tag": "EXTERNAL", "category": category,
                    "client_order_id": o.client_order_id}))


# ============================================================================================ executions
def _import_executions(manager: OrderManager, category: str, rep: ReconcileReport, now_ms: int,
                       since_ms: int | None, lookback_days: float) -> bool:
    """Record the executions of our orders in ``category`` since the last fill; False when a query failed."""
    times = [r.exec_time for r in manager.repo.position_fills(category) if r.exec_type != RECONCILE_EXEC_TYPE]
    start = _ms(max(times)) - OVERLAP_MS if times else now_ms - int(lookback_days * 86_400_000)
    if since_ms is not None:
        start = min(start, int(since_ms))
    lo = start
    try:
        while lo <= now_ms:
            hi = min(lo + WINDOW_MS - 1, now_ms)
            by_order = defaultdict(list)
            for e in manager.client.executions(category, start_ms=lo, end_ms=hi, max_pages=MAX_PAGES):
                by_order[e.client_order_id].append(e)
            for cid, execs in by_order.items():
                if cid and manager.repo.get_order(cid) is not None:
                    rep.fills_imported += manager._record_fills(cid, execs)
                else:
                    rep.foreign_executions += sum(e.exec_type != "Funding" for e in execs)
            lo = hi + 1
    except ExchangeError as exc:
        rep.discrepancies.append(Discrepancy("executions_unknown", "*", None, None,
                                             f"fills since {_iso(lo)} not imported", detail={
                                                 "ref": category, "error": str(exc)}))
        return False
    return True


# ============================================================================================ positions
def _ledger(rows) -> dict[tuple[str, str], tuple[Decimal, int]]:
    """(sleeve, symbol) -> (signed net quantity, last exec time in ms)."""
    out: dict[tuple[str, str], tuple[Decimal, int]] = {}
    for r in rows:
        qty, last = out.get((r.sleeve, r.symbol), (D0, 0))
        out[(r.sleeve, r.symbol)] = (qty + (r.qty if r.side == "Buy" else -r.qty), max(last, _ms(r.exec_time)))
    return out


def _linear_positions(manager: OrderManager, rep: ReconcileReport, now_ms: int, *, executions_ok: bool) -> None:
    ledger = _ledger(manager.repo.position_fills("linear"))
    db: dict[str, Decimal] = defaultdict(Decimal)
    for (_, symbol), (qty, _) in ledger.items():
        db[symbol] += qty
    try:
        exchange = {p.symbol: p.signed_size for p in manager.client.positions("linear")}
    except ExchangeError as exc:
        rep.discrepancies.append(Discrepancy("position_unknown", "*", None, None,
                                             "not treated as flat: nothing closed", detail={"error": str(exc)}))
        return
    for symbol in sorted(set(db) | set(exchange)):
        ours, theirs = db.get(symbol, D0), exchange.get(symbol, D0)
        if ours == theirs:
            continue
        if theirs == 0:
            _close_if_confirmed(manager, rep, symbol, ours, ledger, now_ms, executions_ok)
        else:
            kind = "external_position" if ours == 0 else "position_mismatch"
            rep.discrepancies.append(Discrepancy(kind, symbol, ours, theirs, "alerted; nothing traded to fix it"))


def _close_if_confirmed(manager: OrderManager, rep: ReconcileReport, symbol: str, ours: Decimal, ledger: dict,
                        now_ms: int, executions_ok: bool) -> None:
    def unknown(why: str, **detail) -> None:
        rep.discrepancies.append(Discrepancy("position_unknown", symbol, ours, None, f"{why}: not closed",
                                             detail=detail))

    if not executions_ok:
        return unknown("exchange shows flat but the executions are unknown")
    try:
        rows = manager.client.positions("linear", symbol=symbol)
    except ExchangeError as exc:
        return unknown("the symbol's position query failed", error=str(exc))
    if not rows:
        return unknown("no explicit position row")
    theirs = sum((p.signed_size for p in rows), D0)
    if theirs != 0:
        rep.discrepancies.append(Discrepancy("position_mismatch", symbol, ours, theirs,
                                             "alerted; nothing traded to fix it"))
        return
    cids = []
    for (sleeve, sym), (qty, last_ms) in sorted(ledger.items()):
        if sym != symbol or qty == 0:
            continue
        cid = client_order_id(sleeve, symbol, last_ms, "closed externally")
        manager.repo.record_reconciliation_fill(
            cid, f"reconcile-{cid}", sleeve=sleeve, symbol=symbol, category="linear",
            side="Sell" if qty > 0 else "Buy", qty=abs(qty), price=rows[0].mark_price or D0,
            exec_time=datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc),
            note="closed externally: the exchange shows flat and no execution of ours explains it")
        cids.append(cid)
    rep.discrepancies.append(Discrepancy("closed_externally", symbol, ours, D0,
                                         "closed in the database at the mark price", resolved=True,
                                         detail={"ref": ",".join(cids)}))


# ============================================================================================ wallet
def _wallet(manager: OrderManager, rep: ReconcileReport, spot_assets: dict) -> None:
    try:
        wallet = manager.client.wallet_balance()
        held = _spot_holdings(manager, spot_assets)
    except ExchangeError as exc:
        rep.discrepancies.append(Discrepancy("balance_unknown", "*", None, None,
                                             "spot holdings not compared", detail={"error": str(exc)}))
        return
    manager.repo.save_balances({c: dict(wallet_balance=b.wallet_balance, equity=b.equity,
                                        available=b.available_to_withdraw) for c, b in wallet.coins.items()})
    rep.equity = wallet.total_equity
    for coin in sorted(set(held) | {c for c in wallet.coins if c not in CASH_COINS}):
        ours = held.get(coin, D0)
        theirs = wallet.coins[coin].wallet_balance if coin in wallet.coins else D0
        if ours != theirs:
            rep.discrepancies.append(Discrepancy("spot_mismatch", coin, ours, theirs,
                                                 "alerted; nothing traded to fix it"))


def _spot_holdings(manager: OrderManager, spot_assets: dict) -> dict[str, Decimal]:
    held = {coin: Decimal(str(v)) for coin, v in spot_assets.items()}
    for r in manager.repo.position_fills("spot"):
        base = manager.client.instrument("spot", r.symbol).base_coin
        fee = r.fee if r.fee_currency == base else D0
        held[base] = held.get(base, D0) + (r.qty if r.side == "Buy" else -r.qty) - fee
    return held


# ============================================================================================ alerts, halt
def _alert_once(repo: Repository, alert, d: Discrepancy) -> None:
    """One alert per discrepancy (kind, symbol, values, ref) while it is not acknowledged, through ``alert``
    (the order manager's sink: stored, and sent to Telegram when the live process has an `Alerter`)."""
    key = "|".join(str(x) for x in (d.kind, d.symbol, d.db, d.exchange, d.detail.get("ref", "")))
    if any((a.detail or {}).get("key") == key for a in repo.unacked_alerts()):
        return
    detail = {"key": key, "db": _str(d.db), "exchange": _str(d.exchange), "action": d.action,
              **{k: str(v) for k, v in d.detail.items()}}
    alert(SEVERITY, d.kind.upper(), f"reconciliation: {d.kind} {d.symbol}: database {_str(d.db)}, "
          f"exchange {_str(d.exchange)} -> {d.action}", detail)


def _apply_halt_policy(repo: Repository, rep: ReconcileReport) -> None:
    status = repo.status()
    if not rep.ok and not status.halted:
        shown = "; ".join(f"{d.kind} {d.symbol}" for d in rep.unresolved[:5])
        more = f" and {len(rep.unresolved) - 5} more" if len(rep.unresolved) > 5 else ""
        repo.set_halt(f"reconciliation: {len(rep.unresolved)} unresolved discrepancies: {shown}{more}",
                      updated_by=RECONCILER)
    elif rep.ok and status.halted and status.updated_by == RECONCILER:
        repo.clear_halt(updated_by=RECONCILER, reason="reconciliation clean")
    rep.halted = repo.is_halted()


def _ms(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(milliseconds=1)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def _str(x) -> str | None:
    return None if x is None else str(x)


__all__ = ["Discrepancy", "ReconcileReport", "reconcile"]
