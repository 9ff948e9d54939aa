"""WebSocket streams through pybit's ``WebSocket``, with REST gap-fill (notes A.7, A.9, C; fault rows D11-D13).

* :class:`MarketStream` -- public ``kline.{interval}.{symbol}`` and ``tickers.{symbol}`` of one category.
  Confirmed bars are kept per (symbol, interval). A bar arriving after a gap, every reconnect and the staleness
  watchdog (no confirmed bar for ``stale_after_s``, default twice the interval) backfill the missing bars from
  REST ``/v5/market/kline`` (newest first, paged backwards).
* :class:`PrivateStream` -- ``order``, ``execution``, ``position``, ``wallet``. Executions become fills through
  the :class:`~live.orders.OrderManager` (deduplicated on ``execId``); order updates are applied without
  queries and never move a state backwards; an order reported more filled than its recorded fills gets its
  executions from REST after ``fill_wait_s``. After every (re)connect, once the resubscriptions are
  acknowledged, :meth:`PrivateStream.gap_fill` catches up by REST: executions since the last recorded one,
  :meth:`~live.orders.OrderManager.resolve`, positions and the wallet -- or ``on_reconnect`` runs instead
  (``live.runner`` runs the full reconciliation there).

pybit reconnects and resubscribes after a close, a TCP drop or a ping timeout but replays nothing, and a socket
whose callback raises dies for good (A.9 #2-3). So each pushed item is handled under a guard that logs and
skips a poison item, and :class:`_Socket` (pybit's ``WebSocket`` subclassed) guards pybit's own message
handling too -- except a failed private auth, which stays fatal. It connects to ``url`` when given (a local
fake) and reports every (re)connect.

Threads: callbacks run on pybit's socket threads. :class:`PrivateStream` does all its database work under
:attr:`PrivateStream.lock`; hold it around your own ``OrderManager`` calls too, because a pushed update can
arrive before the HTTP ack of the same order.
"""
from __future__ import annotations

import abc
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import websocket
from pybit.unified_trading import WebSocket

from live.bybit.client import BybitClient, Execution, Order, Position, WalletBalance
from live.bybit.errors import AuthError, TransientError, register_secret

if TYPE_CHECKING:  # live.orders imports live.bybit
    from live.orders import OrderManager, ResolveReport

log = logging.getLogger("live.bybit.streams")

INTERVAL_S = {"1": 60, "3": 180, "5": 300, "15": 900, "30": 1800, "60": 3600, "120": 7200, "240": 14_400,
              "360": 21_600, "720": 43_200, "D": 86_400, "W": 604_800, "M": 2_678_400}
BAR_COLUMNS = ("open", "high", "low", "close", "volume", "turnover")
WEEK_MS = 7 * 86_400_000  # the widest /v5/execution/list window


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamConfig:
    """Socket and recovery settings of both streams (seconds unless the name says ``_ms``)."""

    testnet: bool = False
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 10.0
    retries: int = 10                   # pybit connection attempts per (re)connect; 0 = forever
    auth_expire_s: int = 10             # private auth ``expires`` = now + this (A.9 #5)
    ack_timeout_s: float = 5.0          # wait for auth / subscription acks
    fill_wait_s: float = 2.0            # reported fills still unmatched after this -> REST executions
    stale_after_s: float | None = None  # no confirmed bar for this long -> backfill; None = 2x the interval
    watchdog_period_s: float = 1.0
    backfill_limit: int = 1000
    lookback_ms: int = 300_000          # executions gap-fill re-reads this much before its watermark


@dataclass(frozen=True, slots=True)
class Bar:
    start_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    turnover: float
    confirm: bool


def parse_kline(item: dict) -> Bar:
    """One pushed ``kline`` item -> :class:`Bar`; ValueError if a price is missing, not a number or not > 0."""
    prices = [float(item[k]) for k in ("open", "high", "low", "close")]
    if not all(math.isfinite(p) and p > 0 for p in prices):
        raise ValueError(f"kline prices must be finite and > 0, got {prices}")
    return Bar(int(item["start"]), *prices, float(item.get("volume") or 0), float(item.get("turnover") or 0),
               item.get("confirm") is True)


class _Socket(WebSocket):
    """pybit's ``WebSocket`` with a URL override, a (re)connect hook, ack counting and a guarded handler."""

    def __init__(self, channel_type: str, *, url: str | None, on_connect: Callable[[], None],
                 on_poison: Callable[[object, Exception], None], **kw):
        self._url, self._on_connect, self._on_poison = url, on_connect, on_poison
        self.acks = 0
        self.auth_error: dict | None = None
        super().__init__(channel_type, **kw)

    def _connect(self, url):
        self.acks = 0
        super()._connect(self._url or url)
        self._on_connect()

    def _on_message(self, message):
        try:
            super()._on_message(message)
        except Exception as exc:
            if self.auth_error is not None:
                raise  # pybit tears the socket down: never run a private feed unauthenticated
            self._on_poison(message, exc)

    def _process_auth_message(self, message):
        if message.get("success") is False or message.get("type") == "error":
            self.auth_error = message
        super()._process_auth_message(message)

    def _process_subscription_message(self, message):
        super()._process_subscription_message(message)
        self.acks += 1

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= end or self.auth_error is not None:
                return False
            time.sleep(0.01)
        return True

    def wait_acks(self, timeout: float) -> bool:
        return self._wait(lambda: self.acks >= len(self.subscriptions), timeout)

    def wait_auth(self, timeout: float) -> bool:
        return self._wait(lambda: self.auth, timeout)


class _Stream(abc.ABC):
    """What both streams share: the socket, the guards, the (re)connect hook."""

    channel_type = ""

    def __init__(self, config: StreamConfig, url: str | None):
        self.config, self.url = config, url
        self.connects = 0  # successful connects, the first one included
        self.skipped = 0   # poison messages/items logged and skipped
        self._ws: _Socket | None = None
        self._closed = threading.Event()

    def _open(self, **kw) -> None:
        c = self.config
        try:
            self._ws = _Socket(self.channel_type, url=self.url, on_connect=self._connected, on_poison=self._poison,
                               testnet=c.testnet, ping_interval=c.ping_interval_s, ping_timeout=c.ping_timeout_s,
                               retries=c.retries, **kw)
        except websocket.WebSocketException as exc:
            raise TransientError(f"WebSocket {self.channel_type}: {exc}", operation="ws connect") from exc

    def _connected(self) -> None:
        self.connects += 1
        if self._ws is None or self._closed.is_set():
            return  # the first connect runs inside the constructor: start() catches up itself
        if not self._ws.wait_acks(self.config.ack_timeout_s):
            log.warning("%s stream: resubscriptions not acknowledged in time", self.channel_type)
        for attempt in (1, 2, 3):
            try:
                self._recover()
                return
            except Exception:
                log.exception("%s stream: catch-up after reconnect failed (attempt %d/3)", self.channel_type,
                              attempt)
                if attempt < 3:
                    time.sleep(0.5 * attempt)

    @abc.abstractmethod
    def _recover(self) -> None:
        """Catch up on what the socket missed while it was down (called after every reconnect)."""

    def _guarded(self, handle: Callable[[str, dict], None]) -> Callable[[dict], None]:
        """A pybit callback running ``handle(topic, item)`` per item; a failing item is logged and skipped."""
        def callback(message):
            try:
                topic, data = message["topic"], message["data"]
            except Exception as exc:
                self._poison(message, exc)
                return
            for item in data if isinstance(data, list) else [data]:
                try:
                    handle(topic, item)
                except Exception as exc:
                    self._poison(item, exc)

        return callback

    def _poison(self, payload, exc: Exception) -> None:
        self.skipped += 1
        log.error("%s stream: skipped a message (%s: %s): %.300r", self.channel_type, type(exc).__name__, exc,
                  payload)

    def is_connected(self) -> bool:
        return self._ws is not None and self._ws.is_connected()

    def close(self) -> None:
        self._closed.set()
        if self._ws is not None:
            self._ws.exit()


class MarketStream(_Stream):
    """Public klines and tickers of one category, with REST backfill of missed bars (see the module docstring)."""

    def __init__(self, client: BybitClient, *, category: str = "linear", url: str | None = None,
                 config: StreamConfig = StreamConfig(), clock: Callable[[], float] = time.monotonic):
        super().__init__(config, url)
        self.channel_type = category
        self.client, self.category, self.clock = client, category, clock
        self.backfills = 0
        self._bars: dict[tuple[str, str], dict[int, Bar]] = {}
        self._seen: dict[tuple[str, str], float] = {}  # clock() of the last confirmed bar or backfill
        self._gaps: set[tuple[str, str]] = set()  # a hole seen and not yet backfilled
        self._tickers: dict[str, dict] = {}
        self._lock = threading.RLock()

    def start(self) -> "MarketStream":
        self._open()
        threading.Thread(target=self._watch, name=f"bybit-{self.category}-watchdog", daemon=True).start()
        return self

    def subscribe_klines(self, symbol: str, interval: str = "60") -> None:
        interval = str(interval)
        if interval not in INTERVAL_S:
            raise ValueError(f"interval must be one of {sorted(INTERVAL_S)}, got {interval!r}")
        with self._lock:
            self._bars.setdefault((symbol, interval), {})
            self._seen[(symbol, interval)] = self.clock()
        self._ws.kline_stream(interval, symbol, self._guarded(self._on_kline))

    def subscribe_tickers(self, symbol: str) -> None:
        self._ws.ticker_stream(symbol, self._guarded(self._on_ticker))

    # ------------------------------------------------------------------ reads
    def bars(self, symbol: str, interval: str = "60") -> pd.DataFrame:
        """The confirmed bars, oldest first, indexed by UTC bar open (the columns of ``BybitClient.klines``)."""
        with self._lock:
            rows = sorted(self._bars.get((symbol, str(interval)), {}).values(), key=lambda b: b.start_ms)
        idx = pd.to_datetime([b.start_ms for b in rows], unit="ms", utc=True)
        return pd.DataFrame({c: [getattr(b, c) for b in rows] for c in BAR_COLUMNS}, index=idx, dtype=float)

    def ticker(self, symbol: str) -> dict | None:
        """The latest ticker snapshot (pybit merges the deltas), raw Bybit fields."""
        with self._lock:
            return self._tickers.get(symbol)

    # ------------------------------------------------------------------ handlers
    def _on_kline(self, topic: str, item: dict) -> None:
        bar = parse_kline(item)
        if not bar.confirm:
            return
        _, interval, symbol = topic.split(".", 2)
        key = (symbol, interval)
        with self._lock:
            bars = self._bars[key]
            if bars and bar.start_ms > max(bars) + INTERVAL_S[interval] * 1000:
                self._gaps.add(key)
            bars[bar.start_ms] = bar
            self._seen[key] = self.clock()
            if key in self._gaps:
                log.warning("%s %s: bars missing before %d, backfilling", symbol, interval, bar.start_ms)
                self.backfill(symbol, interval)

    def _on_ticker(self, topic: str, item: dict) -> None:
        if not isinstance(item, dict) or not item.get("symbol"):
            raise ValueError("ticker without a symbol")
        with self._lock:
            self._tickers[item["symbol"]] = dict(item)

    # ------------------------------------------------------------------ recovery
    def backfill(self, symbol: str, interval: str) -> int:
        """Store the closed REST bars from the first missing one on (the latest page if none is stored); returns
        how many were new. Bybit answers newest first, so a longer gap is paged backwards with ``end``."""
        key, step, limit = (symbol, interval), INTERVAL_S[interval] * 1000, self.config.backfill_limit
        with self._lock:
            bars = self._bars.setdefault(key, {})
            ts = sorted(bars)
            start = next((a + step for a, b in zip(ts, ts[1:]) if b - a > step), ts[-1] + step) if ts else None
            end, new, now_ms = None, 0, int(time.time() * 1000)
            while True:
                df = self.client.klines(self.category, symbol, interval, start=start, end=end, limit=limit)
                starts = df.index.as_unit("ms").asi8
                for t, row in zip(starts, df.itertuples(index=False)):
                    if t + step <= now_ms and int(t) not in bars:  # the newest row may be the open candle
                        bars[int(t)] = Bar(int(t), *(float(getattr(row, c)) for c in BAR_COLUMNS), True)
                        new += 1
                if start is None or len(df) < limit or starts[0] <= start:
                    break
                end = int(starts[0]) - 1
            self._seen[key] = self.clock()
            self._gaps.discard(key)
            self.backfills += 1
        log.info("%s %s: backfilled %d bars from REST", symbol, interval, new)
        return new

    def check_staleness(self) -> list[tuple[str, str]]:
        """Backfill each (symbol, interval) without a confirmed bar for ``stale_after_s``; returns those."""
        now = self.clock()
        with self._lock:
            seen = dict(self._seen)
        stale = [key for key, t in seen.items() if now - t > (self.config.stale_after_s or 2 * INTERVAL_S[key[1]])]
        for symbol, interval in stale:
            log.warning("%s %s: no confirmed bar for %.1fs, backfilling from REST", symbol, interval,
                        now - seen[(symbol, interval)])
            self.backfill(symbol, interval)
        return stale

    def _watch(self) -> None:
        while not self._closed.wait(self.config.watchdog_period_s):
            try:
                self.check_staleness()
            except Exception:
                log.exception("%s staleness watchdog: backfill failed, retrying next period", self.category)

    def _recover(self) -> None:
        with self._lock:
            keys = list(self._bars)
        for symbol, interval in keys:
            self.backfill(symbol, interval)


@dataclass(frozen=True)
class GapFill:
    new_fills: int
    resolve: ResolveReport


class PrivateStream(_Stream):
    """Private order/execution/position/wallet streams feeding an ``OrderManager`` (see the module docstring).

    :attr:`positions` ((category, symbol) -> :class:`Position`) and :attr:`wallet` hold the latest pushed or
    REST state."""

    channel_type = "private"

    def __init__(self, orders: OrderManager, *, api_key: str, api_secret: str, categories=("linear",),
                 url: str | None = None, config: StreamConfig = StreamConfig(), lock: threading.RLock | None = None,
                 on_reconnect: Callable[[], object] | None = None):
        super().__init__(config, url)
        register_secret(api_secret)
        self._credentials = (api_key, api_secret)
        self.orders, self.client, self.categories = orders, orders.client, tuple(categories)
        self.lock = lock or threading.RLock()
        self.on_reconnect = on_reconnect  # replaces the gap-fill after a reconnect (not after start)
        self.gap_fills = 0
        self.positions: dict[tuple[str, str], Position] = {}
        self.wallet: WalletBalance | None = None
        self._watermark: int | None = None  # execTime (ms) up to which REST executions were imported
        self._pending: dict[str, Order] = {}  # client_order_id -> latest update reporting unrecorded fills

    def __getstate__(self):
        raise TypeError("PrivateStream holds credentials and cannot be pickled")

    @property
    def auth_failed(self) -> bool:
        """The exchange refused an authentication (at start or after a reconnect): the feed is dead for good."""
        return self._ws is not None and self._ws.auth_error is not None

    def start(self) -> "PrivateStream":
        """Connect, authenticate (:class:`AuthError` if refused, :class:`TransientError` if unanswered),
        subscribe, then :meth:`gap_fill` once."""
        key, secret = self._credentials
        with self.lock:
            self._watermark = self.orders.last_exec_time_ms()
        self._open(api_key=key, api_secret=secret, private_auth_expire=self.config.auth_expire_s)
        if not self._ws.wait_auth(self.config.ack_timeout_s):
            self.close()
            if self._ws.auth_error is None:
                raise TransientError("private WebSocket: no answer to auth", operation="ws auth")
            raise AuthError(f"private WebSocket authentication refused: {self._ws.auth_error}", operation="ws auth")
        for subscribe, handle in ((self._ws.order_stream, self._on_order),
                                  (self._ws.execution_stream, self._on_execution),
                                  (self._ws.position_stream, self._on_position),
                                  (self._ws.wallet_stream, self._on_wallet)):
            subscribe(self._guarded(handle))
        self._ws.wait_acks(self.config.ack_timeout_s)
        self.gap_fill()
        return self

    # ------------------------------------------------------------------ handlers
    def _on_order(self, topic: str, item: dict) -> None:
        ex = Order.from_bybit(item.get("category", ""), item)
        with self.lock:
            order = self.orders.apply_update(ex)
        if order is not None and ex.cum_exec_qty > order.filled_qty:
            self._expect_fills(ex)

    def _on_execution(self, topic: str, item: dict) -> None:
        e = Execution.from_bybit(item.get("category", ""), item)
        with self.lock:
            self.orders.record_executions([e])

    def _on_position(self, topic: str, item: dict) -> None:
        p = Position.from_bybit(item.get("category", "linear"), item)
        with self.lock:
            old = self.positions.get((p.category, p.symbol))
            if old is None or p.updated_ms >= old.updated_ms:
                self.positions[(p.category, p.symbol)] = p

    def _on_wallet(self, topic: str, item: dict) -> None:
        wallet = WalletBalance.from_bybit(item)
        with self.lock:
            self.wallet = wallet

    def _expect_fills(self, ex: Order) -> None:
        """The exchange reports more filled than we recorded: fetch the executions unless they arrive in time."""
        with self.lock:
            first = ex.client_order_id not in self._pending
            self._pending[ex.client_order_id] = ex
        if first:
            timer = threading.Timer(self.config.fill_wait_s, self._check_fills, (ex.client_order_id,))
            timer.daemon = True
            timer.start()

    def _check_fills(self, cid: str) -> None:
        try:
            with self.lock:
                ex = self._pending.pop(cid)
                order = self.orders.repo.get_order(cid)
                if self._closed.is_set() or order.filled_qty >= ex.cum_exec_qty:
                    return
                log.warning("%s: %s filled on the exchange, %s recorded after %.1fs: fetching executions", cid,
                            ex.cum_exec_qty, order.filled_qty, self.config.fill_wait_s)
                self.orders.record_executions(self.client.executions(order.category, order.symbol,
                                                                     client_order_id=cid))
                self.orders.apply_update(ex)
        except Exception:
            log.exception("%s: fetching missing executions failed (the next gap-fill retries)", cid)

    # ------------------------------------------------------------------ recovery
    def gap_fill(self) -> GapFill:
        """REST catch-up: executions since the watermark (less ``lookback_ms``), every non-final order
        resolved, positions and wallet refreshed. Raises :class:`ExchangeError` if a query fails."""
        with self.lock:
            since = self._watermark
            execs = [e for cat in self.categories for e in self._executions_since(cat, since)]
            new = self.orders.record_executions(execs)
            report = self.orders.resolve()
            self._watermark = max([since or 0] + [e.exec_time_ms for e in execs]) or None
            if "linear" in self.categories:
                rest = {("linear", p.symbol): p for p in self.client.positions("linear")}
                self.positions = {k: v for k, v in self.positions.items() if k[0] != "linear"} | rest
            self.wallet = self.client.wallet_balance()
            self.gap_fills += 1
        log.info("gap-fill: %d new fills, %d orders checked, %d changed", new, report.checked, len(report.changed))
        return GapFill(new, report)

    def _executions_since(self, category: str, since: int | None) -> list[Execution]:
        if since is None:
            return self.client.executions(category)  # Bybit's default window: the last 7 days
        start, now, out = max(0, since - self.config.lookback_ms), int(time.time() * 1000), []
        while start + WEEK_MS <= now:  # full windows, then the open-ended last one
            out += self.client.executions(category, start_ms=start, end_ms=start + WEEK_MS - 1)
            start += WEEK_MS
        return out + self.client.executions(category, start_ms=start)

    def _recover(self) -> None:
        if self.on_reconnect is None:
            self.gap_fill()
        else:
            self.on_reconnect()


__all__ = ["Bar", "GapFill", "MarketStream", "PrivateStream", "StreamConfig", "parse_kline"]
