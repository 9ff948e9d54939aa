"""The live loop: once per closed bar, the backtest's simulator decides and the order manager trades the difference.

:meth:`LiveTrader.run_bar`:

1. fetch the window of closed bars from the live start (spot and linear klines, funding history) through the
   client and build a :class:`~eternal_engine.data.market.MarketData` (:class:`MarketWindow`, which keeps what
   it fetched and asks only for new bars);
2. run the very simulator of ``backtest()`` over it and read its decision on the last closed bar
   (:mod:`live.targets`); persist engine states and the breaker carry;
3. unless trading is halted (the ``control`` row): reconcile with the exchange (`live.reconcile`: orders,
   executions, positions, balances; a discrepancy halts trading), cancel orders of earlier bars still
   resting (the simulator's limit orders live one bar), read what each (sleeve, symbol) holds from the recorded
   fills, and submit the difference to the target through :meth:`OrderManager.submit` with deterministic client
   order ids (sleeve, symbol, bar, intent) -- a re-run of the same bar, or a restart, sends nothing twice. A
   (sleeve, symbol) with an order still in flight is not traded on that bar.

Post-only limits for the simulator's limit orders (never more aggressive than the book's best bid/ask);
everything else is an IOC limit at the best opposite price moved by ``max_slippage`` (a market order with a
slippage guard). :meth:`LiveTrader.start` reconciles before the first bar and refuses to trade when
reconciliation fails; every later bar reconciles again before it trades.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd
from sqlalchemy import select

from eternal_engine.config import Config
from eternal_engine.errors import ConfigError, DataError, EternalError
from live.bybit.client import round_qty
from live.bybit.errors import ExchangeError, RejectedError
from live.db.models import TERMINAL_STATES, Fill, Order, OrderState
from live.db.repo import Repository
from live.db.session import session_scope
from live.orders import OrderIntent, OrderManager, TradingHalted
from live.targets import Holding, Planned, decide, guard_price, plan, required_symbols, venue

log = logging.getLogger("live.loop")

META = "live"  # engine_states row holding the live run's start, config hash and last bar
CRASH_ENV = "EE_CRASH_AT"
CRASH_POINTS = ("after_intent", "after_request", "after_fill")
_TERMINAL = [s.value for s in TERMINAL_STATES]


class NotReconciled(EternalError):
    """Start-up reconciliation left a discrepancy: the process refuses to trade."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LiveSettings:
    """How the loop runs. ``start``: first bar the simulator may trade (UTC); fixed once trading began (stored in
    the database). ``warmup_bars``: bars before ``start`` the simulator runs over to warm up its indicators
    (None: TREND's warm-up, `engines.trend.warmup`). ``max_slippage`` and ``sync_tolerance`` are fractions."""

    interval: str = "D"
    start: str | None = None
    warmup_bars: int | None = None
    engines: tuple[str, ...] | None = None
    max_slippage: float = 0.005
    sync_tolerance: float = 0.01
    max_clock_skew_ms: int = 1000  # Bybit refuses a request stamped > 1 s ahead of its clock (notes D7)
    fear_greed: pd.Series | None = None


@dataclass
class BarReport:
    bar: pd.Timestamp
    halted: bool
    planned: list[Planned] = field(default_factory=list)
    submitted: dict[str, str] = field(default_factory=dict)   # client_order_id -> state after submit
    skipped: dict[str, str] = field(default_factory=dict)     # "sleeve symbol" -> why


def _utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


# ============================================================================================ market window
class MarketWindow:
    """Closed bars of the instruments from ``warmup_bars`` bars before ``start`` to now, fetched through the client
    and kept in memory (the bars before ``start`` warm up the indicators)."""

    def __init__(self, client, symbols, interval: str, start, warmup_bars: int = 0):
        from eternal_engine.data.bybit import INTERVALS, bybit_interval

        self.client, self.symbols = client, tuple(symbols)
        self.interval = bybit_interval(interval)
        self.step_ms = INTERVALS[self.interval] * 60_000
        self.start_ms = -(-int(_utc(start).value // 1_000_000) // self.step_ms) * self.step_ms
        self.fetch_from_ms = self.start_ms - int(warmup_bars) * self.step_ms
        self._bars: dict[str, pd.DataFrame] = {}
        self._funding: dict[str, pd.Series] = {}

    def market(self, now_ms: int):
        """`MarketData` of the closed bars (open time + bar size <= ``now_ms``) all instruments share."""
        from eternal_engine.data.loaders import from_frames

        end = (int(now_ms) // self.step_ms) * self.step_ms - self.step_ms  # open time of the last closed bar
        if end < self.start_ms:
            raise DataError(f"no closed bar since the live start {pd.Timestamp(self.start_ms, unit='ms', tz='UTC')}",
                            fix="wait for the first bar to close, or choose an earlier --start")
        frames = {}
        for sym in self.symbols:
            df = self._klines(sym, end)
            if sym.endswith("-PERP"):
                rates = self._rates(sym, end + self.step_ms - 1)
                bars = (rates.index.asi8 // 1_000_000 // self.step_ms) * self.step_ms
                per_bar = pd.Series(rates.to_numpy(), index=pd.to_datetime(bars, unit="ms", utc=True))
                df = df.assign(funding_rate=per_bar.groupby(level=0).sum().reindex(df.index, fill_value=0.0))
            frames[sym] = df
        common = None
        for df in frames.values():
            common = df.index if common is None else common.intersection(df.index)
        if common is None or not len(common) or common[-1].value // 1_000_000 != end:
            raise DataError(f"the exchange has not published the bar {pd.Timestamp(end, unit='ms', tz='UTC')} for "
                            "every instrument yet", fix="retry in a few seconds")
        return from_frames({s: df.loc[common] for s, df in frames.items()},
                           freq=pd.Timedelta(milliseconds=self.step_ms))

    def _klines(self, sym: str, end_ms: int) -> pd.DataFrame:
        have = self._bars.get(sym)
        first = self._after(have)
        if first <= end_ms:
            category, raw = venue(sym)
            pages = _newest_first_pages(
                lambda hi: self.client.klines(category, raw, self.interval, start=first, end=hi, limit=1000),
                first, end_ms, 1000)
            new = [p[["open", "high", "low", "close", "volume"]] for p in pages]
            frame = pd.concat(([have] if have is not None else []) + new) if new else have
            if frame is not None:
                frame = frame[~frame.index.duplicated(keep="last")].sort_index()
            self._bars[sym] = frame
        frame = self._bars.get(sym)
        if frame is None or not len(frame):
            raise DataError(f"the exchange returned no {sym} bars since the live start", symbol=sym,
                            fix="check the instrument and --start")
        return frame[frame.index <= pd.Timestamp(end_ms, unit="ms", tz="UTC")]

    def _rates(self, sym: str, end_ms: int) -> pd.Series:
        have = self._funding.get(sym)
        first = self._after(have)
        if first <= end_ms:
            pages = _newest_first_pages(
                lambda hi: self.client.funding_history(venue(sym)[1], start=first, end=hi, limit=200),
                first, end_ms, 200)
            parts = ([have] if have is not None else []) + pages
            s = pd.concat(parts) if parts else pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
            self._funding[sym] = s[~s.index.duplicated(keep="last")].sort_index()
        s = self._funding[sym]
        return s[s.index <= pd.Timestamp(end_ms, unit="ms", tz="UTC")]

    def _after(self, have) -> int:
        """First open time (ms) still to fetch: the window's start, or just after the last one kept."""
        return self.fetch_from_ms if have is None or not len(have) else int(have.index[-1].value // 1_000_000) + 1


def _newest_first_pages(fetch, first: int, end_ms: int, limit: int) -> list:
    """Every page of ``fetch(hi)`` (rows from ``first`` to ``hi``, newest first, at most ``limit``) from
    ``end_ms`` back to ``first``; returned oldest first."""
    pages, hi = [], end_ms
    while hi >= first:
        page = fetch(hi)
        if not len(page):
            break
        pages.append(page)
        oldest = int(page.index[0].value // 1_000_000)
        if len(page) < limit or oldest <= first:
            break
        hi = oldest - 1
    return pages[::-1]


# ============================================================================================ the trader
class LiveTrader:
    """One live (or paper) account driven by the simulator; see the module docstring."""

    def __init__(self, repo: Repository, client, config: Config, settings: LiveSettings | None = None, *,
                 manager: OrderManager | None = None, clock=time.time, reconcile=None, mode: str = "paper",
                 alert=None, metrics=None):
        from live.reconcile import reconcile as reconcile_all

        self.repo, self.client, self.config = repo, client, config
        self.settings = settings or LiveSettings()
        self.alert = alert or repo.add_alert  # e.g. `live.alerts.Alerter.alert` (stored, then Telegram)
        self.metrics = metrics  # `live.metrics.LiveMetrics` or None
        self.manager = manager or OrderManager(repo, client, alert=self.alert, metrics=metrics)
        self.clock, self.mode = clock, mode
        self.reconcile = reconcile or reconcile_all
        self.symbols = required_symbols(config, self.settings.engines)
        self.start_at = self._live_start()
        from eternal_engine.engines.trend import warmup

        wb = self.settings.warmup_bars
        self.window = MarketWindow(client, self.symbols, self.settings.interval, self.start_at,
                                   warmup(config.trend) if wb is None else wb)
        self.ready = False

    # ------------------------------------------------------------------ start-up
    def _live_start(self) -> pd.Timestamp:
        meta = self.repo_meta()
        stored = (meta or {}).get("start")
        wanted = self.settings.start
        if stored is not None:
            if wanted is not None and _utc(wanted) != _utc(stored):
                raise ConfigError(f"this database trades from {stored}; the live start cannot change once trading "
                                  f"began (got --start {wanted})")
            return _utc(stored)
        if wanted is None:
            raise ConfigError("no live start: pass --start DATE (the first bar the simulator runs over; stored "
                              "in the database on the first run)")
        return _utc(wanted)

    def repo_meta(self) -> dict | None:
        from live.db.models import EngineState

        with session_scope(self.repo.engine) as s:
            row = s.get(EngineState, META)
            return None if row is None else dict(row.detail or {}, last_bar_ts=row.bar_ts)

    def start(self):
        """Reconcile with the exchange (``live.reconcile``, which resolves every non-final order first) and refuse
        to trade unless it is ``ok``."""
        report = self.reconcile(self.manager)
        if not report.ok:
            first = report.unresolved[0]
            raise NotReconciled(f"reconciliation left {len(report.unresolved)} discrepancies (first: {first.kind} "
                                f"{first.symbol}: {first.action}); refusing to trade (see `eternal-engine "
                                "status` and the alerts)")
        self.ready = True
        return report

    # ------------------------------------------------------------------ one bar
    def run_bar(self) -> BarReport:
        just_started = not self.ready
        if just_started:
            self.start()
        now_ms = int(self.clock() * 1000)
        market = self.window.market(now_ms)
        decision = decide(market, self.config, self.settings.engines, fear_greed=self.settings.fear_greed,
                          trade_from=pd.Timestamp(self.window.start_ms, unit="ms", tz="UTC"))
        bar = pd.Timestamp(decision.bar_ts, unit="ns", tz="UTC")
        self._persist(decision)
        self._observe(decision, bar)
        halted = self.repo.is_halted()
        report = BarReport(bar=bar, halted=halted)
        if halted:
            log.warning("bar %s: trading is halted; no order", bar)
            return report
        skew = self.client.clock_skew_ms()
        if abs(skew) > self.settings.max_clock_skew_ms:  # signed requests would be refused: send none
            self.alert("P1", "CLOCK_SKEW", f"the exchange clock differs from ours by {skew} ms (limit "
                       f"{self.settings.max_clock_skew_ms} ms): no order this bar; fix the host's time sync",
                       {"skew_ms": skew})
            report.skipped["*"] = f"clock skew {skew} ms"
            return report
        if not just_started and not self.reconcile(self.manager).ok:  # every bar, not only at start-up
            report.halted = True  # the reconciliation halted trading and alerted
            log.warning("bar %s: reconciliation found a discrepancy; no order", bar)
            return report
        busy = self._cancel_stale(decision.bar_ts)
        held = self.holdings()
        report.planned = plan(decision, held, sync_tolerance=self.settings.sync_tolerance)
        for p in report.planned:
            key = f"{p.sleeve} {p.symbol}"
            if (p.sleeve, p.symbol) in busy:
                report.skipped[key] = "an order is still in flight"
                continue
            try:
                intent = self._intent(p, decision.bar_ts)
            except RejectedError as exc:  # below the instrument's minimum: nothing to do this bar
                report.skipped[key] = str(exc)
                continue
            try:
                order = self.manager.submit(intent)
            except TradingHalted:
                report.skipped[key] = "halted"
                break
            if OrderState(order.state) not in TERMINAL_STATES and intent.order_type != "postonly":
                order = self.manager.resolve_order(order)
            report.submitted[order.client_order_id] = order.state
        self._protect(decision, report)
        self._store_positions(self.holdings())
        log.info("bar %s: %d planned, %d submitted, %d skipped", bar, len(report.planned), len(report.submitted),
                 len(report.skipped))
        return report

    def _intent(self, p: Planned, bar_ts: int) -> OrderIntent:
        category, raw = venue(p.symbol)
        inst = self.client.instrument(category, raw)
        side = "Buy" if p.qty > 0 else "Sell"
        qty = Decimal(repr(abs(p.qty)))
        base = dict(sleeve=p.sleeve, symbol=raw, side=side, bar_ts=bar_ts, intent=p.intent, category=category)
        if p.limit is not None:
            book = self.client.orderbook(category, raw, limit=1)
            best = (book.bids if side == "Buy" else book.asks)[0][0]
            px = min(Decimal(repr(p.limit)), best) if side == "Buy" else max(Decimal(repr(p.limit)), best)
            round_qty(inst, qty, px)
            return OrderIntent(qty=qty, order_type="postonly", price=px, **base)
        round_qty(inst, qty, p.reference_price)
        book = self.client.orderbook(category, raw, limit=50)
        guard, avg = guard_price(book, side, qty, self.settings.max_slippage)
        if (avg > guard) if side == "Buy" else (avg < guard):
            log.warning("%s %s %s: the visible book averages %s, beyond the guard %s: part may not fill",
                        side, qty, raw, avg, guard)
        return OrderIntent(qty=qty, order_type="ioc", price=guard, reference_price=guard, **base)

    # ------------------------------------------------------------------ exchange-side stops
    def _protect(self, d, report: BarReport) -> None:
        """Keep one reduce-only stop on the exchange under each linear position the simulator protects: at the
        simulator's resting stop, or, for an entry filled on this bar, at its fill price -/+ the entry's stop
        distance (the simulator's rule). A stop whose level moved is replaced (new one first, then the old one
        cancelled); stops of flat keys are cancelled. A stop the price already passed is not placed: the
        position is closed at market at once, as the simulator's stop would have."""
        resting: dict[tuple[str, str], list[Order]] = {}
        for o in self.repo.open_orders():
            if o.trigger_price is not None:
                resting.setdefault((o.sleeve, _ours(o)), []).append(o)
        for key, h in self.holdings().items():
            category, raw = venue(key[1])
            if category != "linear" or h.gross == 0:
                continue
            level = self._stop_level(d, key, report)
            if level is None:
                continue
            side = "Sell" if h.gross > 0 else "Buy"
            tick = self.client.instrument(category, raw).tick_size
            mine = resting.pop(key, [])
            keep = [o for o in mine if o.qty == abs(h.gross) and o.side == side
                    and abs(o.trigger_price - Decimal(repr(level))) < tick]
            if not keep:
                order = self.manager.submit(OrderIntent(
                    sleeve=key[0], symbol=raw, side=side, qty=abs(h.gross), bar_ts=d.bar_ts, intent="stop",
                    category=category, order_type="stop", trigger_price=Decimal(repr(level)), reduce_only=True))
                if OrderState(order.state) not in TERMINAL_STATES:
                    order = self.manager.resolve_order(order)  # Acknowledged -> Open (resting, Untriggered)
                report.submitted[order.client_order_id] = order.state
                if order.state == OrderState.REJECTED.value and "11009" in (order.last_error or ""):
                    self._stop_out(key, h, d.bar_ts, report)  # the price is already through the stop
            for o in mine:
                if o not in keep:
                    self._cancel(o)
        for orders in resting.values():  # flat keys: their stops have nothing left to protect
            for o in orders:
                self._cancel(o)

    def _stop_level(self, d, key, report: BarReport) -> float | None:
        dist = d.entry_stop_dist.get(key)
        if dist is not None:  # an entry decided on this bar: its stop rests at the live fill -/+ the distance
            for cid in report.submitted:
                o = self.repo.get_order(cid)
                if (o.sleeve, _ours(o)) == key and o.trigger_price is None and o.filled_qty and o.avg_price:
                    return float(o.avg_price) - (1 if o.side == "Buy" else -1) * dist
        return d.stops.get(key)

    def _stop_out(self, key, h: Holding, bar_ts: int, report: BarReport) -> None:
        category, raw = venue(key[1])
        book = self.client.orderbook(category, raw, limit=1)
        ref = float((book.bids if h.gross > 0 else book.asks)[0][0])
        p = Planned(sleeve=key[0], symbol=key[1], qty=-float(h.gross), intent="stop_passed", limit=None,
                    reference_price=ref)
        order = self.manager.submit(self._intent(p, bar_ts))
        report.submitted[order.client_order_id] = self.manager.resolve_order(order).state

    def _cancel(self, o: Order) -> None:
        try:
            self.manager.cancel(o.client_order_id)
        except ExchangeError as exc:
            log.warning("cancel %s: %s", o.client_order_id, exc)

    def _cancel_stale(self, bar_ts: int) -> set[tuple[str, str]]:
        """Cancel non-final orders of earlier bars, except the resting stops (`_protect` keeps them); return the
        (sleeve, symbol) keys still in flight."""
        from eternal_engine.data.bybit import bybit_symbol

        busy = set()
        for o in self.repo.open_orders():
            if o.trigger_price is not None:
                continue
            if o.bar_ts is not None and o.bar_ts < bar_ts and o.exchange_order_id is not None:
                try:
                    o = self.manager.cancel(o.client_order_id)
                except ExchangeError as exc:
                    log.warning("cancel %s: %s", o.client_order_id, exc)
            if OrderState(o.state) not in TERMINAL_STATES:
                busy.add((o.sleeve, bybit_symbol(o.symbol, o.category)[0]))
        return busy

    def holdings(self) -> dict[tuple[str, str], Holding]:
        """Per (sleeve, symbol): signed sum of the recorded fills (gross) and net of fees paid in the coin."""
        from eternal_engine.data.bybit import bybit_symbol

        with session_scope(self.repo.engine) as s:
            rows = s.execute(select(Order.sleeve, Order.symbol, Order.category, Order.side, Fill.qty, Fill.fee,
                                    Fill.fee_currency).join(Fill, Fill.client_order_id == Order.client_order_id)
                             .where(Fill.exec_type != "Funding")).all()
        gross: dict[tuple[str, str], Decimal] = {}
        net: dict[tuple[str, str], Decimal] = {}
        for sleeve, raw, category, side, qty, fee, fee_ccy in rows:
            key = (sleeve, bybit_symbol(raw, category)[0])
            signed = qty if side == "Buy" else -qty
            coin_fee = fee if category == "spot" and fee_ccy and raw == f"{fee_ccy}USDT" else Decimal(0)
            gross[key] = gross.get(key, Decimal(0)) + signed
            net[key] = net.get(key, Decimal(0)) + signed - coin_fee
        return {k: Holding(gross[k], net[k]) for k in gross}

    def _store_positions(self, held: dict[tuple[str, str], Holding]) -> None:
        for (sleeve, symbol), h in sorted(held.items()):
            self.repo.upsert_position(sleeve, symbol, h.gross, category=venue(symbol)[0])

    def _persist(self, d) -> None:
        total = sum(d.sleeve_equity.values()) or 1.0
        for sleeve, state in d.engine_states.items():
            self.repo.save_engine_state(sleeve, state, bar_ts=d.bar_ts,
                                        allocation_pct=d.sleeve_equity[sleeve] / total,
                                        detail={"equity": d.sleeve_equity[sleeve]})
        b = d.breaker
        self.repo.save_breaker_state(level=b["level"], peak=b["peak"], halted_since_ns=b["halted_since_ns"],
                                     prev_nav=b["prev_nav"], last_bar_ts=d.bar_ts)
        meta = self.repo_meta() or {}
        digest = self.config.config_hash()
        if meta.get("config_hash") not in (None, digest):
            self.alert("P1", "CONFIG_CHANGED", f"the strategy config changed ({meta['config_hash'][:12]} -> "
                                f"{digest[:12]}): the simulator's path since the live start is recomputed with it")
        self.repo.save_engine_state(META, self.mode, bar_ts=d.bar_ts, detail={
            "start": self.start_at.isoformat(), "config_hash": digest, "interval": self.window.interval,
            "engines": list(self.settings.engines or ()), "symbols": list(self.symbols)})

    def _observe(self, d, bar) -> None:
        """Metrics of the bar, and a P0 alert when the simulator's drawdown breaker steps up."""
        b = d.breaker
        if self.metrics is not None:
            self.metrics.set_last_bar(d.bar_ts)
            self.metrics.update_portfolio(value_usd=sum(d.sleeve_equity.values()),
                                          drawdown=1.0 - b["prev_nav"] / b["peak"], breaker_level=b["level"],
                                          sleeve_equity=d.sleeve_equity)
        if b["level"] > b["prev_level"]:
            self.alert("P0", f"BREAKER_L{b['level']}", f"drawdown circuit breaker stepped up to L{b['level']} on the "
                       f"bar of {bar:%Y-%m-%d %H:%M} UTC (drawdown {1.0 - b['prev_nav'] / b['peak']:.1%})",
                       {"level": b["level"], "previous": b["prev_level"]})

    # ------------------------------------------------------------------ forever
    def next_close_s(self) -> float:
        """Seconds until the bar in progress closes."""
        step = self.window.step_ms / 1000
        now = self.clock()
        return step - now % step

    def run_forever(self, *, settle_s: float = 5.0, retry_s: float = 60.0, sleep=time.sleep) -> None:
        """Run each bar a few seconds after it closes; a failed bar is retried (idempotent) after ``retry_s``."""
        while True:
            try:
                self.run_bar()
            except (ExchangeError, DataError) as exc:
                log.error("bar failed, retrying in %.0fs: %s", retry_s, exc)
                if self.metrics is not None:
                    self.metrics.record_error(exc)
                self.alert("P1", "BAR_FAILED", f"the bar failed and is retried in {retry_s:.0f}s: {exc}")
                sleep(retry_s)
                continue
            sleep(self.next_close_s() + settle_s)


def _ours(o: Order) -> str:
    """Our symbol name of an order row: ``BTCUSDT`` linear -> ``BTC-PERP``."""
    from eternal_engine.data.bybit import bybit_symbol

    return bybit_symbol(o.symbol, o.category)[0]


# ============================================================================================ crash points
class CrashAt:
    """Fault injection for crash tests (``EE_CRASH_AT``): SIGKILL this process at a named point of an order's
    life -- ``after_intent`` (intent and Submitted committed, before the create request), ``after_request``
    (the exchange answered the create, before the ack is committed), ``after_fill`` (executions received,
    before they are recorded)."""

    def __init__(self, client, point: str):
        if point not in CRASH_POINTS:
            raise ConfigError(f"{CRASH_ENV}={point!r}: use one of {list(CRASH_POINTS)}")
        self._client, self.point = client, point

    def __getattr__(self, name):
        return getattr(self._client, name)

    def _die(self, point: str) -> None:
        if point == self.point:
            os.kill(os.getpid(), signal.SIGKILL)

    def place_order(self, *args, **kw):
        self._die("after_intent")
        ack = self._client.place_order(*args, **kw)
        self._die("after_request")
        return ack

    def executions(self, *args, **kw):
        execs = self._client.executions(*args, **kw)
        if execs:
            self._die("after_fill")
        return execs


# ============================================================================================ the command
def _paper_book_path(db_url: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return url.database + ".paper.json"
    return "paper_book.json"


def run_live(args) -> int:
    """``eternal-engine live``: build the client (paper, testnet or live), the database and the trader; run one
    bar (``--once``, REST only) or every bar forever (testnet/live: with the private stream, :mod:`live.runner`;
    exit code 1 when it died and trading was halted). The mode gate (TRADING_MODE + flag) is checked by the
    caller."""
    from eternal_engine.data.bybit import ENDPOINT_ENV
    from live.bybit.client import BybitClient
    from live.db.migrate import upgrade
    from live.db.session import database_url, make_engine, normalize_url
    from live.alerts import Alerter
    from live.logs import configure_logging
    from live.metrics import LiveMetrics

    configure_logging()
    config = Config.from_yaml(args.config) if args.config else Config()
    db_url = normalize_url(args.db) if args.db else database_url()
    endpoint = os.environ.get(ENDPOINT_ENV) or None
    if args.mode == "paper":
        from live.paper import PaperClient

        ex = config.execution
        fees = {("linear", False): ex.perp_taker_fee, ("linear", True): ex.perp_maker_fee,
                ("spot", False): ex.spot_taker_fee, ("spot", True): ex.spot_maker_fee}
        client = PaperClient(BybitClient(testnet=False, endpoint=endpoint), args.paper_book or
                             _paper_book_path(db_url), wallet_usdt=args.paper_balance or config.portfolio.initial_capital,
                             interval=args.interval, fees=fees)
    else:
        key, secret = os.environ.get("BYBIT_API_KEY"), os.environ.get("BYBIT_API_SECRET")
        if not key or not secret:
            raise ConfigError(f"--mode {args.mode} needs BYBIT_API_KEY and BYBIT_API_SECRET in the environment")
        testnet = args.mode == "testnet" or os.environ.get("BYBIT_TESTNET", "true").strip().lower() not in (
            "0", "false", "no")
        client = BybitClient(key, secret, testnet=testnet, endpoint=endpoint)
        log.info("trading %s on %s", "TESTNET" if testnet else "MAINNET (real money)", client.endpoint)
    if os.environ.get(CRASH_ENV):
        client = CrashAt(client, os.environ[CRASH_ENV])
    engine = make_engine(db_url)
    upgrade(engine)
    repo = Repository(engine)
    engines = tuple(e.strip() for e in args.engines.split(",")) if args.engines else None
    settings = LiveSettings(interval=args.interval, start=args.start, engines=engines,
                            max_slippage=args.max_slippage, warmup_bars=args.warmup_bars)
    metrics = LiveMetrics()
    if args.metrics_port:
        metrics.start_metrics_server(args.metrics_port)
    alerter = Alerter.from_env(repo, metrics=metrics)
    manager = OrderManager(repo, client, unknown_grace_s=args.unknown_grace, alert=alerter.alert, metrics=metrics)
    trader = LiveTrader(repo, client, config, settings, manager=manager, mode=args.mode, alert=alerter.alert,
                        metrics=metrics)
    if not args.once and args.mode != "paper":  # the private stream feeds the loop; paper has none
        from live.runner import PrivateStreamLost, Runner

        try:
            Runner(trader, api_key=key, api_secret=secret).run_forever()
        except PrivateStreamLost as exc:
            log.critical("stopped, trading halted: %s", exc)
            return 1
    if not args.once:
        trader.run_forever()
    report = trader.run_bar()
    state = "HALTED: no order" if report.halted else f"{len(report.submitted)} orders"
    print(f"{args.mode}: bar {report.bar:%Y-%m-%d %H:%M} UTC decided, {state}")
    for cid, st in report.submitted.items():
        print(f"  {cid} {st}")
    for key, why in report.skipped.items():
        print(f"  skipped {key}: {why}")
    return 0


