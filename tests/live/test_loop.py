"""The live loop against the fake exchange: backtest parity, halt, restart without duplicates, the CLI gate."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import select

from eternal_engine.api import backtest
from eternal_engine.cli import main
from eternal_engine.config import Config
from eternal_engine.data.bybit import bybit_symbol
from eternal_engine.sim.records import STATUS_REJECTED
from live.db.models import TERMINAL_STATES, Order
from live.db.repo import Repository
from live.db.session import make_engine, session_scope
from live.loop import LiveSettings, LiveTrader
from live.orders import OrderManager
from live.reconcile import reconcile
from tests.fakes.bybit_exchange import FakeBybitExchange
from tests.live.exchange_setup import KEY, SECRET, history_exchange, make_client

ENGINES = ("core_hodl", "trend")
STEP = {"spot": 1e-6, "linear": 1e-3}  # the fake's quantity steps
CONFIG = Config().with_overrides({"trend.sma_fast": 5, "trend.sma_slow": 20, "trend.adx_window": 7,
                                  "trend.atr_window": 7, "trend.adx_threshold": 15.0, "risk.min_confidence": 0.1})


class Replay:
    """Historical daily bars replayed through the fake: before bar t's decision the fake's prices walk its
    low, high and close (resting limits fill as the simulator's rule says), and the trader's clock is just past
    its close."""

    def __init__(self, fake: FakeBybitExchange):
        self.fake = fake
        self.bars = {s: fake.klines("spot", s, "D") for s in ("BTCUSDT", "ETHUSDT")}
        self.index = self.bars["BTCUSDT"].index
        self.now = self.index[0].value / 1e9

    def clock(self) -> float:
        return self.now

    def to_close_of(self, t: int) -> None:
        for col in ("low", "high", "close"):
            self.fake.advance({s: df[col].iloc[t] for s, df in self.bars.items()})
        self.now = (self.index[t] + pd.Timedelta(days=1)).value / 1e9 + 1


@pytest.fixture
def fake():
    with history_exchange() as f:
        yield f


def loop_client(fake):
    """No fault here comes from a timeout: a generous read timeout keeps a loaded machine from making one."""
    return make_client(fake, timeout=(2.0, 5.0))


def trader_for(db, fake, replay, *, client=None, start="2024-01-01") -> LiveTrader:
    client = client or loop_client(fake)
    return LiveTrader(Repository(db), client, CONFIG, LiveSettings(start=start, engines=ENGINES),
                      clock=replay.clock, reconcile=reconcile)


def db_orders(db) -> list[Order]:
    with session_scope(db) as s:
        return list(s.scalars(select(Order).order_by(Order.id)))


def assert_one_exchange_order_per_id(db, fake):
    ids = [o.client_order_id for o in db_orders(db)]
    assert {o["orderLinkId"] for o in fake.orders} <= set(ids)
    for cid in ids:
        assert len(fake.orders_with_link_id(cid)) <= 1 and fake.accepted_creates(cid) <= 1, cid


@pytest.mark.parametrize("start", ["2024-01-01", "2024-02-01"])  # the second warms up on the bars before it
def test_replay_produces_the_backtest_orders_up_to_instrument_rounding(db, fake, start):
    replay = Replay(fake)
    trader = trader_for(db, fake, replay, start=start)
    first = replay.index.searchsorted(pd.Timestamp(start, tz="UTC"))
    stop_bar = {}  # orderLinkId of an exchange stop -> the bar whose walk filled it
    for t in range(first, len(replay.index) - 1):
        replay.to_close_of(t)
        for o in fake.orders:
            if o.get("triggerPrice") is not None and o["orderStatus"] == "Filled":
                stop_bar.setdefault(o["orderLinkId"], replay.index[t].value)
        trader.run_bar()
    market = trader.window.market(int(replay.now * 1000))
    result = backtest(market, CONFIG, engines=ENGINES, trade_from=start)
    assert market.index[0] == replay.index[max(0, first - 20)]  # TREND's warm-up (sma_slow) fetched before start

    sim = defaultdict(float)
    index = result.market.index
    for r in result.order_records[result.order_records["status"] != STATUS_REJECTED]:
        sim[(int(index[r["bar"]].value), result.sleeves[r["sleeve"]], market.symbols[r["col"]])] += r["qty"]
    live = defaultdict(float)
    stops_filled = 0
    for o in db_orders(db):
        sign = 1 if o.side == "Buy" else -1
        sym = bybit_symbol(o.symbol, o.category)[0]
        if o.trigger_price is None:
            live[(o.bar_ts, o.sleeve, sym)] += float(o.qty) * sign
        elif o.filled_qty:  # an exchange stop: the simulator records it on the bar that triggered it
            live[(stop_bar[o.client_order_id], o.sleeve, sym)] += float(o.filled_qty) * sign
            stops_filled += 1
    assert stops_filled >= 1  # trailing stops rested on the exchange and fired there
    assert set(sim) == set(live)
    for key, qty in sim.items():
        step = STEP["spot" if key[2].endswith("SPOT") else "linear"]
        # floor to the step, plus the residue of the previous floor when a stop and an entry net into one order
        assert abs(live[key] - qty) <= 2 * step + 1e-12, (pd.Timestamp(key[0]), key[1:], qty, live[key])
    orders = db_orders(db)
    assert {o.order_type + "/" + str(o.time_in_force) for o in orders} == {"Limit/PostOnly", "Limit/IOC",
                                                                            "Market/None"}
    trend_bars = sorted({o.bar_ts for o in orders if o.sleeve == "trend"})
    assert len(trend_bars) >= 8
    if first:  # warmed up: TREND may trade before sma_slow bars of its own have passed
        assert pd.Timestamp(trend_bars[0], tz="UTC") < replay.index[first + 19]
    trading = [o for o in orders if o.trigger_price is None]
    assert all(o.state == "Filled" for o in trading), [(o.intent, o.state) for o in trading if o.state != "Filled"]
    stops = [o for o in orders if o.trigger_price is not None]  # trailed: replaced ones are cancelled
    assert {o.state for o in stops} <= {"Filled", "Cancelled", "Open"}
    assert sum(o.state == "Open" for o in stops) <= 2  # at most one resting per position
    assert_one_exchange_order_per_id(db, fake)


def test_a_halted_trader_decides_but_sends_no_order(db, fake):
    replay = Replay(fake)
    trader = trader_for(db, fake, replay)
    Repository(db).set_halt("operator test", updated_by="test")
    replay.to_close_of(0)

    report = trader.run_bar()

    assert report.halted and not report.submitted
    assert fake.creates() == 0 and db_orders(db) == []
    assert trader.repo_meta()["last_bar_ts"] == replay.index[0].value  # states are still persisted


def test_resume_after_halt_trades_the_bar(db, fake):
    replay = Replay(fake)
    trader = trader_for(db, fake, replay)
    repo = Repository(db)
    repo.set_halt("operator test", updated_by="test")
    replay.to_close_of(0)
    trader.run_bar()
    repo.clear_halt(updated_by="test")

    report = trader.run_bar()

    assert len(report.submitted) == 2 and fake.creates() == 2  # CORE-HODL's BTC and ETH


class CrashAfterCreate:
    """The create reaches the exchange, then the process dies before the answer is recorded."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)

    def place_order(self, *args, **kw):
        self._client.place_order(*args, **kw)
        raise KeyboardInterrupt("crash after the create request")


def test_a_restart_mid_bar_sends_no_duplicate(db, fake):
    replay = Replay(fake)
    trader = trader_for(db, fake, replay)
    for t in range(19):
        replay.to_close_of(t)
        trader.run_bar()
    replay.to_close_of(19)  # TREND enters on this bar
    crashing = trader_for(db, fake, replay, client=CrashAfterCreate(loop_client(fake)))
    with pytest.raises(KeyboardInterrupt):
        crashing.run_bar()
    assert any(o.state == "Unknown" for o in db_orders(db))

    restarted = trader_for(db, fake, replay)  # a new process: new client, manager and trader, same database
    report = restarted.run_bar()  # the same bar again
    for t in range(20, 30):
        replay.to_close_of(t)
        restarted.run_bar()

    assert report.submitted  # the other legs of the bar went out once
    assert_one_exchange_order_per_id(db, fake)
    final = {s.value for s in TERMINAL_STATES}
    assert all(o.state in final or (o.trigger_price is not None and o.state == "Open") for o in db_orders(db))
    ours = OrderManager(Repository(db), loop_client(fake)).db_net_positions("linear")
    exch = {p.symbol: p.signed_size for p in loop_client(fake).positions("linear")}
    assert {k: v for k, v in ours.items() if v} == {k: v for k, v in exch.items() if v}


# ---------------------------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("env, flag", [(None, True), ("live", False), ("paper", True)])
def test_live_mode_without_both_safeties_refuses_with_exit_2(monkeypatch, capsys, tmp_path, env, flag):
    if env is None:
        monkeypatch.delenv("TRADING_MODE", raising=False)
    else:
        monkeypatch.setenv("TRADING_MODE", env)
    argv = ["live", "--mode", "live", "--once", "--db", f"sqlite:///{tmp_path / 'x.db'}"]

    code = main(argv + (["--i-understand-this-is-real-money"] if flag else []))

    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "TRADING_MODE=live" in err
    assert not (tmp_path / "x.db").exists()


def test_paper_once_runs_one_bar_against_the_fake_and_writes_the_database(monkeypatch, capsys, tmp_path):
    today = pd.Timestamp.now(tz="UTC").floor("D")
    with FakeBybitExchange(api_key=KEY, api_secret=SECRET, start=today - pd.Timedelta(days=40),
                           end=today + pd.Timedelta(days=2)) as f:
        monkeypatch.setenv("EE_BYBIT_ENDPOINT", f.url)
        monkeypatch.delenv("TRADING_MODE", raising=False)
        db = f"sqlite:///{tmp_path / 'paper.db'}"
        start = (today - pd.Timedelta(days=30)).strftime("%Y-%m-%d")

        code = main(["live", "--once", "--db", db, "--start", start, "--engines", "core_hodl",
                     "--paper-balance", "1000000"])

        assert code == 0, capsys.readouterr()
        assert f.private_count() == 0  # paper: no private endpoint was called
    out = capsys.readouterr().out
    assert f"paper: bar {(today - pd.Timedelta(days=1)):%Y-%m-%d} 00:00 UTC decided" in out
    repo = Repository(make_engine(db))
    orders = db_orders(repo.engine)
    assert {o.symbol for o in orders} == {"BTCUSDT", "ETHUSDT"} and all(o.state == "Filled" for o in orders)
    assert sum((f.qty for o in orders for f in repo.fills(o.client_order_id)), Decimal(0)) > 0
    assert (tmp_path / "paper.db.paper.json").exists()


# ---------------------------------------------------------------------------------------------- crash tests
CRASH_CONFIG = """\
trend: {sma_fast: 5, sma_slow: 20, adx_window: 7, atr_window: 7, adx_threshold: 15.0}
risk: {min_confidence: 0.1}
"""


@pytest.fixture
def live_fake():
    """A fake whose daily bars run up to today, prices at the last close, for the subprocess (real clock)."""
    today = pd.Timestamp.now(tz="UTC").floor("D")
    fake = FakeBybitExchange(api_key=KEY, api_secret=SECRET, start=today - pd.Timedelta(days=40),
                             end=today + pd.Timedelta(days=2), wallet_usdt=10_000_000)
    for sym in ("BTCUSDT", "ETHUSDT"):
        fake.prices[sym] = Decimal(str(fake.klines("spot", sym, "D")["close"].iloc[-3]))
    with fake:
        yield fake


def live_process(fake, tmp_path, crash_at=None):
    import os
    import subprocess
    import sys

    (tmp_path / "cfg.yaml").write_text(CRASH_CONFIG)
    start = (pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=30)).strftime("%Y-%m-%d")
    env = {k: v for k, v in os.environ.items() if k not in ("EE_CRASH_AT", "TRADING_MODE")}
    env.update(EE_BYBIT_ENDPOINT=fake.url, BYBIT_API_KEY=KEY, BYBIT_API_SECRET=SECRET, PYTHONPATH=os.getcwd())
    if crash_at:
        env["EE_CRASH_AT"] = crash_at
    cmd = [sys.executable, "-m", "eternal_engine.cli", "live", "--mode", "testnet", "--once", "--config",
           str(tmp_path / "cfg.yaml"), "--db", f"sqlite:///{tmp_path / 'crash.db'}", "--start", start,
           "--engines", "core_hodl,trend", "--unknown-grace", "1"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_crash_invariants(tmp_path, fake):
    from tests.live.test_orders import assert_invariants

    repo = Repository(make_engine(f"sqlite:///{tmp_path / 'crash.db'}"))
    assert_invariants(repo, fake)  # one order per id, fills == executions, states, linear positions, no Unknown
    coins: dict[str, Decimal] = defaultdict(Decimal)
    for o in db_orders(repo.engine):
        if o.category == "spot":
            for f in repo.fills(o.client_order_id):
                coin = o.symbol.removesuffix("USDT")
                coins[coin] += (f.qty - (f.fee if f.fee_currency == coin else 0)) if o.side == "Buy" else -f.qty
    assert {c: q for c, q in coins.items() if q} == {c: q for c, q in fake.wallet.items() if c != "USDT" and q}
    assert fake.creates() >= 3  # spot and perp legs really traded


def finish_after_restart(fake, tmp_path):
    import time

    time.sleep(1.2)  # past --unknown-grace: an order the exchange never saw is closed as not sent
    p = live_process(fake, tmp_path)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-3000:]
    return out


@pytest.mark.parametrize("point", ["after_intent", "after_request", "after_fill"])
def test_killed_at_a_named_point_the_restart_loses_and_doubles_nothing(live_fake, tmp_path, point):
    import signal

    p = live_process(live_fake, tmp_path, crash_at=point)
    _, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGKILL, err[-3000:]

    finish_after_restart(live_fake, tmp_path)

    assert_crash_invariants(tmp_path, live_fake)


@pytest.mark.parametrize("seed", range(6))
def test_killed_at_a_random_time_the_restart_loses_and_doubles_nothing(live_fake, tmp_path, seed):
    """SIGKILL lands right after the k-th signed request reached the exchange (k random per seed): anywhere in
    start-up reconciliation, order creation or resolution, possibly before the answer left."""
    import random
    import signal
    import time

    k = random.Random(seed).randint(1, 14)
    p = live_process(live_fake, tmp_path)
    deadline = time.monotonic() + 120
    while p.poll() is None and live_fake.private_count() < k and time.monotonic() < deadline:
        time.sleep(0.002)
    p.send_signal(signal.SIGKILL)
    _, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGKILL, f"the run ended before its request {k}: {err[-2000:]}"

    finish_after_restart(live_fake, tmp_path)

    assert_crash_invariants(tmp_path, live_fake)


def test_exchange_stops_trail_are_replaced_cancelled_when_flat_and_a_passed_stop_closes_at_market(db, fake):
    from types import SimpleNamespace

    from live.loop import BarReport
    from live.orders import OrderIntent

    replay = Replay(fake)
    replay.to_close_of(30)
    trader = trader_for(db, fake, replay)
    trader.start()
    om, key = trader.manager, ("trend", "BTC-PERP")
    bar = replay.index[30].value
    om.resolve_order(om.submit(OrderIntent(sleeve="trend", symbol="BTCUSDT", side="Buy", qty="0.010",
                                           intent="entry", order_type="market", bar_ts=bar, category="linear")))
    px = float(fake.prices["BTCUSDT"])

    def protect(level, t):
        d = SimpleNamespace(bar_ts=bar + t, stops={key: level} if level else {}, entry_stop_dist={})
        trader._protect(d, BarReport(bar=pd.Timestamp(bar + t, tz="UTC"), halted=False))
        return [o for o in db_orders(db) if o.trigger_price is not None]

    first = protect(0.90 * px, 1)
    assert [(o.state, o.side, o.qty, float(o.trigger_price)) for o in first] == [
        ("Open", "Sell", Decimal("0.010"), pytest.approx(0.90 * px, abs=0.1))]
    ids = [o.client_order_id for o in first]
    assert [o.client_order_id for o in protect(0.90 * px, 2)] == ids  # unchanged level: kept, nothing sent
    trailed = protect(0.95 * px, 3)
    assert [o.state for o in trailed] == ["Cancelled", "Open"]  # the new one rests before the old is cancelled
    assert [o["orderStatus"] for o in fake.orders if o.get("triggerPrice") is not None] == ["Deactivated",
                                                                                            "Untriggered"]
    passed = protect(1.05 * px, 4)  # the price is already below this stop: Bybit refuses it (110093)
    assert passed[-1].state == "Rejected" and "11009" in passed[-1].last_error
    closing = [o for o in db_orders(db) if o.intent == "stop_passed"]
    assert len(closing) == 1 and closing[0].state == "Filled" and closing[0].side == "Sell"
    assert trader.holdings()[key].gross == 0
    assert protect(None, 5)[-2].state == "Cancelled"  # flat: the last resting stop is cancelled
    assert not any(o["orderStatus"] == "Untriggered" for o in fake.orders)


def test_d7_a_skewed_clock_blocks_new_orders_with_an_alert(db, fake):
    replay = Replay(fake)
    trader = trader_for(db, fake, replay)
    trader.start()  # reconciled while the clocks agreed (with the skew, start-up itself refuses to trade)
    fake.clock_skew(6_000)  # the exchange runs 6 s ahead: our signed requests would be stale
    replay.to_close_of(20)
    report = trader.run_bar()
    assert report.skipped == {"*": report.skipped["*"]} and "clock skew" in report.skipped["*"]
    assert fake.creates() == 0 and db_orders(db) == []
    (alert,) = [a for a in Repository(db).unacked_alerts() if a.code == "CLOCK_SKEW"]
    assert alert.severity == "P1" and abs(alert.detail["skew_ms"] - 6_000) < 1_000

    fake.clock_skew(0)
    trader.run_bar()  # the same bar again, the clock fixed: it trades
    assert fake.creates() > 0


def test_a_discrepancy_that_appears_between_bars_halts_the_next_bar(db, fake):
    replay = Replay(fake)
    trader = trader_for(db, fake, replay)
    replay.to_close_of(25)
    trader.run_bar()
    creates = fake.creates()
    fake.external_position_change("ETHUSDT", "3")  # someone trades the account by hand

    replay.to_close_of(26)
    report = trader.run_bar()

    assert report.halted and not report.submitted and fake.creates() == creates
    repo = Repository(db)
    assert repo.is_halted() and {a.code for a in repo.unacked_alerts()} & {"EXTERNAL_POSITION", "POSITION_MISMATCH"}
