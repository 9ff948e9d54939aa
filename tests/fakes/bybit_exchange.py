"""A fake Bybit V5 *exchange* (signed private REST endpoints) for the unmodified pybit client over loopback.

:class:`FakeBybitExchange` extends the market-data fake :class:`tests.fakes.bybit_server.FakeBybit` with

==================================  ==========================================================================
``POST /v5/order/create``           instrument filters, balance check, duplicate ``orderLinkId`` (110072/170141)
``POST /v5/order/cancel``           by ``orderId`` (wins) or ``orderLinkId``; 110001/110008 / 170213/170142
``GET  /v5/order/realtime``         open orders; a query by id also returns closed ones (until :meth:`forget_closed`)
``GET  /v5/order/history``          every order, newest first (``cursor`` pagination)
``GET  /v5/execution/list``         fills, ``execTime`` descending, unique ``execId`` (``cursor`` pagination)
``GET  /v5/position/list``          linear, one-way mode; with ``symbol`` a flat row is returned too
``GET  /v5/account/wallet-balance`` ``accountType=UNIFIED``; USDT plus every spot coin held
==================================  ==========================================================================

Authentication follows notes A.2 exactly: the HMAC-SHA256 of ``timestamp + api_key + recv_window + payload``
is recomputed over the **raw bytes on the wire** (the raw query string for GET, the raw body for POST) and
compared with ``X-BAPI-SIGN``. Unknown key -> 10003, bad signature -> 10004, a timestamp outside
``server_time - recv_window <= ts < server_time + 1000`` -> 10002 (``server_time`` includes :meth:`clock_skew`).

Matching: each symbol has a scripted price (:meth:`advance` moves it). Market orders fill at once at the price
+/- ``slippage_bps`` (taker); limit orders that cross fill at once at the market price (taker), PostOnly orders
that would cross are accepted and then ``Cancelled`` with ``rejectReason=EC_PostOnlyWillTakeLiquidity``, IOC/FOK
limits that do not cross are cancelled, the rest rest and fill completely at their limit price (maker) when
:meth:`advance` crosses them. Conditional orders (``triggerPrice``, linear) rest ``Untriggered`` (a trigger
already crossed -> 110092/110093); once :meth:`advance` moves the price to the trigger they become market orders
filled at that price (taker), reduce-only ones capped at the opposite position or ``Deactivated`` without one;
cancelling one before it triggers leaves it ``Deactivated`` (UTA). :meth:`fill` forces a (partial) fill.
Linear fills move a one-way position and the USDT wallet (fees, realised PnL); spot fills move coin balances
(buy fee in the base coin).

Faults (thread-safe; each takes ``n`` = how many matching requests it hits, ``path`` = which endpoint):

* :meth:`lose_ack` -- the order **is** created, then the answer is lost: the connection is closed without a
  reply (``mode="drop"``) or the reply is held ``hang`` seconds (``mode="timeout"``, client ReadTimeout);
* :meth:`rate_limit` -- retCode 10006 with the ``X-Bapi-Limit*`` headers (inherited, optionally per path);
* :meth:`error_5xx` -- HTTP 503 *before* the order is accepted (``before=True``: nothing created) or HTTP 502
  *after* it was accepted (``before=False``); ``status=`` overrides the code;
* :meth:`delay` -- hold the request ``seconds`` *before* processing it (a client timeout, nothing created);
* :meth:`clock_skew` -- the server clock runs ``ms`` ahead (negative: behind); also moves ``/v5/market/time``;
* :meth:`external_position_change` -- a position changed outside the engine (no order, no execution).

Counting: :attr:`journal` has one :class:`JournalEntry` per private request (path, orderLinkId, outcome);
:meth:`creates` counts create attempts (optionally per ``orderLinkId`` / outcome), :meth:`orders_with_link_id`
lists exchange orders per ``orderLinkId`` (the "exactly one exchange order per orderLinkId" check),
:attr:`orders` / :attr:`executions` hold the raw state.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import traceback
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.bybit_server import BASE_PRICE, BybitFault, FakeBybit, _Handler, envelope

PRIVATE = {
    ("POST", "/v5/order/create"), ("POST", "/v5/order/cancel"), ("GET", "/v5/order/realtime"),
    ("GET", "/v5/order/history"), ("GET", "/v5/execution/list"), ("GET", "/v5/position/list"),
    ("GET", "/v5/account/wallet-balance"),
}
OPEN_STATUSES = ("New", "PartiallyFilled", "Untriggered")
LINK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
POST_ONLY_REJECT = "EC_PostOnlyWillTakeLiquidity"
D0 = Decimal(0)


def sign(secret: str, api_key: str, timestamp, recv_window, payload: bytes | str) -> str:
    """The V5 REST signature: hex HMAC-SHA256(secret, ts + key + recv_window + payload) over raw bytes."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    msg = f"{timestamp}{api_key}{recv_window}".encode("utf-8") + payload
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()


def sign_ws(secret: str, expires) -> str:
    """The private WebSocket auth signature: hex HMAC-SHA256(secret, "GET/realtime" + expires)."""
    return hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()


def _s(x) -> str:
    """Decimal -> Bybit-style string ("0" for zero, no exponent)."""
    if x is None:
        return ""
    d = Decimal(x)
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def _dec(v, name) -> Decimal:
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        raise BybitFault(10001, f"params error: {name} invalid") from None
    if not d.is_finite():
        raise BybitFault(10001, f"params error: {name} invalid")
    return d


@dataclass
class JournalEntry:
    method: str
    path: str
    order_link_id: str | None
    outcome: str  # ok | error:<code> | auth:<code> | http:<status> | rate_limited | lost_ack | dropped
    at: float = field(default_factory=time.time)
    accepted: bool = False  # an order was created by this request


@dataclass
class Reply:
    status: int = 200
    headers: dict = field(default_factory=dict)
    payload: bytes = b""
    drop: bool = False      # close the connection without an answer
    hang: float = 0.0       # sleep this long before answering (or dropping)


class _Fault:
    def __init__(self, n, path, **kw):
        self.left, self.path, self.kw = n, path, kw

    def take(self, path) -> bool:
        if self.left is not None and self.left <= 0:
            return False
        if self.path is not None and self.path != path:
            return False
        if self.left is not None:
            self.left -= 1
        return True


class FakeBybitExchange(FakeBybit):
    """Market data (inherited) + signed private trading endpoints, a scripted-price matcher and faults."""

    def __init__(self, *, api_key: str = "testkey", api_secret: str = "testsecret",
                 prices: dict | None = None, wallet_usdt=100_000, leverage=10, slippage_bps: float = 0.0,
                 taker_fee="0.00055", maker_fee="0.0002", spot_taker_fee="0.001", spot_maker_fee="0.001",
                 **kw):
        super().__init__(**kw)
        self.api_key, self.api_secret = api_key, api_secret
        self.prices: dict[str, Decimal] = {s: Decimal(str(BASE_PRICE.get(s.removesuffix("USDT"), 50.0)))
                                           for s in self.symbols}
        for s, p in (prices or {}).items():
            self.prices[s] = Decimal(str(p))
        self.leverage = Decimal(str(leverage))
        self.slippage_bps = Decimal(str(slippage_bps))
        self.fees = {("linear", False): Decimal(taker_fee), ("linear", True): Decimal(maker_fee),
                     ("spot", False): Decimal(spot_taker_fee), ("spot", True): Decimal(spot_maker_fee)}
        self.orders: list[dict] = []             # creation order; the raw exchange records
        self.executions: list[dict] = []
        self.positions: dict[str, dict] = {}      # linear symbol -> {size (signed), avg, realised, created, updated}
        self.wallet: dict[str, Decimal] = {"USDT": Decimal(str(wallet_usdt))}
        self.journal: list[JournalEntry] = []
        self._forgotten: set[str] = set()         # orderIds dropped from the realtime buffer
        self._skew_ms = 0
        self._seq = 0
        self._spot_id = 1_900_000_000_000_000_000
        self._lose_ack: list[_Fault] = []
        self._err5xx: list[_Fault] = []
        self._delays: list[_Fault] = []
        self._rl_path: str | None = None
        self.listeners: list = []  # fn(topic, record), called under the lock: "order" changes, "execution"s
        self.routes.update({
            ("GET", "/v5/market/time"): self._r_time_skewed,
            ("GET", "/v5/market/tickers"): self._r_tickers,
            ("GET", "/v5/market/orderbook"): self._r_orderbook,
            ("POST", "/v5/order/create"): self._r_create,
            ("POST", "/v5/order/cancel"): self._r_cancel,
            ("GET", "/v5/order/realtime"): self._r_realtime,
            ("GET", "/v5/order/history"): self._r_history,
            ("GET", "/v5/execution/list"): self._r_executions,
            ("GET", "/v5/position/list"): self._r_positions,
            ("GET", "/v5/account/wallet-balance"): self._r_wallet,
        })


    # ------------------------------------------------------------------ clock and signatures
    def server_time_ms(self) -> int:
        return int(time.time() * 1000) + self._skew_ms

    def _r_time_skewed(self, params, body, headers):
        ns = time.time_ns() + self._skew_ms * 1_000_000
        return 0, "OK", {"timeSecond": str(ns // 1_000_000_000), "timeNano": str(ns)}

    def _r_tickers(self, params, body, headers):
        category = params.get("category")
        if category not in ("spot", "linear"):
            raise BybitFault(10001, "params error: category")
        wanted = [params["symbol"]] if params.get("symbol") else list(self.symbols)
        rows = []
        with self._lock:
            for sym in wanted:
                if sym not in self.symbols:
                    raise BybitFault(10001, "Not supported symbols")
                px, tick = self.prices[sym], self._filters(category, sym)["tick"]
                row = {"symbol": sym, "lastPrice": _s(px), "bid1Price": _s(px - tick), "bid1Size": "1",
                       "ask1Price": _s(px + tick), "ask1Size": "1", "prevPrice24h": _s(px), "price24hPcnt": "0",
                       "highPrice24h": _s(px), "lowPrice24h": _s(px), "turnover24h": "0", "volume24h": "0"}
                if category == "linear":
                    row.update({"indexPrice": _s(px), "markPrice": _s(px), "fundingRate": "0.0001",
                                "nextFundingTime": "0", "openInterest": "0", "predictedDeliveryPrice": ""})
                else:
                    row["usdIndexPrice"] = _s(px)
                rows.append(row)
        return 0, "OK", {"category": category, "list": rows}

    def _r_orderbook(self, params, body, headers):
        category, sym = params.get("category"), params.get("symbol")
        if category not in ("spot", "linear") or sym not in self.symbols:
            raise BybitFault(10001, "params error: category/symbol")
        depth = max(1, min(int(params.get("limit") or (1 if category == "spot" else 25)), 200))
        with self._lock:
            px, tick = self.prices[sym], self._filters(category, sym)["tick"]
            self._seq += 1
            seq = self._seq
        bids = [[_s(px - tick * (i + 1)), "1"] for i in range(depth)]
        asks = [[_s(px + tick * (i + 1)), "1"] for i in range(depth)]
        now = self.server_time_ms()
        return 0, "OK", {"s": sym, "b": bids, "a": asks, "ts": now, "u": seq, "seq": seq, "cts": now}

    def expected_signature(self, timestamp, recv_window, payload: bytes | str, api_key: str | None = None) -> str:
        """What the exchange expects in ``X-BAPI-SIGN`` for this raw payload (query string or body)."""
        return sign(self.api_secret, self.api_key if api_key is None else api_key, timestamp, recv_window, payload)

    def verify(self, headers, payload: bytes) -> None:
        """Authenticate one private request (raises :class:`BybitFault` 10003/10002/10004)."""
        key = headers.get("X-BAPI-API-KEY")
        ts = headers.get("X-BAPI-TIMESTAMP")
        sig = headers.get("X-BAPI-SIGN")
        rw = headers.get("X-BAPI-RECV-WINDOW") or "5000"
        if not key or not ts or not sig:
            raise BybitFault(10003, "API key is invalid.")
        if not hmac.compare_digest(key, self.api_key):
            raise BybitFault(10003, "API key is invalid.")
        try:
            ts_i, rw_i = int(ts), int(rw)
        except ValueError:
            raise BybitFault(10001, "params error: X-BAPI-TIMESTAMP / X-BAPI-RECV-WINDOW") from None
        now = self.server_time_ms()
        if not (now - rw_i <= ts_i < now + 1000):
            raise BybitFault(10002, "invalid request, please check your server timestamp or recv_window param. "
                                    f"req_timestamp[{ts_i}],server_timestamp[{now}],recv_window[{rw_i}]")
        want = sign(self.api_secret, key, ts, rw, payload)
        if not hmac.compare_digest(want, sig.lower()):
            raise BybitFault(10004, "Error sign, please check your signature generation algorithm.")

    # ------------------------------------------------------------------ faults
    def lose_ack(self, n: int = 1, *, mode: str = "drop", hang: float = 2.0, path: str = "/v5/order/create"):
        """The next ``n`` requests to ``path`` are processed (the order is created), then the answer is lost."""
        assert mode in ("drop", "timeout")
        with self._lock:
            self._lose_ack.append(_Fault(n, path, mode=mode, hang=hang))

    def error_5xx(self, before: bool = True, *, n: int = 1, status: int | None = None,
                  path: str = "/v5/order/create"):
        """HTTP 5xx for the next ``n`` requests to ``path``: before acceptance (503, nothing done) or after (502)."""
        with self._lock:
            self._err5xx.append(_Fault(n, path, before=before, status=status or (503 if before else 502)))

    def delay(self, seconds: float, *, n: int | None = 1, path: str | None = None):
        """Hold the next ``n`` requests (to ``path``; None = any) ``seconds`` before processing them."""
        with self._lock:
            self._delays.append(_Fault(n, path, seconds=seconds))

    def rate_limit(self, k: int, *, reset_ms: int = 50, omit_reset_header: bool = False, path: str | None = None):
        """Answer the next ``k`` requests (to ``path``; None = any) with retCode 10006."""
        with self._lock:
            super().rate_limit(k, reset_ms=reset_ms, omit_reset_header=omit_reset_header)
            self._rl_path = path

    def clock_skew(self, ms: int) -> None:
        """Run the server clock ``ms`` ahead of the local clock (negative: behind)."""
        with self._lock:
            self._skew_ms = int(ms)

    def clear_faults(self) -> None:
        with self._lock:
            super().clear_faults()
            self._lose_ack.clear()
            self._err5xx.clear()
            self._delays.clear()
            self._rl_path = None
            self._skew_ms = 0

    def forget_closed(self) -> None:
        """Simulate a Bybit restart: closed orders vanish from ``/v5/order/realtime`` (history keeps them)."""
        with self._lock:
            self._forgotten.update(o["orderId"] for o in self.orders if o["orderStatus"] not in OPEN_STATUSES)

    def external_position_change(self, symbol: str, qty, price=None) -> None:
        """Add ``qty`` (signed, base units) to the linear position of ``symbol`` outside the engine."""
        with self._lock:
            px = Decimal(str(price)) if price is not None else self.prices[symbol]
            self._apply_position(symbol, Decimal(str(qty)), px)

    def set_wallet(self, coin: str, amount) -> None:
        with self._lock:
            self.wallet[coin] = Decimal(str(amount))

    # ------------------------------------------------------------------ counting
    def creates(self, order_link_id: str | None = None, outcome: str | None = None) -> int:
        """How many create requests reached the exchange (optionally for one orderLinkId / one outcome)."""
        with self._lock:
            return sum(1 for j in self.journal if j.path == "/v5/order/create"
                       and (order_link_id is None or j.order_link_id == order_link_id)
                       and (outcome is None or j.outcome == outcome))

    def accepted_creates(self, order_link_id: str | None = None) -> int:
        with self._lock:
            return sum(1 for j in self.journal if j.path == "/v5/order/create" and j.accepted
                       and (order_link_id is None or j.order_link_id == order_link_id))

    def orders_with_link_id(self, order_link_id: str) -> list[dict]:
        with self._lock:
            return [dict(o) for o in self.orders if o["orderLinkId"] == order_link_id]

    def order(self, order_link_id: str) -> dict | None:
        found = self.orders_with_link_id(order_link_id)
        return found[0] if found else None

    def private_count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for j in self.journal if path is None or j.path == path)

    # ------------------------------------------------------------------ dispatch
    def dispatch(self, method: str, raw_target: str, body: bytes, headers) -> Reply:
        """Serve one request given the raw request-target and the raw body bytes."""
        parts = urlsplit(raw_target)
        path, raw_query = parts.path, parts.query
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        route = self.routes.get((method, path))
        private = (method, path) in PRIVATE
        if route is None:
            self._log(method, path, params, "not_found")
            return Reply(404, {}, b'{"retCode":10017,"retMsg":"Route not found"}')
        hang = 0.0
        with self._lock:
            for f in self._delays:
                if f.take(path):
                    hang = f.kw["seconds"]
                    break
        if hang:
            time.sleep(hang)
        if self._rl_path is not None and self._rl_path != path:
            with self._lock:  # the rate-limit fault targets another endpoint: skip it for this request
                left, self._rate_limited_left = self._rate_limited_left, 0
                fate, lim_headers = self._admit(method, path, params)
                self._rate_limited_left = left
        else:
            fate, lim_headers = self._admit(method, path, params)
        self._log(method, path, params, fate)
        link = None
        if private and method == "POST":
            try:
                parsed = json.loads(body.decode("utf-8") or "{}")
                if not isinstance(parsed, dict):
                    raise ValueError
            except ValueError:
                parsed = None
            if parsed is not None:
                params = {**params, **parsed}
        if private:
            link = params.get("orderLinkId")
            entry = JournalEntry(method, path, link if isinstance(link, str) else None, fate)
            with self._lock:
                self.journal.append(entry)
        else:
            entry = None
        if fate == "dropped":
            return Reply(drop=True)
        if fate == "truncated":  # pragma: no cover - inherited fault, approximated by a drop
            return Reply(drop=True)
        if fate == "rate_limited":
            return Reply(200, lim_headers, envelope(10006, "Too many visits!", {}))
        if private:
            try:
                self.verify(headers, body if method == "POST" else raw_query.encode("utf-8"))
            except BybitFault as e:
                entry.outcome = f"auth:{e.code}"
                return Reply(200 if e.code != 10003 else 401, lim_headers, envelope(e.code, e.msg, {}))
            if method == "POST" and body and json_invalid(body):
                entry.outcome = "error:10001"
                return Reply(200, lim_headers, envelope(10001, "params error: body is not JSON", {}))
        with self._lock:
            before = next((f for f in self._err5xx if f.kw["before"] and f.take(path)), None)
        if before is not None:
            if entry:
                entry.outcome = f"http:{before.kw['status']}"
            return Reply(before.kw["status"], {}, b"<html><body>Service Unavailable</body></html>")
        try:
            with self._lock:
                code, msg, result = route(params, body, headers)
                accepted = bool(entry and path == "/v5/order/create" and code == 0)
                if entry:
                    entry.accepted = accepted
                    entry.outcome = "ok" if code == 0 else f"error:{code}"
        except BybitFault as e:
            if entry:
                entry.outcome = f"error:{e.code}"
            with self._lock:
                for r in reversed(self.requests):
                    if r.path == path:
                        r.outcome = f"error:{e.code}"
                        break
            return Reply(200, lim_headers, envelope(e.code, e.msg, {}))
        except Exception:  # a bug in the fake: answer 500 and show it
            traceback.print_exc()
            if entry:
                entry.outcome = "http:500"
            return Reply(500, {}, b"internal error in the fake")
        with self._lock:
            after = next((f for f in self._err5xx if not f.kw["before"] and f.take(path)), None)
            lost = next((f for f in self._lose_ack if f.take(path)), None)
        if after is not None:
            if entry:
                entry.outcome = f"http:{after.kw['status']}"
            return Reply(after.kw["status"], {}, b"<html><body>Bad Gateway</body></html>")
        if lost is not None:
            if entry:
                entry.outcome = "lost_ack"
            if lost.kw["mode"] == "drop":
                return Reply(drop=True)
            return Reply(200, lim_headers, envelope(code, msg, result), hang=lost.kw["hang"])
        return Reply(200, lim_headers, envelope(code, msg, result))

    # ------------------------------------------------------------------ helpers
    def _now(self) -> int:
        return self.server_time_ms()

    def _filters(self, category, symbol):
        inst = self._instrument(category, symbol)
        lot, pf = inst["lotSizeFilter"], inst["priceFilter"]
        if category == "spot":
            return dict(step=Decimal(lot["basePrecision"]), min_qty=Decimal(lot["minOrderQty"]),
                        max_qty=Decimal(lot["maxOrderQty"]), min_notional=Decimal(lot["minOrderAmt"]),
                        tick=Decimal(pf["tickSize"]), base=inst["baseCoin"], quote=inst["quoteCoin"])
        return dict(step=Decimal(lot["qtyStep"]), min_qty=Decimal(lot["minOrderQty"]),
                    max_qty=Decimal(lot["maxOrderQty"]), min_notional=Decimal(lot["minNotionalValue"]),
                    tick=Decimal(pf["tickSize"]), base=inst["baseCoin"], quote=inst["quoteCoin"],
                    max_mkt=Decimal(lot["maxMktOrderQty"]))

    def _tick_round(self, px: Decimal, tick: Decimal) -> Decimal:
        return (px / tick).to_integral_value() * tick

    def _next_order_id(self, category) -> str:
        if category == "spot":
            self._spot_id += 1
            return str(self._spot_id)
        return str(uuid.uuid4())

    # ------------------------------------------------------------------ private routes (called under the lock)
    def _r_create(self, p, body, headers):
        category = p.get("category")
        if category not in ("spot", "linear"):
            raise BybitFault(10001, "params error: category")
        for name in ("symbol", "side", "orderType", "qty"):
            if p.get(name) in (None, ""):
                raise BybitFault(10001, f"params error: {name} is required")
        symbol, side, otype = p["symbol"], p["side"], p["orderType"]
        if symbol not in self.symbols:
            raise BybitFault(10001 if category == "linear" else 170121, "params error: symbol invalid")
        if side not in ("Buy", "Sell") or otype not in ("Market", "Limit"):
            raise BybitFault(10001, "params error: side/orderType")
        link = p.get("orderLinkId") or ""
        if link and not LINK_ID_RE.match(str(link)):
            raise BybitFault(10001 if category == "linear" else 170003, "params error: orderLinkId invalid")
        if link and any(o["orderLinkId"] == link and o["category"] == category for o in self.orders):
            if category == "spot":
                raise BybitFault(170141, "Duplicate clientOrderId")
            raise BybitFault(110072, "OrderLinkedID is duplicate")
        f = self._filters(category, symbol)
        qty = _dec(p["qty"], "qty")
        tif = p.get("timeInForce") or ("IOC" if otype == "Market" else "GTC")
        if otype == "Market":
            tif = "IOC"
        if tif not in ("GTC", "IOC", "FOK", "PostOnly"):
            raise BybitFault(10001, "params error: timeInForce")
        price = None
        if otype == "Limit":
            if p.get("price") in (None, ""):
                raise BybitFault(10001 if category == "linear" else 170130, "params error: price is required")
            price = _dec(p["price"], "price")
            if price <= 0:
                raise BybitFault(10001, "params error: price")
            if price % f["tick"] != 0:
                raise BybitFault(10001 if category == "linear" else 170134,
                                 "Order price has too many decimals." if category == "spot"
                                 else "params error: price is not a multiple of tickSize")
        mkt = self.prices[symbol]
        ref = price if price is not None else mkt
        trigger = None
        if p.get("triggerPrice") not in (None, ""):
            trigger, direction = _dec(p["triggerPrice"], "triggerPrice"), int(p.get("triggerDirection") or 0)
            if category != "linear" or trigger <= 0 or trigger % f["tick"] != 0 or direction not in (1, 2) \
                    or (p.get("triggerBy") or "LastPrice") != "LastPrice":
                raise BybitFault(10001, "params error: triggerPrice/triggerDirection/triggerBy (linear, LastPrice)")
            if direction == 1 and trigger <= mkt:
                raise BybitFault(110092, f"expect Rising, but trigger_price[{_s(trigger)}] <= current[{_s(mkt)}]")
            if direction == 2 and trigger >= mkt:
                raise BybitFault(110093, f"expect Falling, but trigger_price[{_s(trigger)}] >= current[{_s(mkt)}]")
        if category == "spot":
            if otype == "Market" and side == "Buy" and p.get("marketUnit", "quoteCoin") != "baseCoin":
                # a spot market Buy is by quote value by default: convert to base units at the current price
                qty = (qty / mkt).quantize(f["step"], rounding=ROUND_DOWN)
            if qty <= 0:
                raise BybitFault(170136, "Order quantity exceeded lower limit.")
            if qty % f["step"] != 0:
                raise BybitFault(170137, "Order quantity has too many decimals.")
            if qty < f["min_qty"]:
                raise BybitFault(170136, "Order quantity exceeded lower limit.")
            if qty > f["max_qty"]:
                raise BybitFault(170135, "Order quantity exceeded upper limit.")
            if qty * ref < f["min_notional"]:
                raise BybitFault(170140, "Order value exceeded lower limit.")
            if side == "Buy" and qty * ref > self.wallet.get(f["quote"], D0):
                raise BybitFault(170131, "Insufficient balance.")
            if side == "Sell" and qty > self.wallet.get(f["base"], D0):
                raise BybitFault(170131, "Insufficient balance.")
        else:
            if qty <= 0:
                raise BybitFault(10001, "params error: qty")
            if qty % f["step"] != 0:
                if (qty // f["step"]) == 0:
                    raise BybitFault(110017, "orderQty will be truncated to zero.")
                raise BybitFault(10001, "params error: qty is not a multiple of qtyStep")
            if qty < f["min_qty"]:
                raise BybitFault(10001, "The number of contracts exceeds minimum limit allowed")
            if qty > (f["max_mkt"] if otype == "Market" else f["max_qty"]):
                raise BybitFault(10001, "The number of contracts exceeds maximum limit allowed")
            reduce_only = str(p.get("reduceOnly", "")).lower() in ("true", "1")
            pos = self.positions.get(symbol, {}).get("size", D0)
            if reduce_only and trigger is None:  # a conditional order is checked when it triggers
                if pos == 0 or (pos > 0) == (side == "Buy"):
                    raise BybitFault(110017, "current position is zero, cannot fix reduce-only order qty")
            elif qty * ref < f["min_notional"]:
                raise BybitFault(110094, f"Order does not meet minimum order value {_s(f['min_notional'])}USDT")
            if not reduce_only and qty * ref / self.leverage > self._available_usdt():
                raise BybitFault(110007, "ab not enough for new order")
        now = self._now()
        order = {
            "orderId": self._next_order_id(category), "orderLinkId": link, "category": category,
            "symbol": symbol, "side": side, "orderType": otype, "price": price if price is not None else D0,
            "qty": qty, "timeInForce": tif, "orderStatus": "New", "rejectReason": "EC_NoError",
            "cancelType": "UNKNOWN", "cumExecQty": D0, "cumExecValue": D0, "cumExecFee": D0,
            "reduceOnly": str(p.get("reduceOnly", "")).lower() in ("true", "1"),
            "positionIdx": int(p.get("positionIdx", 0) or 0), "createdTime": now, "updatedTime": now,
            "isLeverage": str(p.get("isLeverage", "0")),
        }
        if trigger is not None:
            order.update(orderStatus="Untriggered", triggerPrice=trigger, triggerDirection=direction,
                         triggerBy="LastPrice", stopOrderType="Stop")
        self.orders.append(order)
        if trigger is None:
            self._match_new(order)
        if order["cumExecQty"] == 0:  # a fill already published the order
            self._emit("order", order)
        return 0, "OK", {"orderId": order["orderId"], "orderLinkId": link}

    def _find(self, category, order_id=None, link=None, symbol=None):
        for o in reversed(self.orders):
            if o["category"] != category or (symbol and o["symbol"] != symbol):
                continue
            if order_id:
                if o["orderId"] == order_id:
                    return o
            elif link and o["orderLinkId"] == link:
                return o
        return None

    def _r_cancel(self, p, body, headers):
        category = p.get("category")
        if category not in ("spot", "linear") or not p.get("symbol"):
            raise BybitFault(10001, "params error: category/symbol")
        if not p.get("orderId") and not p.get("orderLinkId"):
            raise BybitFault(10001, "params error: orderId or orderLinkId is required")
        o = self._find(category, p.get("orderId"), p.get("orderLinkId"), p["symbol"])
        if o is None:
            raise BybitFault(170213 if category == "spot" else 110001, "Order does not exist.")
        if o["orderStatus"] not in OPEN_STATUSES:
            if category == "spot":
                raise BybitFault(170142 if o["orderStatus"] == "Cancelled" else 170213, "Order does not exist.")
            raise BybitFault(110008, "This order has been completed or cancelled.")
        o["orderStatus"] = "Deactivated" if o["orderStatus"] == "Untriggered" else "Cancelled"
        o["cancelType"] = "CancelByUser"
        o["updatedTime"] = self._now()
        self._emit("order", o)
        return 0, "OK", {"orderId": o["orderId"], "orderLinkId": o["orderLinkId"]}

    def _page(self, rows, p, default, cap):
        try:
            limit = max(1, min(int(p.get("limit", default)), cap))
            start = int(p.get("cursor") or 0)
        except ValueError:
            raise BybitFault(10001, "params error: limit/cursor") from None
        chunk = rows[start:start + limit]
        nxt = str(start + limit) if start + limit < len(rows) else ""
        return chunk, nxt

    def _order_view(self, o) -> dict:
        cq, cv = o["cumExecQty"], o["cumExecValue"]
        leaves = o["qty"] - cq if o["orderStatus"] in OPEN_STATUSES else D0
        price = o["price"]
        return {
            "orderId": o["orderId"], "orderLinkId": o["orderLinkId"], "blockTradeId": "", "symbol": o["symbol"],
            "price": _s(price), "qty": _s(o["qty"]), "side": o["side"], "isLeverage": o["isLeverage"],
            "positionIdx": o["positionIdx"], "orderStatus": o["orderStatus"], "cancelType": o["cancelType"],
            "rejectReason": o["rejectReason"], "avgPrice": _s(cv / cq) if cq else "",
            "leavesQty": _s(leaves), "leavesValue": _s(leaves * price) if price else "0",
            "cumExecQty": _s(cq), "cumExecValue": _s(cv), "cumExecFee": _s(o["cumExecFee"]),
            "timeInForce": o["timeInForce"], "orderType": o["orderType"], "stopOrderType": o.get("stopOrderType", ""),
            "orderIv": "", "triggerPrice": _s(o.get("triggerPrice")), "takeProfit": "", "stopLoss": "",
            "tpTriggerBy": "", "slTriggerBy": "", "triggerDirection": o.get("triggerDirection", 0),
            "triggerBy": o.get("triggerBy", ""), "lastPriceOnCreated": "",
            "reduceOnly": o["reduceOnly"], "closeOnTrigger": False, "smpType": "None", "smpGroup": 0,
            "smpOrderId": "", "tpslMode": "", "tpLimitPrice": "", "slLimitPrice": "", "placeType": "",
            "createdTime": str(o["createdTime"]), "updatedTime": str(o["updatedTime"]),
        }

    def _query_orders(self, p, realtime: bool):
        category = p.get("category")
        if category not in ("spot", "linear"):
            raise BybitFault(10001, "params error: category")
        by_id = p.get("orderId") or p.get("orderLinkId")
        if realtime and category == "linear" and not (p.get("symbol") or p.get("baseCoin")
                                                      or p.get("settleCoin") or by_id):
            raise BybitFault(10001, "params error: symbol or settleCoin is required")
        rows = []
        for o in reversed(self.orders):
            if o["category"] != category:
                continue
            if p.get("symbol") and o["symbol"] != p["symbol"]:
                continue
            if p.get("orderId") and o["orderId"] != p["orderId"]:
                continue
            if p.get("orderLinkId") and o["orderLinkId"] != p["orderLinkId"]:
                continue
            if p.get("orderStatus") and o["orderStatus"] != p["orderStatus"]:
                continue
            if p.get("orderFilter") and (p["orderFilter"] == "StopOrder") != bool(o.get("stopOrderType")):
                continue
            if realtime:
                is_open = o["orderStatus"] in OPEN_STATUSES
                if by_id:
                    if not is_open and o["orderId"] in self._forgotten:
                        continue
                elif str(p.get("openOnly", "0")) == "0" and not is_open:
                    continue
            rows.append(o)
        chunk, nxt = self._page(rows, p, 20, 50)
        return 0, "OK", {"category": category, "list": [self._order_view(o) for o in chunk], "nextPageCursor": nxt}

    def _r_realtime(self, p, body, headers):
        return self._query_orders(p, realtime=True)

    def _r_history(self, p, body, headers):
        return self._query_orders(p, realtime=False)

    def _r_executions(self, p, body, headers):
        category = p.get("category")
        if category not in ("spot", "linear"):
            raise BybitFault(10001, "params error: category")
        rows = []
        for e in sorted(self.executions, key=lambda e: (e["execTime"], e["seq"]), reverse=True):
            if e["category"] != category:
                continue
            if any(p.get(k) and e[k] != p[k] for k in ("symbol", "orderId", "orderLinkId", "execType")):
                continue
            if p.get("startTime") and e["execTime"] < int(p["startTime"]):
                continue
            if p.get("endTime") and e["execTime"] > int(p["endTime"]):
                continue
            rows.append(e)
        chunk, nxt = self._page(rows, p, 50, 100)
        out = [{k: (str(v) if k in ("execTime",) else _s(v) if isinstance(v, Decimal) else v)
                for k, v in e.items() if k != "category"} for e in chunk]
        return 0, "OK", {"category": category, "list": out, "nextPageCursor": nxt}

    def _position_view(self, symbol) -> dict:
        pos = self.positions.get(symbol)
        size = pos["size"] if pos else D0
        avg = pos["avg"] if pos else D0
        mark = self.prices[symbol]
        upl = (mark - avg) * size if size else D0
        value = abs(size) * avg
        return {
            "positionIdx": 0, "riskId": 1, "riskLimitValue": "2000000", "symbol": symbol,
            "side": "" if size == 0 else ("Buy" if size > 0 else "Sell"), "size": _s(abs(size)),
            "avgPrice": _s(avg), "positionValue": _s(value), "tradeMode": 0, "positionStatus": "Normal",
            "autoAddMargin": 0, "adlRankIndicator": 2 if size else 0, "leverage": _s(self.leverage),
            "breakEvenPrice": _s(avg), "positionBalance": _s(value / self.leverage), "markPrice": _s(mark),
            "liqPrice": "", "bustPrice": "", "positionMM": "0", "positionIM": _s(value / self.leverage),
            "tpslMode": "Full", "takeProfit": "0", "stopLoss": "0", "trailingStop": "0",
            "unrealisedPnl": _s(upl), "curRealisedPnl": _s(pos["realised"] if pos else D0),
            "cumRealisedPnl": _s(pos["cum_realised"] if pos else D0), "seq": self._seq, "isReduceOnly": False,
            "createdTime": str(pos["created"] if pos else 0), "updatedTime": str(pos["updated"] if pos else 0),
        }

    def _r_positions(self, p, body, headers):
        if p.get("category") != "linear":
            raise BybitFault(10001, "params error: category only support linear")
        if p.get("symbol"):
            if p["symbol"] not in self.symbols:
                raise BybitFault(10001, "params error: symbol invalid")
            rows = [self._position_view(p["symbol"])]
        elif p.get("settleCoin"):
            rows = [self._position_view(s) for s, pos in sorted(self.positions.items()) if pos["size"] != 0]
        else:
            raise BybitFault(10001, "params error: symbol or settleCoin is required")
        chunk, nxt = self._page(rows, p, 20, 200)
        return 0, "OK", {"category": "linear", "list": chunk, "nextPageCursor": nxt}

    def _used_margin(self) -> Decimal:
        return sum((abs(pos["size"]) * pos["avg"] / self.leverage for pos in self.positions.values()), D0)

    def _upl(self) -> Decimal:
        return sum(((self.prices[s] - pos["avg"]) * pos["size"] for s, pos in self.positions.items()), D0)

    def _available_usdt(self) -> Decimal:
        return self.wallet.get("USDT", D0) + min(self._upl(), D0) - self._used_margin()

    def _r_wallet(self, p, body, headers):
        if p.get("accountType") != "UNIFIED":
            raise BybitFault(10001, "accountType only support UNIFIED.")
        wanted = set(p["coin"].split(",")) if p.get("coin") else None
        coins, total = [], D0
        upl = self._upl()
        for coin, bal in sorted(self.wallet.items()):
            if wanted is not None and coin not in wanted:
                continue
            px = Decimal(1) if coin == "USDT" else self.prices.get(f"{coin}USDT", D0)
            coin_upl = upl if coin == "USDT" else D0
            equity = bal + coin_upl
            usd = equity * px
            total += usd
            im = self._used_margin() if coin == "USDT" else D0
            coins.append({
                "coin": coin, "equity": _s(equity), "usdValue": _s(usd), "walletBalance": _s(bal),
                "free": "", "locked": "0", "spotHedgingQty": "0", "borrowAmount": "0",
                "availableToWithdraw": _s(max(bal - im, D0)), "accruedInterest": "0", "totalOrderIM": "0",
                "totalPositionIM": _s(im), "totalPositionMM": "0", "unrealisedPnl": _s(coin_upl),
                "cumRealisedPnl": _s(sum((pos["cum_realised"] for pos in self.positions.values()), D0))
                if coin == "USDT" else "0", "bonus": "0", "collateralSwitch": True, "marginCollateral": True,
                "availableToBorrow": "", "spotBorrow": "0",
            })
        acct = {"accountType": "UNIFIED", "accountIMRate": "0", "accountMMRate": "0", "accountLTV": "0",
                "totalEquity": _s(total), "totalWalletBalance": _s(total - upl), "totalMarginBalance": _s(total),
                "totalAvailableBalance": _s(self._available_usdt()), "totalPerpUPL": _s(upl),
                "totalInitialMargin": _s(self._used_margin()), "totalMaintenanceMargin": "0", "coin": coins}
        return 0, "OK", {"list": [acct]}

    # ------------------------------------------------------------------ matching
    def _match_new(self, o) -> None:
        mkt = self.prices[o["symbol"]]
        tick = self._filters(o["category"], o["symbol"])["tick"]
        buy = o["side"] == "Buy"
        if o["orderType"] == "Market":
            slip = mkt * self.slippage_bps / Decimal(10_000)
            px = self._tick_round(mkt + slip if buy else mkt - slip, tick)
            self._execute(o, o["qty"], px, maker=False)
            return
        crosses = (o["price"] >= mkt) if buy else (o["price"] <= mkt)
        if crosses:
            if o["timeInForce"] == "PostOnly":
                o["orderStatus"], o["rejectReason"] = "Cancelled", POST_ONLY_REJECT
                o["cancelType"] = "UNKNOWN"
                o["updatedTime"] = self._now()
                return
            self._execute(o, o["qty"], mkt, maker=False)
        elif o["timeInForce"] in ("IOC", "FOK"):
            o["orderStatus"], o["rejectReason"] = "Cancelled", "EC_NoImmediateQtyToFill"
            o["updatedTime"] = self._now()

    def advance(self, price_by_symbol: dict) -> list[dict]:
        """Move the scripted prices; resting limit orders that the new price crosses fill (maker, at their price),
        conditional orders whose trigger it reaches trigger (:meth:`_trigger`).

        Returns the executions created."""
        made = []
        with self._lock:
            for sym, px in price_by_symbol.items():
                self.prices[sym] = Decimal(str(px))
            for o in list(self.orders):
                if o["orderStatus"] == "Untriggered":
                    made.extend(self._trigger(o))
                    continue
                if o["orderStatus"] not in OPEN_STATUSES or o["orderType"] != "Limit":
                    continue
                mkt = self.prices[o["symbol"]]
                if (o["side"] == "Buy" and mkt <= o["price"]) or (o["side"] == "Sell" and mkt >= o["price"]):
                    made.append(self._execute(o, o["qty"] - o["cumExecQty"], o["price"], maker=True))
        return made

    def _trigger(self, o) -> list[dict]:
        """Trigger ``o`` if the last price reached it: a market order filled at that price (taker); reduce-only
        capped at the opposite position (Bybit shrinks the order), ``Deactivated`` when there is none."""
        mkt = self.prices[o["symbol"]]
        if not (mkt >= o["triggerPrice"] if o["triggerDirection"] == 1 else mkt <= o["triggerPrice"]):
            return []
        pos = self.positions.get(o["symbol"], {}).get("size", D0)
        closable = abs(pos) if pos and (pos > 0) != (o["side"] == "Buy") else D0
        o["updatedTime"] = self._now()
        if o["reduceOnly"] and closable == 0:
            o["orderStatus"] = "Deactivated"
            self._emit("order", o)
            return []
        o["orderStatus"] = "Triggered"
        self._emit("order", o)
        if o["reduceOnly"]:
            o["qty"] = min(o["qty"], closable)
        return [self._execute(o, o["qty"], mkt, maker=False)]

    def fill(self, order_link_id: str, qty=None, price=None, *, maker: bool = True) -> dict:
        """Force a (partial) fill of an open order: ``qty`` defaults to the rest, ``price`` to the limit price."""
        with self._lock:
            o = next(o for o in reversed(self.orders) if o["orderLinkId"] == order_link_id)
            if o["orderStatus"] not in OPEN_STATUSES:
                raise ValueError(f"order {order_link_id} is {o['orderStatus']}")
            q = Decimal(str(qty)) if qty is not None else o["qty"] - o["cumExecQty"]
            px = Decimal(str(price)) if price is not None else (o["price"] or self.prices[o["symbol"]])
            return self._execute(o, q, px, maker=maker)

    def _execute(self, o, qty: Decimal, px: Decimal, *, maker: bool) -> dict:
        cat, sym, buy = o["category"], o["symbol"], o["side"] == "Buy"
        f = self._filters(cat, sym)
        value = qty * px
        rate = self.fees[(cat, maker)]
        self._seq += 1
        now = self._now()
        if cat == "spot":
            if buy:  # the fee is charged in the coin received
                fee, fee_ccy = qty * rate, f["base"]
                self.wallet[f["base"]] = self.wallet.get(f["base"], D0) + qty - fee
                self.wallet[f["quote"]] = self.wallet.get(f["quote"], D0) - value
            else:
                fee, fee_ccy = value * rate, f["quote"]
                self.wallet[f["base"]] = self.wallet.get(f["base"], D0) - qty
                self.wallet[f["quote"]] = self.wallet.get(f["quote"], D0) + value - fee
            closed = D0
        else:
            fee, fee_ccy = value * rate, "USDT"
            before = self.positions.get(sym, {}).get("size", D0)
            self._apply_position(sym, qty if buy else -qty, px)
            self.wallet["USDT"] = self.wallet.get("USDT", D0) - fee
            closed = min(abs(before), qty) if before and (before > 0) != buy else D0
        o["cumExecQty"] += qty
        o["cumExecValue"] += value
        o["cumExecFee"] += fee
        o["orderStatus"] = "Filled" if o["cumExecQty"] >= o["qty"] else "PartiallyFilled"
        o["updatedTime"] = now
        ex = {
            "category": cat, "symbol": sym, "orderType": o["orderType"], "orderLinkId": o["orderLinkId"],
            "side": o["side"], "orderId": o["orderId"], "stopOrderType": o.get("stopOrderType", ""),
            "leavesQty": o["qty"] - o["cumExecQty"],
            "execTime": now, "feeCurrency": fee_ccy, "isMaker": maker, "execFee": fee, "feeRate": rate,
            "execId": str(uuid.uuid4()), "tradeIv": "", "blockTradeId": "", "markPrice": self.prices[sym],
            "execPrice": px, "markIv": "", "orderQty": o["qty"], "orderPrice": o["price"], "execValue": value,
            "execType": "Trade", "execQty": qty, "closedSize": closed, "extraFees": "", "seq": self._seq,
            "underlyingPrice": "", "indexPrice": "",
        }
        self.executions.append(ex)
        self._emit("execution", ex)
        self._emit("order", o)
        return dict(ex)

    def _emit(self, topic: str, record: dict) -> None:
        for listener in list(self.listeners):
            listener(topic, record)

    def _apply_position(self, symbol: str, dq: Decimal, px: Decimal) -> None:
        now = self._now()
        pos = self.positions.setdefault(symbol, {"size": D0, "avg": D0, "realised": D0, "cum_realised": D0,
                                                 "created": now, "updated": now})
        size, avg = pos["size"], pos["avg"]
        if size == 0 or (size > 0) == (dq > 0):  # open or add
            new = size + dq
            pos["avg"] = (abs(size) * avg + abs(dq) * px) / abs(new)
            pos["size"] = new
        else:  # reduce, close or flip
            closing = min(abs(size), abs(dq))
            pnl = (px - avg) * closing * (1 if size > 0 else -1)
            pos["realised"] += pnl
            pos["cum_realised"] += pnl
            self.wallet["USDT"] = self.wallet.get("USDT", D0) + pnl
            new = size + dq
            pos["size"] = new
            if new == 0:
                pos["avg"] = D0
            elif (new > 0) != (size > 0):
                pos["avg"] = px
        pos["updated"] = now
        self._seq += 1


def json_invalid(body: bytes) -> bool:
    try:
        return not isinstance(json.loads(body.decode("utf-8")), dict)
    except ValueError:
        return True


class _ExchangeHandler(_Handler):
    owner: FakeBybitExchange
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall

    def _serve(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        reply = self.owner.dispatch(method, self.path, body, self.headers)
        try:
            if reply.hang:
                time.sleep(reply.hang)
            if reply.drop:
                return self._drop()
            self._send(reply.status, reply.headers, reply.payload)
        except OSError:  # the client gave up (timeout) and closed the socket
            self.close_connection = True


FakeBybitExchange.handler_class = _ExchangeHandler
FakeBybitExchange.thread_name = "fake-bybit-exchange"
