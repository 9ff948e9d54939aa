"""The Bybit V5 REST client: the only code that talks to pybit.

:class:`BybitClient` wraps an unmodified ``pybit.unified_trading.HTTP`` session:

* pybit's own retry loops are switched off (``retry_codes`` empty, ``force_retry=False``, one attempt) so every
  failure surfaces once and is translated once by :func:`live.bybit.errors.classify`;
* the client retries only :class:`~live.bybit.errors.TransientError` (``retries`` times, honouring the
  rate-limit reset header) -- for a write that is safe because a transient error means "not accepted" and the
  resend carries the same ``orderLinkId``; an :class:`~live.bybit.errors.AmbiguousError` is **never** retried;
* a client-side token bucket keeps under the documented per-UID limits (notes A.6; pybit has none):
  create/cancel 10/s linear, 20/s spot; order/execution/position/wallet queries 50/s each; plus a global cap
  (``max_rate``, default 100/s, under the 600 per 5 s IP limit);
* instrument filters are applied before sending (:func:`round_qty`, :func:`round_price`): a quantity below
  ``minOrderQty`` / a notional below the minimum is refused with a :class:`RejectedError` and no request.

Secrets: the API secret lives only inside the pybit session; it is never logged, never put in a message and
never shown by ``repr`` (neither the client's nor the session's).
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

import pandas as pd
import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from live.bybit.errors import (
    AmbiguousError,
    ExchangeError,
    RejectedError,
    TransientError,
    classify,
    register_secret,
)

log = logging.getLogger("live.bybit")

CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
OPEN_STATUSES = frozenset({"New", "PartiallyFilled", "Untriggered"})
TERMINAL_STATUSES = frozenset({"Rejected", "PartiallyFilledCanceled", "Filled", "Cancelled", "Triggered",
                               "Deactivated"})

# Documented per-UID limits (requests per rolling second), notes A.6.
ENDPOINT_LIMITS: dict[str, float] = {
    "order:linear": 10, "order:inverse": 10, "order:spot": 20, "order:option": 10,
    "/v5/order/realtime": 50, "/v5/order/history": 50, "/v5/execution/list": 50,
    "/v5/position/list": 50, "/v5/account/wallet-balance": 50,
}
_TRANSLATED = (FailedRequestError, InvalidRequestError, requests.exceptions.RequestException,
               json.JSONDecodeError, PermissionError)


# ============================================================================================ rate limiting
class TokenBucket:
    """A thread-safe token bucket: ``rate`` tokens per second, at most ``burst`` stored.

    Built by :meth:`for_limit` with ``rate = 0.9 * limit`` and ``burst = max(1, 0.1 * limit)`` so that no rolling
    one-second window ever sees more than ``limit`` acquisitions."""

    def __init__(self, rate: float, burst: float = 1.0, *, clock=time.monotonic, sleep=time.sleep):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate, self.burst = float(rate), max(1.0, float(burst))
        self._clock, self._sleep = clock, sleep
        self._tokens, self._t = self.burst, clock()
        self._lock = threading.Lock()

    @classmethod
    def for_limit(cls, limit: float, **kw) -> "TokenBucket":
        return cls(0.9 * limit, max(1.0, 0.1 * limit), **kw)

    def acquire(self, n: float = 1.0) -> float:
        """Take ``n`` tokens, sleeping as needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
                self._t = now
                if self._tokens >= n - 1e-9:  # tolerance: float refills must not spin forever
                    self._tokens = max(0.0, self._tokens - n)
                    return waited
                need = max((n - self._tokens) / self.rate, 1e-4)
            self._sleep(need)
            waited += need


class RateLimiter:
    """A global bucket (``max_rate`` req/s) plus one bucket per endpoint key (see :data:`ENDPOINT_LIMITS`)."""

    def __init__(self, max_rate: float | None = 100.0, limits: dict | None = None, *, clock=time.monotonic,
                 sleep=time.sleep):
        self._kw = dict(clock=clock, sleep=sleep)
        self.limits = dict(ENDPOINT_LIMITS if limits is None else limits)
        self._global = TokenBucket.for_limit(max_rate, **self._kw) if max_rate else None
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str | None = None) -> float:
        waited = self._global.acquire() if self._global else 0.0
        if key is not None and key in self.limits:
            with self._lock:
                b = self._buckets.get(key)
                if b is None:
                    b = self._buckets[key] = TokenBucket.for_limit(self.limits[key], **self._kw)
            waited += b.acquire()
        return waited


# ============================================================================================ parsed records
def _d(x) -> Decimal | None:
    """Bybit number-string -> Decimal ("" / None -> None)."""
    if x is None or x == "":
        return None
    try:
        return Decimal(str(x))
    except InvalidOperation:
        return None


def _s(d: Decimal) -> str:
    d = Decimal(d)
    return "0" if d == 0 else format(d.normalize(), "f")


@dataclass(frozen=True)
class Instrument:
    """Trading filters of one symbol. Spot: ``qty_step`` is ``basePrecision``, ``min_notional`` ``minOrderAmt``."""

    category: str
    symbol: str
    base_coin: str
    quote_coin: str
    status: str
    qty_step: Decimal
    tick_size: Decimal
    min_qty: Decimal
    max_qty: Decimal | None
    min_notional: Decimal
    max_market_qty: Decimal | None = None
    funding_interval_min: int | None = None

    @classmethod
    def from_bybit(cls, category: str, item: dict) -> "Instrument":
        lot, pf = item.get("lotSizeFilter", {}), item.get("priceFilter", {})
        if category == "spot":
            step, notional = _d(lot.get("basePrecision")), _d(lot.get("minOrderAmt"))
            max_mkt = _d(lot.get("maxMarketOrderQty"))
        else:
            step, notional = _d(lot.get("qtyStep")), _d(lot.get("minNotionalValue"))
            max_mkt = _d(lot.get("maxMktOrderQty"))
        fi = item.get("fundingInterval")
        return cls(category=category, symbol=item["symbol"], base_coin=item.get("baseCoin", ""),
                   quote_coin=item.get("quoteCoin", ""), status=item.get("status", ""),
                   qty_step=step or Decimal("1"), tick_size=_d(pf.get("tickSize")) or Decimal("0.01"),
                   min_qty=_d(lot.get("minOrderQty")) or Decimal(0), max_qty=_d(lot.get("maxOrderQty")),
                   min_notional=notional or Decimal(0), max_market_qty=max_mkt,
                   funding_interval_min=int(fi) if fi not in (None, "") else None)


def round_qty(instrument: Instrument, qty, price=None, *, check_notional: bool = True) -> Decimal:
    """Floor ``qty`` to the quantity step; refuse (RejectedError, nothing sent) below min qty / min notional."""
    try:
        q = Decimal(str(qty))
    except InvalidOperation:
        raise RejectedError(f"{instrument.symbol}: quantity {qty!r} is not a number") from None
    step = instrument.qty_step
    out = ((q / step).to_integral_value(ROUND_DOWN) * step).quantize(step)
    if out <= 0 or out < instrument.min_qty:
        raise RejectedError(f"{instrument.symbol} {instrument.category}: quantity {q} floors to {_s(out)} "
                            f"(step {_s(step)}), below the minimum order quantity {_s(instrument.min_qty)}")
    if instrument.max_qty is not None and out > instrument.max_qty:
        raise RejectedError(f"{instrument.symbol} {instrument.category}: quantity {_s(out)} above the maximum "
                            f"{_s(instrument.max_qty)}")
    if check_notional and price is not None and instrument.min_notional:
        notional = out * Decimal(str(price))
        if notional < instrument.min_notional:
            raise RejectedError(f"{instrument.symbol} {instrument.category}: order value {_s(notional)} below the "
                                f"minimum notional {_s(instrument.min_notional)} {instrument.quote_coin}")
    return out


def round_price(instrument: Instrument, price, side: str | None = None) -> Decimal:
    """Round ``price`` to the tick: Buy -> down, Sell -> up (never more aggressive), no side -> nearest."""
    try:
        p = Decimal(str(price))
    except InvalidOperation:
        raise RejectedError(f"{instrument.symbol}: price {price!r} is not a number") from None
    tick = instrument.tick_size
    mode = {"Buy": ROUND_FLOOR, "Sell": ROUND_CEILING}.get(side, ROUND_HALF_UP)
    out = ((p / tick).to_integral_value(mode) * tick).quantize(tick)
    if out <= 0:
        raise RejectedError(f"{instrument.symbol}: price {p} rounds to {_s(out)} (tick {_s(tick)})")
    return out


@dataclass(frozen=True)
class OrderAck:
    order_id: str
    client_order_id: str
    qty: Decimal          # what was sent (after flooring to the step)
    price: Decimal | None
    trigger_price: Decimal | None = None


@dataclass(frozen=True)
class Order:
    category: str
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    status: str
    qty: Decimal
    price: Decimal | None
    avg_price: Decimal | None
    cum_exec_qty: Decimal
    cum_exec_value: Decimal
    cum_exec_fee: Decimal
    leaves_qty: Decimal | None
    time_in_force: str
    reject_reason: str
    reduce_only: bool
    created_ms: int
    updated_ms: int
    raw: dict = field(repr=False, compare=False)
    trigger_price: Decimal | None = None  # conditional (stop) orders only
    trigger_direction: int = 0            # 1: triggers when the price rises to it, 2: falls to it, 0: none

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_bybit(cls, category: str, r: dict) -> "Order":
        return cls(category=category, order_id=r.get("orderId", ""), client_order_id=r.get("orderLinkId", ""),
                   symbol=r.get("symbol", ""), side=r.get("side", ""), order_type=r.get("orderType", ""),
                   status=r.get("orderStatus", ""), qty=_d(r.get("qty")) or Decimal(0),
                   price=_d(r.get("price")) or None, avg_price=_d(r.get("avgPrice")) or None,
                   cum_exec_qty=_d(r.get("cumExecQty")) or Decimal(0),
                   cum_exec_value=_d(r.get("cumExecValue")) or Decimal(0),
                   cum_exec_fee=_d(r.get("cumExecFee")) or Decimal(0), leaves_qty=_d(r.get("leavesQty")),
                   time_in_force=r.get("timeInForce", ""), reject_reason=r.get("rejectReason", ""),
                   reduce_only=bool(r.get("reduceOnly", False)), created_ms=int(r.get("createdTime") or 0),
                   updated_ms=int(r.get("updatedTime") or 0), raw=r,
                   trigger_price=_d(r.get("triggerPrice")) or None,
                   trigger_direction=int(r.get("triggerDirection") or 0))


@dataclass(frozen=True)
class Execution:
    category: str
    exec_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    exec_type: str
    qty: Decimal
    price: Decimal
    value: Decimal
    fee: Decimal
    fee_currency: str
    is_maker: bool
    exec_time_ms: int
    seq: int | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_bybit(cls, category: str, r: dict) -> "Execution":
        return cls(category=category, exec_id=r["execId"], order_id=r.get("orderId", ""),
                   client_order_id=r.get("orderLinkId", ""), symbol=r.get("symbol", ""), side=r.get("side", ""),
                   exec_type=r.get("execType", ""), qty=_d(r.get("execQty")) or Decimal(0),
                   price=_d(r.get("execPrice")) or Decimal(0), value=_d(r.get("execValue")) or Decimal(0),
                   fee=_d(r.get("execFee")) or Decimal(0), fee_currency=r.get("feeCurrency", ""),
                   is_maker=bool(r.get("isMaker", False)), exec_time_ms=int(r.get("execTime") or 0),
                   seq=r.get("seq"), raw=r)


@dataclass(frozen=True)
class Position:
    category: str
    symbol: str
    side: str              # "Buy" | "Sell" | "" (flat)
    size: Decimal          # absolute
    avg_price: Decimal | None
    mark_price: Decimal | None
    unrealised_pnl: Decimal | None
    cum_realised_pnl: Decimal | None
    leverage: Decimal | None
    updated_ms: int
    raw: dict = field(repr=False, compare=False)

    @property
    def signed_size(self) -> Decimal:
        return -self.size if self.side == "Sell" else self.size

    @classmethod
    def from_bybit(cls, category: str, r: dict) -> "Position":
        return cls(category=category, symbol=r.get("symbol", ""), side=r.get("side", ""),
                   size=_d(r.get("size")) or Decimal(0), avg_price=_d(r.get("avgPrice")),
                   mark_price=_d(r.get("markPrice")), unrealised_pnl=_d(r.get("unrealisedPnl")),
                   cum_realised_pnl=_d(r.get("cumRealisedPnl")), leverage=_d(r.get("leverage")),
                   updated_ms=int(r.get("updatedTime") or 0), raw=r)


@dataclass(frozen=True)
class CoinBalance:
    coin: str
    wallet_balance: Decimal
    equity: Decimal | None
    usd_value: Decimal | None
    locked: Decimal | None
    unrealised_pnl: Decimal | None
    available_to_withdraw: Decimal | None


@dataclass(frozen=True)
class WalletBalance:
    account_type: str
    total_equity: Decimal | None
    total_wallet_balance: Decimal | None
    total_available_balance: Decimal | None
    total_initial_margin: Decimal | None
    coins: dict
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_bybit(cls, r: dict) -> "WalletBalance":
        coins = {c["coin"]: CoinBalance(coin=c["coin"], wallet_balance=_d(c.get("walletBalance")) or Decimal(0),
                                        equity=_d(c.get("equity")), usd_value=_d(c.get("usdValue")),
                                        locked=_d(c.get("locked")), unrealised_pnl=_d(c.get("unrealisedPnl")),
                                        available_to_withdraw=_d(c.get("availableToWithdraw")))
                 for c in r.get("coin", [])}
        return cls(account_type=r.get("accountType", ""), total_equity=_d(r.get("totalEquity")),
                   total_wallet_balance=_d(r.get("totalWalletBalance")),
                   total_available_balance=_d(r.get("totalAvailableBalance")),
                   total_initial_margin=_d(r.get("totalInitialMargin")), coins=coins, raw=r)


@dataclass(frozen=True)
class OrderBook:
    symbol: str
    bids: list  # [(price, size)] best first
    asks: list
    ts_ms: int
    update_id: int | None
    seq: int | None


# ============================================================================================ the client
class _Session(HTTP):
    """The unmodified pybit session, with a repr that cannot leak the credentials."""

    def __repr__(self) -> str:
        return f"<pybit HTTP session endpoint={self.endpoint!r} (credentials redacted)>"

    __str__ = __repr__


class BybitClient:
    """Bybit V5 REST through pybit, with error translation, client-side rate limiting and instrument filters."""

    def __init__(self, api_key: str | None = None, api_secret: str | None = None, *, testnet: bool = True,
                 endpoint: str | None = None, max_rate: float | None = 100.0, rate_limits: dict | None = None,
                 timeout: float | tuple = (3.0, 10.0), recv_window: int = 5000, retries: int = 2,
                 retry_backoff: float = 0.25, max_retry_sleep: float = 5.0, demo: bool = False):
        register_secret(api_secret)
        self._key_hint = (api_key[:4] + "…") if api_key else None
        self._session = _Session(testnet=testnet, demo=demo, api_key=api_key, api_secret=api_secret,
                                 timeout=timeout, recv_window=recv_window, max_retries=1, retry_delay=0,
                                 force_retry=False, log_requests=False)
        self._session.retry_codes = set()  # pybit must not retry 10002/10006 itself: we classify them once
        if endpoint is not None:
            self._session.endpoint = endpoint.rstrip("/")
        self.limiter = RateLimiter(max_rate, rate_limits)
        self.retries = int(retries)
        self.retry_backoff = float(retry_backoff)
        self.max_retry_sleep = float(max_retry_sleep)
        self._instruments: dict[tuple[str, str], Instrument] = {}

    def __repr__(self) -> str:
        return f"BybitClient(endpoint={self.endpoint!r}, api_key={self._key_hint!r}, api_secret='***')"

    __str__ = __repr__

    def __getstate__(self):
        raise TypeError("BybitClient holds credentials and cannot be pickled")

    @property
    def endpoint(self) -> str:
        return self._session.endpoint

    # ------------------------------------------------------------------ the one call path
    def _call(self, method: str, operation: str, *, is_write: bool, bucket: str | None,
              client_order_id: str | None = None, **params) -> dict:
        attempt = 0
        while True:
            self.limiter.acquire(bucket)
            try:
                resp = getattr(self._session, method)(**dict(params))
            except _TRANSLATED as exc:
                err, cause = classify(exc, is_write=is_write, operation=operation,
                                      client_order_id=client_order_id), exc
            else:
                if not isinstance(resp, dict):
                    raise classify(ValueError("unexpected response"), is_write=is_write, operation=operation,
                                   client_order_id=client_order_id)
                code = resp.get("retCode", resp.get("ret_code", 0))
                if code:
                    err, cause = classify(resp, is_write=is_write, operation=operation,
                                          client_order_id=client_order_id), None
                else:
                    return resp.get("result") or {}
            if isinstance(err, TransientError) and attempt < self.retries:
                attempt += 1
                pause = min(self.max_retry_sleep, max(err.retry_after or 0.0, self.retry_backoff * attempt))
                log.warning("%s (attempt %d/%d, retrying in %.2fs)", err, attempt, self.retries + 1, pause)
                time.sleep(pause)
                continue
            log.warning("%s: %s", type(err).__name__, err)
            raise err from cause

    def _paged(self, method, operation, *, bucket, limit, max_pages=50, **params) -> list[dict]:
        rows, cursor = [], None
        for _ in range(max_pages):
            result = self._call(method, operation, is_write=False, bucket=bucket, limit=limit, cursor=cursor,
                                **params)
            rows.extend(result.get("list") or [])
            cursor = result.get("nextPageCursor") or None
            if not cursor:
                break
        return rows

    # ------------------------------------------------------------------ market data (public)
    def server_time_ms(self) -> int:
        result = self._call("get_server_time", "GET /v5/market/time", is_write=False, bucket=None)
        return int(result["timeNano"]) // 1_000_000

    def clock_skew_ms(self) -> int:
        """Server clock minus local clock (ms), measured at the request's midpoint."""
        t0 = time.time()
        server = self.server_time_ms()
        t1 = time.time()
        return int(server - (t0 + t1) / 2 * 1000)

    def klines(self, category: str, symbol: str, interval: str, *, start: int | None = None,
               end: int | None = None, limit: int = 200) -> pd.DataFrame:
        """Klines oldest first (Bybit sends newest first), index = UTC bar open; the last row may be open."""
        result = self._call("get_kline", "GET /v5/market/kline", is_write=False, bucket=None, category=category,
                            symbol=symbol, interval=str(interval), start=start, end=end, limit=limit)
        rows = list(reversed(result.get("list") or []))
        cols = ["open", "high", "low", "close", "volume", "turnover"]
        if not rows:
            return pd.DataFrame(columns=cols, index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
        idx = pd.to_datetime([int(r[0]) for r in rows], unit="ms", utc=True)
        data = {c: [float(r[i + 1]) for r in rows] for i, c in enumerate(cols[: len(rows[0]) - 1])}
        return pd.DataFrame(data, index=idx)

    def tickers(self, category: str, symbol: str | None = None) -> list[dict]:
        result = self._call("get_tickers", "GET /v5/market/tickers", is_write=False, bucket=None,
                            category=category, symbol=symbol)
        return list(result.get("list") or [])

    def orderbook(self, category: str, symbol: str, limit: int = 25) -> OrderBook:
        r = self._call("get_orderbook", "GET /v5/market/orderbook", is_write=False, bucket=None,
                       category=category, symbol=symbol, limit=limit)
        return OrderBook(symbol=r.get("s", symbol), bids=[(Decimal(p), Decimal(q)) for p, q in r.get("b", [])],
                         asks=[(Decimal(p), Decimal(q)) for p, q in r.get("a", [])], ts_ms=int(r.get("ts") or 0),
                         update_id=r.get("u"), seq=r.get("seq"))

    def instruments_info(self, category: str, symbol: str | None = None) -> list[Instrument]:
        items = self._paged("get_instruments_info", "GET /v5/market/instruments-info", bucket=None, limit=500,
                            category=category, symbol=symbol)
        out = [Instrument.from_bybit(category, it) for it in items]
        for inst in out:
            self._instruments[(category, inst.symbol)] = inst
        return out

    def instrument(self, category: str, symbol: str, *, refresh: bool = False) -> Instrument:
        """Cached filters of one symbol (fetched once)."""
        key = (category, symbol)
        if refresh or key not in self._instruments:
            self.instruments_info(category, symbol)
        try:
            return self._instruments[key]
        except KeyError:
            raise RejectedError(f"{category} {symbol}: unknown instrument") from None

    def funding_history(self, symbol: str, *, start: int | None = None, end: int | None = None,
                        limit: int = 200, category: str = "linear") -> pd.Series:
        """Funding rates oldest first, index = UTC settlement time."""
        result = self._call("get_funding_rate_history", "GET /v5/market/funding/history", is_write=False,
                            bucket=None, category=category, symbol=symbol, startTime=start, endTime=end, limit=limit)
        rows = list(reversed(result.get("list") or []))
        idx = pd.to_datetime([int(r["fundingRateTimestamp"]) for r in rows], unit="ms", utc=True)
        return pd.Series([float(r["fundingRate"]) for r in rows], index=idx, name="funding_rate", dtype=float)

    # ------------------------------------------------------------------ account (private reads)
    def wallet_balance(self, coin: str | None = None) -> WalletBalance:
        result = self._call("get_wallet_balance", "GET /v5/account/wallet-balance", is_write=False,
                            bucket="/v5/account/wallet-balance", accountType="UNIFIED", coin=coin)
        accounts = result.get("list") or []
        if not accounts:
            raise TransientError("GET /v5/account/wallet-balance: empty account list", operation="wallet")
        return WalletBalance.from_bybit(accounts[0])

    def positions(self, category: str = "linear", symbol: str | None = None,
                  settle_coin: str | None = "USDT") -> list[Position]:
        rows = self._paged("get_positions", "GET /v5/position/list", bucket="/v5/position/list", limit=200,
                           category=category, symbol=symbol, settleCoin=None if symbol else settle_coin)
        return [Position.from_bybit(category, r) for r in rows]

    def open_orders(self, category: str, symbol: str | None = None, settle_coin: str | None = None) -> list[Order]:
        if category == "linear" and not symbol and not settle_coin:
            settle_coin = "USDT"
        rows = self._paged("get_open_orders", "GET /v5/order/realtime", bucket="/v5/order/realtime", limit=50,
                           category=category, symbol=symbol, settleCoin=settle_coin)
        return [Order.from_bybit(category, r) for r in rows]

    def get_order(self, category: str, symbol: str | None = None, *, client_order_id: str | None = None,
                  order_id: str | None = None) -> Order | None:
        """One order by orderLinkId (or orderId): ``/v5/order/realtime`` first, then ``/v5/order/history``.

        None when neither knows it (then check :meth:`executions` before concluding it never existed). No
        ``orderFilter`` is sent: on a unified account both return every kind, conditional orders included."""
        if not client_order_id and not order_id:
            raise ValueError("get_order needs client_order_id or order_id")
        q = dict(category=category, symbol=symbol, orderLinkId=None if order_id else client_order_id,
                 orderId=order_id)
        for method, op, bucket in (("get_open_orders", "GET /v5/order/realtime", "/v5/order/realtime"),
                                   ("get_order_history", "GET /v5/order/history", "/v5/order/history")):
            rows = self._call(method, op, is_write=False, bucket=bucket, **q).get("list") or []
            if rows:
                return Order.from_bybit(category, rows[0])
        return None

    def order_history(self, category: str, symbol: str | None = None, *, limit: int = 50,
                      max_pages: int = 10) -> list[Order]:
        rows = self._paged("get_order_history", "GET /v5/order/history", bucket="/v5/order/history", limit=limit,
                           max_pages=max_pages, category=category, symbol=symbol)
        return [Order.from_bybit(category, r) for r in rows]

    def executions(self, category: str, symbol: str | None = None, *, client_order_id: str | None = None,
                   order_id: str | None = None, start_ms: int | None = None, end_ms: int | None = None,
                   exec_type: str | None = None, max_pages: int = 50) -> list[Execution]:
        """Fills (newest first, as Bybit sends them), all pages; ``execId`` is the dedupe key."""
        rows = self._paged("get_executions", "GET /v5/execution/list", bucket="/v5/execution/list", limit=100,
                           max_pages=max_pages, category=category, symbol=symbol, orderLinkId=client_order_id,
                           orderId=order_id, startTime=start_ms, endTime=end_ms, execType=exec_type)
        return [Execution.from_bybit(category, r) for r in rows]

    # ------------------------------------------------------------------ filters
    def round_qty(self, category: str, symbol: str, qty, price=None, *, check_notional: bool = True) -> Decimal:
        return round_qty(self.instrument(category, symbol), qty, price, check_notional=check_notional)

    def round_price(self, category: str, symbol: str, price, side: str | None = None) -> Decimal:
        return round_price(self.instrument(category, symbol), price, side)

    # ------------------------------------------------------------------ writes
    def place_order(self, category: str, symbol: str, side: str, qty, *, client_order_id: str,
                    order_type: str = "Limit", price=None, time_in_force: str | None = None,
                    reduce_only: bool | None = None, reference_price=None, market_unit: str | None = None,
                    position_idx: int | None = None, instrument: Instrument | None = None, trigger_price=None,
                    trigger_direction: int | None = None, trigger_by: str = "LastPrice") -> OrderAck:
        """Create one order, idempotently keyed by ``client_order_id`` (sent as ``orderLinkId``).

        The quantity is floored to the step and the price rounded to the tick (Buy down, Sell up); an order below
        the minimum quantity/notional raises :class:`RejectedError` without any request (market orders check the
        notional against ``reference_price`` when given). Raises :class:`AmbiguousError` when the outcome is
        unknown -- resolve it with :meth:`get_order`; :class:`DuplicateOrderError` means the order already exists.
        Only :class:`TransientError` (not accepted) is retried, with the same ``orderLinkId``.

        ``trigger_price`` (linear only) makes it a conditional order (``Untriggered`` until ``trigger_by`` reaches
        the trigger). Stop semantics: the trigger is rounded to the tick like a price (Sell up, Buy down: never
        looser than asked) and ``trigger_direction`` defaults to 2 (falls to it) for a Sell, 1 (rises to it) for a
        Buy. Bybit refuses a trigger already crossed (110092/110093, :class:`RejectedError`)."""
        if not isinstance(client_order_id, str) or not CLIENT_ORDER_ID_RE.match(client_order_id):
            raise RejectedError(f"client_order_id {client_order_id!r} must be 1-36 characters of [A-Za-z0-9_-]")
        side = {"buy": "Buy", "sell": "Sell"}.get(str(side).lower())
        order_type = {"limit": "Limit", "market": "Market"}.get(str(order_type).lower())
        if side is None or order_type is None:
            raise RejectedError("side must be Buy|Sell and order_type Limit|Market")
        if order_type == "Limit" and price is None:
            raise RejectedError("a Limit order needs a price")
        inst = instrument or self.instrument(category, symbol)
        px = round_price(inst, price, side) if order_type == "Limit" else None
        q = round_qty(inst, qty, px if px is not None else reference_price, check_notional=not reduce_only)
        params = dict(category=category, symbol=symbol, side=side, orderType=order_type, qty=_s(q),
                      orderLinkId=client_order_id)
        if px is not None:
            params["price"] = _s(px)
        if time_in_force:
            params["timeInForce"] = time_in_force
        if reduce_only is not None:
            params["reduceOnly"] = bool(reduce_only)
        if position_idx is not None:
            params["positionIdx"] = int(position_idx)
        if category == "spot" and order_type == "Market":
            params["marketUnit"] = market_unit or "baseCoin"  # our qty is always in base units
        elif market_unit:
            params["marketUnit"] = market_unit
        trig = None
        if trigger_price is not None:
            if category != "linear":
                raise RejectedError(f"{category} {symbol}: conditional (trigger) orders are supported on linear only")
            direction = trigger_direction or (2 if side == "Sell" else 1)
            if direction not in (1, 2):
                raise RejectedError(f"trigger_direction must be 1 (rises to) or 2 (falls to), got {direction!r}")
            trig = round_price(inst, trigger_price, side)
            params.update(triggerPrice=_s(trig), triggerDirection=direction, triggerBy=trigger_by)
        result = self._call("place_order", "POST /v5/order/create", is_write=True, bucket=f"order:{category}",
                            client_order_id=client_order_id, **params)
        return OrderAck(order_id=str(result.get("orderId", "")),
                        client_order_id=result.get("orderLinkId") or client_order_id, qty=q, price=px,
                        trigger_price=trig)

    def cancel_order(self, category: str, symbol: str, *, client_order_id: str | None = None,
                     order_id: str | None = None) -> dict:
        """Cancel by orderId (wins) or orderLinkId. :class:`OrderNotActiveError`: already finished -> query it."""
        if not client_order_id and not order_id:
            raise ValueError("cancel_order needs client_order_id or order_id")
        return self._call("cancel_order", "POST /v5/order/cancel", is_write=True, bucket=f"order:{category}",
                          client_order_id=client_order_id, category=category, symbol=symbol, orderId=order_id,
                          orderLinkId=None if order_id else client_order_id)


__all__ = [
    "AmbiguousError", "BybitClient", "CoinBalance", "ExchangeError", "Execution", "Instrument", "Order",
    "OrderAck", "OrderBook", "Position", "RateLimiter", "TokenBucket", "WalletBalance", "round_price",
    "round_qty",
]
