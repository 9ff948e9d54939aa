"""Paper trading: an exchange simulated against live public prices, behind the client interface.

:class:`PaperClient` offers what :class:`~live.orders.OrderManager` and :class:`~live.loop.LiveTrader` call on
:class:`~live.bybit.client.BybitClient` (``place_order``, ``get_order``, ``executions``, ``open_orders``,
``cancel_order``, ``positions``, ``wallet_balance``, ``instrument`` and the market data), so paper mode runs the
same loop, order manager and database. Market data and instrument filters come from a public (key-less)
client; no order is ever sent.

Fills (Bybit's rules, base-tier fees by default):

* market, IOC and FOK orders take liquidity from the public order book at once (taker fee), level by level;
  IOC/FOK stop at their limit price (IOC cancels the rest, FOK cancels all unless it fills completely); a market
  order larger than the visible book fills the rest at the deepest visible level;
* a PostOnly limit that would cross the book is accepted, then ``Cancelled`` (``EC_PostOnlyWillTakeLiquidity``);
  a GTC limit that crosses takes what it can, and the rest rests;
* resting limits fill completely at their price (maker fee) once a later price reaches them: the low/high of
  the klines (``interval``) from the bar the order was placed in, and the last traded price -- checked when the
  account is read (at most once per ``match_every_s``);
* stops (``trigger_price``, linear; refused like Bybit when the last price already crossed the trigger) rest
  ``Untriggered`` and trigger on the first bar *after* the one they were placed in whose low (trigger direction
  2, falls to) or high (1, rises to) reaches the trigger, else on the last price; they fill at once (taker) at
  the trigger, or at that bar's open when it opened beyond the trigger (a gap), or at the last price that
  crossed it -- never better than the trigger. Reduce-only stops are capped at the opposite position and
  ``Deactivated`` without one; a stop cancelled before triggering is ``Deactivated``;
* spot buys pay the fee in the coin bought, spot sells in USDT; linear fills move a one-way position and realise
  PnL into USDT. Spot orders need the balance; linear margin is not checked.

The book (orders, executions, balances, positions) lives in a JSON file written atomically after every change,
so a restart finds it as a real exchange would.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

from live.bybit.client import (
    CLIENT_ORDER_ID_RE,
    OPEN_STATUSES,
    Execution,
    Order,
    OrderAck,
    Position,
    WalletBalance,
    round_price,
    round_qty,
)
from live.bybit.errors import (
    DuplicateOrderError,
    InsufficientBalanceError,
    OrderNotActiveError,
    RejectedError,
)

D0 = Decimal(0)
POST_ONLY_REJECT = "EC_PostOnlyWillTakeLiquidity"
DEFAULT_FEES = {("linear", False): "0.00055", ("linear", True): "0.0002",
                ("spot", False): "0.001", ("spot", True): "0.001"}
_DEC_FIELDS = ("price", "triggerPrice", "qty", "cumExecQty", "cumExecValue", "cumExecFee", "execPrice", "execQty",
               "execValue", "execFee", "size", "avg", "realised")


def _s(d) -> str:
    d = Decimal(d)
    return "0" if d == 0 else format(d.normalize(), "f")


def _load(obj):
    if isinstance(obj, dict):
        return {k: (Decimal(v) if k in _DEC_FIELDS and isinstance(v, str) else _load(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_load(v) for v in obj]
    return obj


def _dump(obj):
    if isinstance(obj, Decimal):
        return _s(obj)
    if isinstance(obj, dict):
        return {k: _dump(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_dump(v) for v in obj]
    return obj


class PaperClient:
    """A simulated account on live public prices (module docstring). ``public``: a key-less
    :class:`~live.bybit.client.BybitClient`; ``state_path``: the JSON book; ``wallet_usdt``: the opening balance
    of a new book; ``interval``: the kline interval used to decide whether a resting limit was reached."""

    def __init__(self, public, state_path, *, wallet_usdt=100_000, interval: str = "D", fees: dict | None = None,
                 clock=time.time, match_every_s: float = 1.0):
        from eternal_engine.data.bybit import INTERVALS, bybit_interval

        self.public = public
        self.path = Path(state_path)
        self.interval = bybit_interval(interval)
        self.step_ms = INTERVALS[self.interval] * 60_000
        self.fees = {k: Decimal(str(v)) for k, v in (fees or DEFAULT_FEES).items()}
        self.clock, self.match_every_s = clock, float(match_every_s)
        self._lock = threading.RLock()
        self._last_match = -1e18
        if self.path.exists():
            self.state = _load(json.loads(self.path.read_text()))
            self.state["wallet"] = {c: Decimal(v) for c, v in self.state["wallet"].items()}  # keyed by coin
        else:
            self.state = {"orders": [], "executions": [], "wallet": {"USDT": Decimal(str(wallet_usdt))},
                          "positions": {}, "seq": 0}
            self._save()

    def __repr__(self) -> str:
        return f"PaperClient(book={str(self.path)!r}, prices from {self.public!r})"

    # ------------------------------------------------------------------ market data: the public client's
    def instrument(self, category, symbol, *, refresh=False):
        return self.public.instrument(category, symbol, refresh=refresh)

    def clock_skew_ms(self) -> int:
        """The exchange's clock against ours (the loop checks it in every mode: bars close by our clock)."""
        return self.public.clock_skew_ms()

    def instruments_info(self, category, symbol=None):
        return self.public.instruments_info(category, symbol)

    def klines(self, *args, **kw):
        return self.public.klines(*args, **kw)

    def funding_history(self, *args, **kw):
        return self.public.funding_history(*args, **kw)

    def tickers(self, category, symbol=None):
        return self.public.tickers(category, symbol)

    def orderbook(self, category, symbol, limit=25):
        return self.public.orderbook(category, symbol, limit)

    def server_time_ms(self) -> int:
        return self.public.server_time_ms()

    # ------------------------------------------------------------------ persistence
    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(_dump(self.state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _now(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------ orders
    def place_order(self, category: str, symbol: str, side: str, qty, *, client_order_id: str,
                    order_type: str = "Limit", price=None, time_in_force: str | None = None,
                    reduce_only: bool | None = None, reference_price=None, market_unit: str | None = None,
                    position_idx: int | None = None, instrument=None, trigger_price=None,
                    trigger_direction: int | None = None, trigger_by: str = "LastPrice") -> OrderAck:
        if not isinstance(client_order_id, str) or not CLIENT_ORDER_ID_RE.match(client_order_id):
            raise RejectedError(f"client_order_id {client_order_id!r} must be 1-36 characters of [A-Za-z0-9_-]")
        side = {"buy": "Buy", "sell": "Sell"}.get(str(side).lower())
        otype = {"limit": "Limit", "market": "Market"}.get(str(order_type).lower())
        if side is None or otype is None or (otype == "Limit" and price is None):
            raise RejectedError("side must be Buy|Sell, order_type Limit|Market, and a Limit order needs a price")
        inst = instrument or self.instrument(category, symbol)
        px = round_price(inst, price, side) if otype == "Limit" else None
        q = round_qty(inst, qty, px if px is not None else reference_price, check_notional=not reduce_only)
        tif = "IOC" if otype == "Market" else (time_in_force or "GTC")
        trig, direction = None, trigger_direction or (2 if side == "Sell" else 1)
        if trigger_price is not None:
            if category != "linear" or direction not in (1, 2) or trigger_by != "LastPrice":
                raise RejectedError("paper stops: linear, trigger_direction 1|2, trigger_by LastPrice")
            trig = round_price(inst, trigger_price, side)
        with self._lock:
            if any(o["orderLinkId"] == client_order_id and o["category"] == category for o in self.state["orders"]):
                raise DuplicateOrderError("OrderLinkedID is duplicate", ret_code=170141 if category == "spot"
                                          else 110072, client_order_id=client_order_id)
            if trig is not None:
                last = Decimal(self.tickers(category, symbol)[0]["lastPrice"])
                if (trig <= last) if direction == 1 else (trig >= last):
                    raise RejectedError(f"{symbol}: trigger {_s(trig)} already crossed (last price {_s(last)})",
                                        ret_code=110092 if direction == 1 else 110093)
            book = self.orderbook(category, symbol, limit=50)
            levels = book.asks if side == "Buy" else book.bids
            if category == "spot":
                self._check_spot_balance(inst, side, q, px or (levels[0][0] if levels else None))
            now = self._now()
            o = {"orderId": str(uuid.uuid4()), "orderLinkId": client_order_id, "category": category,
                 "symbol": symbol, "side": side, "orderType": otype, "price": px if px is not None else D0,
                 "qty": q, "timeInForce": tif, "orderStatus": "New", "rejectReason": "EC_NoError",
                 "cumExecQty": D0, "cumExecValue": D0, "cumExecFee": D0, "reduceOnly": bool(reduce_only),
                 "createdTime": now, "updatedTime": now}
            if trig is not None:
                o.update(orderStatus="Untriggered", triggerPrice=trig, triggerDirection=direction,
                         stopOrderType="Stop")
            self.state["orders"].append(o)
            if trig is None:
                self._match_new(o, inst, levels)
            self._save()
        return OrderAck(order_id=o["orderId"], client_order_id=client_order_id, qty=q, price=px, trigger_price=trig)

    def _check_spot_balance(self, inst, side, qty, price) -> None:
        w = self.state["wallet"]
        if side == "Buy" and price is not None and qty * price > w.get(inst.quote_coin, D0):
            raise InsufficientBalanceError("Insufficient balance.", ret_code=170131)
        if side == "Sell" and qty > w.get(inst.base_coin, D0):
            raise InsufficientBalanceError("Insufficient balance.", ret_code=170131)

    def _match_new(self, o, inst, levels) -> None:
        buy, limit, tif = o["side"] == "Buy", o["price"] if o["orderType"] == "Limit" else None, o["timeInForce"]
        reachable = [(p, s) for p, s in levels if limit is None or (p <= limit if buy else p >= limit)]
        if tif == "PostOnly":
            if reachable:
                self._finish(o, "Cancelled", POST_ONLY_REJECT)
            return
        if tif == "FOK" and sum((s for _, s in reachable), D0) < o["qty"]:
            return self._finish(o, "Cancelled", "EC_NoImmediateQtyToFill")
        left = o["qty"]
        for p, s in reachable:
            take = min(left, s)
            if take > 0:
                self._execute(o, inst, take, p, maker=False)
                left -= take
        if left > 0 and limit is None and levels:
            self._execute(o, inst, left, levels[-1][0], maker=False)
            left = D0
        if left > 0 and tif in ("IOC", "FOK"):
            self._finish(o, "PartiallyFilledCanceled" if o["cumExecQty"] > 0 else "Cancelled",
                         "EC_NoImmediateQtyToFill")

    def _finish(self, o, status, reason) -> None:
        o["orderStatus"], o["rejectReason"], o["updatedTime"] = status, reason, self._now()

    def _execute(self, o, inst, qty: Decimal, px: Decimal, *, maker: bool) -> None:
        cat, buy = o["category"], o["side"] == "Buy"
        rate = self.fees[(cat, maker)]
        value = qty * px
        w = self.state["wallet"]
        if cat == "spot":
            if buy:
                fee, ccy = qty * rate, inst.base_coin
                w[inst.base_coin] = w.get(inst.base_coin, D0) + qty - fee
                w[inst.quote_coin] = w.get(inst.quote_coin, D0) - value
            else:
                fee, ccy = value * rate, inst.quote_coin
                w[inst.base_coin] = w.get(inst.base_coin, D0) - qty
                w[inst.quote_coin] = w.get(inst.quote_coin, D0) + value - fee
        else:
            fee, ccy = value * rate, "USDT"
            w["USDT"] = w.get("USDT", D0) - fee + self._move_position(o["symbol"], qty if buy else -qty, px)
        self.state["seq"] += 1
        now = self._now()
        o["cumExecQty"] += qty
        o["cumExecValue"] += value
        o["cumExecFee"] += fee
        o["orderStatus"] = "Filled" if o["cumExecQty"] >= o["qty"] else "PartiallyFilled"
        o["updatedTime"] = now
        self.state["executions"].append({
            "category": cat, "symbol": o["symbol"], "orderId": o["orderId"], "orderLinkId": o["orderLinkId"],
            "side": o["side"], "orderType": o["orderType"], "execId": str(uuid.uuid4()), "execType": "Trade",
            "execPrice": px, "execQty": qty, "execValue": value, "execFee": fee, "feeCurrency": ccy,
            "isMaker": maker, "execTime": now, "seq": self.state["seq"]})

    def _move_position(self, symbol: str, dq: Decimal, px: Decimal) -> Decimal:
        """Apply a linear fill to the one-way position; return the realised PnL."""
        pos = self.state["positions"].setdefault(symbol, {"size": D0, "avg": D0, "realised": D0})
        size, avg, pnl = pos["size"], pos["avg"], D0
        if size == 0 or (size > 0) == (dq > 0):
            pos["avg"] = (abs(size) * avg + abs(dq) * px) / abs(size + dq)
        else:
            pnl = (px - avg) * min(abs(size), abs(dq)) * (1 if size > 0 else -1)
            pos["realised"] += pnl
            if size + dq == 0:
                pos["avg"] = D0
            elif (size + dq > 0) != (size > 0):
                pos["avg"] = px
        pos["size"] = size + dq
        return pnl

    def cancel_order(self, category: str, symbol: str, *, client_order_id: str | None = None,
                     order_id: str | None = None) -> dict:
        if not client_order_id and not order_id:
            raise ValueError("cancel_order needs client_order_id or order_id")
        with self._lock:
            self._match()
            o = self._find(category, client_order_id, order_id)
            if o is None or o["orderStatus"] not in OPEN_STATUSES:
                raise OrderNotActiveError("Order does not exist or is finished.",
                                          ret_code=170213 if category == "spot" else 110008)
            o["orderStatus"] = "Deactivated" if o["orderStatus"] == "Untriggered" else "Cancelled"
            o["updatedTime"] = self._now()
            self._save()
            return {"orderId": o["orderId"], "orderLinkId": o["orderLinkId"]}

    # ------------------------------------------------------------------ resting orders
    def _match(self, *, force: bool = False) -> None:
        """Fill resting limits that a later price reached (module docstring)."""
        if not force and time.monotonic() - self._last_match < self.match_every_s:
            return
        self._last_match = time.monotonic()
        self._trigger_stops()
        resting = [o for o in self.state["orders"] if o["orderStatus"] in OPEN_STATUSES and o["orderType"] == "Limit"]
        if not resting:
            return
        ranges: dict[tuple[str, str, int], tuple[Decimal, Decimal]] = {}
        for o in resting:
            since = (o["createdTime"] // self.step_ms) * self.step_ms
            key = (o["category"], o["symbol"], since)
            if key not in ranges:
                k = self.klines(o["category"], o["symbol"], self.interval, start=since, limit=1000)
                last = Decimal(self.tickers(o["category"], o["symbol"])[0]["lastPrice"])
                lo = min([Decimal(repr(x)) for x in k["low"]] + [last]) if len(k) else last
                hi = max([Decimal(repr(x)) for x in k["high"]] + [last]) if len(k) else last
                ranges[key] = (lo, hi)
            lo, hi = ranges[key]
            if (o["side"] == "Buy" and lo <= o["price"]) or (o["side"] == "Sell" and hi >= o["price"]):
                self._execute(o, self.instrument(o["category"], o["symbol"]), o["qty"] - o["cumExecQty"],
                              o["price"], maker=True)
        self._save()

    def _trigger_stops(self) -> None:
        """Trigger and fill the stops a later bar or the last price reached (module docstring)."""
        fired = False
        for o in self.state["orders"]:
            if o["orderStatus"] != "Untriggered":
                continue
            falls, trig, px = o["triggerDirection"] == 2, o["triggerPrice"], None
            since = (o["createdTime"] // self.step_ms + 1) * self.step_ms
            k = self.klines(o["category"], o["symbol"], self.interval, start=since, limit=1000)
            for op, lo, hi in zip(k["open"], k["low"], k["high"]):  # oldest first
                op, lo, hi = Decimal(repr(op)), Decimal(repr(lo)), Decimal(repr(hi))
                if (lo <= trig) if falls else (hi >= trig):
                    px = min(op, trig) if falls else max(op, trig)
                    break
            if px is None:
                last = Decimal(self.tickers(o["category"], o["symbol"])[0]["lastPrice"])
                px = last if ((last <= trig) if falls else (last >= trig)) else None
            if px is None:
                continue
            fired = True
            pos = self.state["positions"].get(o["symbol"], {}).get("size", D0)
            closable = abs(pos) if pos and (pos > 0) != (o["side"] == "Buy") else D0
            if o["reduceOnly"] and closable == 0:
                self._finish(o, "Deactivated", "EC_NoError")
                continue
            if o["reduceOnly"]:
                o["qty"] = min(o["qty"], closable)
            self._execute(o, self.instrument(o["category"], o["symbol"]), o["qty"], px, maker=False)
        if fired:
            self._save()

    def match(self) -> None:
        """Check the resting orders against the latest prices now."""
        with self._lock:
            self._match(force=True)

    # ------------------------------------------------------------------ queries
    def _find(self, category, client_order_id=None, order_id=None):
        for o in reversed(self.state["orders"]):
            if o["category"] == category and ((order_id and o["orderId"] == order_id)
                                              or (not order_id and o["orderLinkId"] == client_order_id)):
                return o
        return None

    @staticmethod
    def _order_view(o) -> Order:
        cq = o["cumExecQty"]
        r = {"orderId": o["orderId"], "orderLinkId": o["orderLinkId"], "symbol": o["symbol"], "side": o["side"],
             "orderType": o["orderType"], "orderStatus": o["orderStatus"], "qty": _s(o["qty"]),
             "price": _s(o["price"]), "avgPrice": _s(o["cumExecValue"] / cq) if cq else "",
             "cumExecQty": _s(cq), "cumExecValue": _s(o["cumExecValue"]), "cumExecFee": _s(o["cumExecFee"]),
             "leavesQty": _s(o["qty"] - cq if o["orderStatus"] in OPEN_STATUSES else D0),
             "timeInForce": o["timeInForce"], "rejectReason": o["rejectReason"], "reduceOnly": o["reduceOnly"],
             "createdTime": str(o["createdTime"]), "updatedTime": str(o["updatedTime"]),
             "triggerPrice": _s(o["triggerPrice"]) if "triggerPrice" in o else "",
             "triggerDirection": o.get("triggerDirection", 0), "stopOrderType": o.get("stopOrderType", "")}
        return Order.from_bybit(o["category"], r)

    def get_order(self, category: str, symbol: str | None = None, *, client_order_id: str | None = None,
                  order_id: str | None = None) -> Order | None:
        if not client_order_id and not order_id:
            raise ValueError("get_order needs client_order_id or order_id")
        with self._lock:
            self._match()
            o = self._find(category, client_order_id, order_id)
            return None if o is None else self._order_view(o)

    def open_orders(self, category: str, symbol: str | None = None, settle_coin: str | None = None) -> list[Order]:
        with self._lock:
            self._match()
            return [self._order_view(o) for o in reversed(self.state["orders"]) if o["category"] == category
                    and o["orderStatus"] in OPEN_STATUSES and (symbol is None or o["symbol"] == symbol)]

    def order_history(self, category: str, symbol: str | None = None, **_) -> list[Order]:
        with self._lock:
            return [self._order_view(o) for o in reversed(self.state["orders"]) if o["category"] == category
                    and (symbol is None or o["symbol"] == symbol)]

    def executions(self, category: str, symbol: str | None = None, *, client_order_id: str | None = None,
                   order_id: str | None = None, start_ms: int | None = None, end_ms: int | None = None,
                   exec_type: str | None = None, max_pages: int = 50) -> list[Execution]:
        with self._lock:
            self._match()
            rows = [e for e in self.state["executions"] if e["category"] == category
                    and (symbol is None or e["symbol"] == symbol)
                    and (client_order_id is None or e["orderLinkId"] == client_order_id)
                    and (order_id is None or e["orderId"] == order_id)
                    and (start_ms is None or e["execTime"] >= start_ms) and (end_ms is None or e["execTime"] <= end_ms)
                    and (exec_type is None or e["execType"] == exec_type)]
            rows.sort(key=lambda e: (e["execTime"], e["seq"]), reverse=True)
            return [Execution.from_bybit(category, {k: (_s(v) if isinstance(v, Decimal) else v)
                                                    for k, v in e.items()}) for e in rows]

    def positions(self, category: str = "linear", symbol: str | None = None,
                  settle_coin: str | None = "USDT") -> list[Position]:
        with self._lock:
            self._match()
            out = []
            for sym, p in sorted(self.state["positions"].items()):
                if (symbol is not None and sym != symbol) or (symbol is None and p["size"] == 0):
                    continue
                size = p["size"]
                out.append(Position.from_bybit("linear", {
                    "symbol": sym, "side": "" if size == 0 else ("Buy" if size > 0 else "Sell"),
                    "size": _s(abs(size)), "avgPrice": _s(p["avg"]), "cumRealisedPnl": _s(p["realised"])}))
            return out

    def wallet_balance(self, coin: str | None = None) -> WalletBalance:
        with self._lock:
            self._match()
            coins = [{"coin": c, "walletBalance": _s(v), "equity": _s(v)}
                     for c, v in sorted(self.state["wallet"].items()) if coin is None or c == coin]
            return WalletBalance.from_bybit({"accountType": "UNIFIED", "coin": coins})


__all__ = ["PaperClient"]
