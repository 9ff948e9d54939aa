"""A local fake Bybit V5 REST server that the *unmodified* pybit client can talk to.

Start it as a context manager and point pybit at it (``/work/shared/spec/bybit-v5-notes.md`` A.1)::

    with FakeBybit(start="2024-01-01", end="2024-03-01") as fake:
        s = pybit.unified_trading.HTTP()
        s.endpoint = fake.url                      # "http://127.0.0.1:<port>"
        s.get_kline(category="linear", symbol="BTCUSDT", interval="60", start=..., end=..., limit=1000)

Market-data endpoints served (GET, public, no signature), with Bybit's envelope
``{retCode, retMsg, result, retExtInfo, time}``, numbers as JSON strings and the ``X-Bapi-Limit*`` headers:

=====================================  ===================================================================
``/v5/market/time``                    ``{timeSecond, timeNano}``
``/v5/market/kline``                   spot|linear; rows ``[start, open, high, low, close, volume, turnover]``
``/v5/market/mark-price-kline``        linear; rows ``[start, open, high, low, close]``
``/v5/market/index-price-kline``       linear; rows ``[start, open, high, low, close]``
``/v5/market/funding/history``         linear; ``{symbol, fundingRate, fundingRateTimestamp}``
``/v5/market/instruments-info``        spot|linear items with the documented filters and ``fundingInterval``
=====================================  ===================================================================

Semantics (A.4 of the notes): kline lists are **newest first**, filtered to ``start <= startTime <= end``
(both optional, ms, inclusive); with more rows than ``limit`` in range the newest ``limit`` are returned.
``limit`` defaults to 200 and is capped at 1000 (kline kinds) or 200 (funding). Funding history: ``startTime``
without ``endTime`` is an error (10001), ``endTime`` alone returns the ``limit`` records up to it. Unknown
symbols get 10001 "Not supported symbols" (kline, funding) or an empty list (instruments-info).

Data are deterministic in-memory series generated per (category, symbol, interval, kind) from a fixed seed on
``[start, end)`` (prices rounded to cents, so string round-trips are exact); tests read the source series with
:meth:`FakeBybit.klines` / :meth:`FakeBybit.funding` and may replace them with :meth:`set_klines` /
:meth:`set_funding`. Funding settles every 8 h (00/08/16 UTC) unless :meth:`change_funding_interval` moves a
symbol to another interval from a timestamp on.

Fault injection (all thread-safe, cleared by :meth:`clear_faults`):

* :meth:`drop_after` -- after ``n`` more answered requests, close the connection without an answer (or
  mid-body with ``mode="truncate"``) for ``count`` requests (``None``: until cleared);
* :meth:`rate_limit` -- answer the next ``k`` requests with retCode 10006 and the rate-limit headers;
* :attr:`per_second_limit` -- a rolling per-endpoint limit that answers 10006 when exceeded.

Every request is logged in :attr:`requests` (path, params, outcome). Extension point for the live adapter:
subclass and add ``("POST", "/v5/order/create"): handler`` entries to :attr:`routes` in ``__init__``; a handler
takes ``(params: dict, body: bytes, headers)`` and returns ``(retCode, retMsg, result)``.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd

KLINE_INTERVALS = {"1": 1, "3": 3, "5": 5, "15": 15, "30": 30, "60": 60, "120": 120, "240": 240, "360": 360,
                   "720": 720, "D": 1440}
KLINE_LIMIT_MAX = 1000
FUNDING_LIMIT_MAX = 200
DEFAULT_LIMIT = 200
MS_H = 3_600_000
BASE_PRICE = {"BTC": 40_000.0, "ETH": 2_200.0, "SOL": 100.0}


class BybitFault(Exception):
    """Raised by a route handler to answer a business error: ``raise BybitFault(10001, "params error")``."""

    def __init__(self, code: int, msg: str):
        super().__init__(msg)
        self.code, self.msg = code, msg


@dataclass
class RequestRecord:
    method: str
    path: str
    params: dict
    outcome: str  # "ok" | "error:<retCode>" | "rate_limited" | "dropped" | "truncated" | "not_found"
    at: float = field(default_factory=time.time)


def _seed(*parts) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def _ms(ts) -> int:
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value // 1_000_000)


def _fmt(x: float, nd: int) -> str:
    return f"{x:.{nd}f}"


class FakeBybit:
    """The fake exchange: state, routes and the threaded HTTP server (see the module docstring)."""

    def __init__(self, *, start="2024-01-01", end="2024-02-01", symbols=("BTCUSDT", "ETHUSDT"),
                 funding_hours: int = 8, per_second_limit: int | None = None):
        self.data_start = _ms(start)
        self.data_end = _ms(end)
        self.symbols = tuple(symbols)
        self.funding_hours = funding_hours
        self.per_second_limit = per_second_limit
        self.requests: list[RequestRecord] = []
        self._lock = threading.RLock()
        self._klines: dict[tuple, pd.DataFrame] = {}
        self._funding: dict[str, pd.Series] = {}
        self._funding_interval_min: dict[str, int] = {}
        self._drop_after: int | None = None
        self._drop_count: int | None = 0
        self._drop_mode = "close"
        self._rate_limited_left = 0
        self._rate_reset_ms = 50
        self._omit_reset_header = False
        self._window: dict[str, deque] = defaultdict(deque)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.routes = {
            ("GET", "/v5/market/time"): self._r_time,
            ("GET", "/v5/market/kline"): lambda p, b, h: self._r_kline(p, "kline"),
            ("GET", "/v5/market/mark-price-kline"): lambda p, b, h: self._r_kline(p, "mark"),
            ("GET", "/v5/market/index-price-kline"): lambda p, b, h: self._r_kline(p, "index"),
            ("GET", "/v5/market/funding/history"): self._r_funding,
            ("GET", "/v5/market/instruments-info"): self._r_instruments,
        }

    # ------------------------------------------------------------------ lifecycle
    handler_class = None  # set below the handler's definition; subclasses may override it
    thread_name = "fake-bybit"

    def start(self) -> "FakeBybit":
        fake = self

        class Handler(self.handler_class):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeBybit":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ request log
    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def count(self, path: str | None = None, outcome: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if (path is None or r.path == path)
                       and (outcome is None or r.outcome == outcome))

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------------ faults
    def drop_after(self, n: int, *, count: int | None = None, mode: str = "close") -> None:
        """After ``n`` more requests are answered, drop the next ``count`` (None: all until cleared)."""
        assert mode in ("close", "truncate")
        with self._lock:
            self._drop_after, self._drop_count, self._drop_mode = n, count, mode

    def rate_limit(self, k: int, *, reset_ms: int = 50, omit_reset_header: bool = False) -> None:
        """Answer the next ``k`` requests with retCode 10006; the reset timestamp is now + ``reset_ms``."""
        with self._lock:
            self._rate_limited_left, self._rate_reset_ms, self._omit_reset_header = k, reset_ms, omit_reset_header

    def clear_faults(self) -> None:
        with self._lock:
            self._drop_after, self._drop_count, self._rate_limited_left = None, 0, 0

    # ------------------------------------------------------------------ data
    def _key(self, category, symbol, interval, kind):
        return (category, symbol, str(interval), kind)

    def klines(self, category: str, symbol: str, interval: str = "60", kind: str = "kline") -> pd.DataFrame:
        """The source series (index: UTC bar open times; open, high, low, close[, volume, turnover])."""
        key = self._key(category, symbol, interval, kind)
        with self._lock:
            if key not in self._klines:
                self._klines[key] = self._generate(category, symbol, str(interval), kind)
            return self._klines[key]

    def set_klines(self, category, symbol, interval, frame: pd.DataFrame, kind: str = "kline") -> None:
        with self._lock:
            self._klines[self._key(category, symbol, interval, kind)] = frame

    def funding(self, symbol: str) -> pd.Series:
        """The source funding settlements (index: UTC settlement times; values: rates)."""
        with self._lock:
            if symbol not in self._funding:
                self._funding[symbol] = self._generate_funding(symbol, self.data_start, self.data_end,
                                                               self.funding_hours)
            return self._funding[symbol]

    def set_funding(self, symbol: str, rates: pd.Series) -> None:
        with self._lock:
            self._funding[symbol] = rates

    def change_funding_interval(self, symbol: str, at, hours: int = 4) -> None:
        """From ``at`` on, ``symbol`` settles every ``hours`` (instruments-info reports the new interval)."""
        at_ms = _ms(at)
        with self._lock:
            old = self.funding(symbol)
            before = old[old.index < pd.Timestamp(at_ms, unit="ms", tz="UTC")]
            after = self._generate_funding(symbol, at_ms, self.data_end, hours, salt="after")
            self._funding[symbol] = pd.concat([before, after])
            self._funding_interval_min[symbol] = hours * 60

    def _generate(self, category, symbol, interval, kind) -> pd.DataFrame:
        if interval not in KLINE_INTERVALS:
            raise BybitFault(10001, "Invalid period!")
        step = KLINE_INTERVALS[interval] * 60_000
        first = -(-self.data_start // step) * step
        ts = np.arange(first, self.data_end, step, dtype=np.int64)
        n = len(ts)
        base = BASE_PRICE.get(symbol.removesuffix("USDT"), 50.0)
        # One common spot path per (symbol, interval); linear, mark and index are derived from it.
        rng = np.random.default_rng(_seed("path", symbol, interval))
        rets = rng.normal(0.0, 0.004 * np.sqrt(KLINE_INTERVALS[interval] / 60), n)
        close = base * np.exp(np.cumsum(rets))
        open_ = np.r_[base, close[:-1]]
        wig = np.abs(rng.normal(0, 0.002, (2, n)))
        vol = rng.lognormal(3.0, 0.5, n)
        rng2 = np.random.default_rng(_seed(category, kind, symbol, interval))
        factor = {"kline": 1.0 if category == "spot" else 1.0005, "mark": 1.0004, "index": 1.0}[kind]
        factor = factor * (1 + rng2.normal(0, 0.0002, n)) if kind != "kline" or category != "spot" else factor
        o = np.round(open_ * factor, 2)
        c = np.round(close * factor, 2)
        h = np.round(np.maximum(o, c) * (1 + wig[0]), 2)
        lo = np.round(np.minimum(o, c) * (1 - wig[1]), 2)
        idx = pd.DatetimeIndex(ts * 1_000_000, tz="UTC")
        cols = {"open": o, "high": h, "low": lo, "close": c}
        if kind == "kline":
            v = np.round(vol * (3 if category == "linear" else 1), 3)
            cols["volume"] = v
            cols["turnover"] = np.round(v * c, 4)
        return pd.DataFrame(cols, index=idx)

    def _generate_funding(self, symbol, start_ms, end_ms, hours, salt="") -> pd.Series:
        step = hours * MS_H
        first = -(-start_ms // step) * step
        ts = np.arange(first, end_ms, step, dtype=np.int64)
        rng = np.random.default_rng(_seed("funding", symbol, hours, salt))
        rates = np.round(rng.normal(0.0001, 0.00012, len(ts)), 8)
        return pd.Series(rates, index=pd.DatetimeIndex(ts * 1_000_000, tz="UTC"), name="funding_rate")

    # ------------------------------------------------------------------ routes
    def _require(self, params, *names):
        for n in names:
            if not params.get(n):
                raise BybitFault(10001, f"params error: {n} is required")

    def _check_symbol(self, symbol):
        if symbol not in self.symbols:
            raise BybitFault(10001, "Not supported symbols")

    @staticmethod
    def _limit(params, cap):
        try:
            lim = int(params.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise BybitFault(10001, "params error: limit") from None
        if lim < 1:
            raise BybitFault(10001, "params error: limit")
        return min(lim, cap)

    def _r_time(self, params, body, headers):
        ns = time.time_ns()
        return 0, "OK", {"timeSecond": str(ns // 1_000_000_000), "timeNano": str(ns)}

    def _r_kline(self, params, kind):
        self._require(params, "symbol", "interval")
        category = params.get("category", "linear")
        if category not in (("spot", "linear") if kind == "kline" else ("linear",)):
            raise BybitFault(10001, "Illegal category")
        symbol, interval = params["symbol"], params["interval"]
        self._check_symbol(symbol)
        if interval not in KLINE_INTERVALS:
            raise BybitFault(10001, "Invalid period!")
        limit = self._limit(params, KLINE_LIMIT_MAX)
        df = self.klines(category, symbol, interval, kind)
        ts = df.index.asi8 // 1_000_000
        lo = int(params["start"]) if params.get("start") else None
        hi = int(params["end"]) if params.get("end") else None
        mask = np.ones(len(ts), dtype=bool)
        if lo is not None:
            mask &= ts >= lo
        if hi is not None:
            mask &= ts <= hi
        sel = np.flatnonzero(mask)[-limit:][::-1]  # newest `limit` in range, newest first
        cols = ["open", "high", "low", "close"] + (["volume", "turnover"] if kind == "kline" else [])
        vals = df[cols].to_numpy()
        nd = [2, 2, 2, 2, 3, 4]
        rows = [[str(int(ts[i]))] + [_fmt(vals[i, j], nd[j]) for j in range(len(cols))] for i in sel]
        return 0, "OK", {"symbol": symbol, "category": category, "list": rows}

    def _r_funding(self, params, body, headers):
        self._require(params, "category", "symbol")
        if params["category"] not in ("linear", "inverse"):
            raise BybitFault(10001, "Illegal category")
        self._check_symbol(params["symbol"])
        if params.get("startTime") and not params.get("endTime"):
            raise BybitFault(10001, "params error: startTime without endTime")
        limit = self._limit(params, FUNDING_LIMIT_MAX)
        s = self.funding(params["symbol"])
        ts = s.index.asi8 // 1_000_000
        hi = int(params["endTime"]) if params.get("endTime") else int(time.time() * 1000)
        mask = ts <= hi
        if params.get("startTime"):
            mask &= ts >= int(params["startTime"])
        sel = np.flatnonzero(mask)[-limit:][::-1]
        vals = s.to_numpy()
        rows = [{"symbol": params["symbol"], "fundingRate": _fmt(vals[i], 8), "fundingRateTimestamp": str(int(ts[i]))}
                for i in sel]
        return 0, "OK", {"category": params["category"], "list": rows}

    def _r_instruments(self, params, body, headers):
        self._require(params, "category")
        category = params["category"]
        if category not in ("spot", "linear"):
            raise BybitFault(10001, "Illegal category")
        wanted = [params["symbol"]] if params.get("symbol") else list(self.symbols)
        items = [self._instrument(category, s) for s in wanted if s in self.symbols]
        return 0, "OK", {"category": category, "list": items, "nextPageCursor": ""}

    def _instrument(self, category, symbol):
        base = symbol.removesuffix("USDT")
        if category == "spot":
            return {"symbol": symbol, "baseCoin": base, "quoteCoin": "USDT", "innovation": "0",
                    "status": "Trading", "marginTrading": "both",
                    "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001",
                                      "minOrderQty": "0.000048", "maxOrderQty": "71.73956243",
                                      "minOrderAmt": "5", "maxOrderAmt": "2000000"},
                    "priceFilter": {"tickSize": "0.01"}}
        return {"symbol": symbol, "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": base,
                "quoteCoin": "USDT", "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "",
                "priceScale": "2",
                "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
                "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
                "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                                  "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000",
                                  "minNotionalValue": "5"},
                "unifiedMarginTrade": True,
                "fundingInterval": self._funding_interval_min.get(symbol, self.funding_hours * 60),
                "settleCoin": "USDT", "copyTrading": "both", "upperFundingRate": "0.00375",
                "lowerFundingRate": "-0.00375"}

    # ------------------------------------------------------------------ dispatch (called by the handler)
    def _admit(self, method, path, params) -> tuple[str, dict]:
        """Decide the fate of one request before routing: 'ok' | 'dropped' | 'truncated' | 'rate_limited'."""
        with self._lock:
            if self._drop_after is not None:
                if self._drop_after > 0:
                    self._drop_after -= 1
                elif self._drop_count is None or self._drop_count > 0:
                    if self._drop_count is not None:
                        self._drop_count -= 1
                    return ("dropped" if self._drop_mode == "close" else "truncated"), {}
            now = int(time.time() * 1000)
            if self._rate_limited_left > 0:
                self._rate_limited_left -= 1
                return "rate_limited", self._limit_headers(0, now + self._rate_reset_ms)
            if self.per_second_limit:
                w = self._window[path]
                while w and w[0] <= now - 1000:
                    w.popleft()
                if len(w) >= self.per_second_limit:
                    return "rate_limited", self._limit_headers(0, w[0] + 1000)
                w.append(now)
                return "ok", self._limit_headers(self.per_second_limit - len(w), now)
            return "ok", self._limit_headers(119, now)

    def _limit_headers(self, remaining, reset_ms):
        h = {"X-Bapi-Limit": str(self.per_second_limit or 120), "X-Bapi-Limit-Status": str(remaining)}
        if not self._omit_reset_header:
            h["X-Bapi-Limit-Reset-Timestamp"] = str(reset_ms)
        return h

    def _log(self, method, path, params, outcome):
        with self._lock:
            self.requests.append(RequestRecord(method, path, dict(params), outcome))


def envelope(code: int, msg: str, result) -> bytes:
    return json.dumps({"retCode": code, "retMsg": msg, "result": result if result is not None else {},
                       "retExtInfo": {}, "time": int(time.time() * 1000)}).encode()


class _Handler(BaseHTTPRequestHandler):
    owner: FakeBybit
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _serve(self, method):
        fake = self.owner
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        route = fake.routes.get((method, parts.path))
        if route is None:
            fake._log(method, parts.path, params, "not_found")
            return self._send(404, {}, b'{"retCode":10017,"retMsg":"Route not found"}')
        fate, headers = fake._admit(method, parts.path, params)
        fake._log(method, parts.path, params, fate)
        if fate == "dropped":
            return self._drop()
        if fate == "rate_limited":
            return self._send(200, headers, envelope(10006, "Too many visits!", {}))
        try:
            code, msg, result = route(params, body, self.headers)
        except BybitFault as e:
            with fake._lock:
                fake.requests[-1].outcome = f"error:{e.code}"
            return self._send(200, headers, envelope(e.code, e.msg, {}))
        payload = envelope(code, msg, result)
        if fate == "truncated":
            return self._send(200, headers, payload, truncate=True)
        return self._send(200, headers, payload)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def _send(self, status, headers, payload: bytes, truncate=False):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if truncate:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            return self._drop()
        self.wfile.write(payload)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


FakeBybit.handler_class = _Handler
