"""live.bybit.streams with the unmodified pybit ``WebSocket`` against the fake Bybit WebSocket server over
loopback: fault rows D11-D13 of bybit-v5-notes section D. Order rows end with :func:`assert_invariants` (I1-I6),
bar rows with :func:`assert_bars_match` (the stored bars equal the fake's series: no gap, nothing extra)."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from decimal import Decimal

import numpy as np
import pytest

from live.bybit.errors import AuthError
from live.bybit.streams import BAR_COLUMNS, MarketStream, PrivateStream, StreamConfig
from live.orders import OrderManager
from tests.fakes.bybit_exchange import FakeBybitExchange
from tests.fakes.bybit_ws import FakeBybitWS
from tests.live.exchange_setup import KEY, PRICES, SECRET, make_client
from tests.live.test_orders import assert_invariants, intent, wait_for

SYM = "BTCUSDT"
KLINE = f"kline.1.{SYM}"
CFG = StreamConfig(ping_interval_s=0.5, ping_timeout_s=0.25, ack_timeout_s=2.0, fill_wait_s=0.3,
                   watchdog_period_s=0.02)


@pytest.fixture
def ws(fake):
    with FakeBybitWS(fake) as w:
        yield w


@pytest.fixture
def om(repo, fake):
    return OrderManager(repo, make_client(fake))


def open_private(om, ws, **kw) -> PrivateStream:
    return PrivateStream(om, api_key=KEY, api_secret=SECRET, url=ws.url("private"), config=CFG, **kw).start()


@pytest.fixture
def private(om, ws):
    stream = open_private(om, ws)
    yield stream
    stream.close()


def submit(om, it, *streams):
    """Submit holding the streams' locks: a pushed update could otherwise race the HTTP ack."""
    with contextlib.ExitStack() as held:
        for stream in streams:
            held.enter_context(stream.lock)
        return om.submit(it)


def open_limit(om, repo, *streams, qty="0.010"):
    o = submit(om, intent("limit", qty=qty, price="49000"), *streams)
    assert wait_for(lambda: repo.get_order(o.client_order_id).state == "Open")
    return o.client_order_id


def barrier(om, repo, *streams):
    """Pushes on one socket are handled in order: once a new order's push is handled, so is all before it."""
    cid = submit(om, intent("limit", qty="0.001", price="30000"), *streams).client_order_id
    assert wait_for(lambda: repo.get_order(cid).state == "Open")


def to_states(repo, cid):
    return [e.to_state for e in repo.events(cid)]


# ============================================================================================ D11
@pytest.mark.parametrize("mode", ["close", "abort"])
def test_d11_fills_during_private_drop_are_gap_filled_after_reconnect(private, om, repo, fake, ws, mode):
    cid = open_limit(om, repo, private)
    assert ws.drop("private", mode=mode, hold=True) == 1  # new handshakes wait: the pushes below are lost
    fake.fill(cid, "0.004")
    fake.fill(cid)
    assert repo.fills(cid) == []
    ws.release()
    assert wait_for(lambda: private.gap_fills == 2)  # start + reconnect
    assert private.connects == 2 and ws.connection_count("private") == 2 and private.is_connected()
    o = repo.get_order(cid)
    assert o.state == "Filled" and o.filled_qty == Decimal("0.010") and len(repo.fills(cid)) == 2
    assert private.positions[("linear", SYM)].signed_size == fake.positions[SYM]["size"]
    o2 = submit(om, intent(qty="0.002"), private)  # the resubscribed socket delivers again
    assert wait_for(lambda: repo.get_order(o2.client_order_id).state == "Filled")
    assert private.skipped == 0
    assert_invariants(repo, fake)


# ============================================================================================ D12
def test_d12_duplicate_execution_is_recorded_once(private, om, repo, fake, ws):
    cid = open_limit(om, repo, private)
    ws.duplicate_next("execution")
    fake.fill(cid)
    barrier(om, repo, private)
    o = repo.get_order(cid)
    assert o.state == "Filled" and o.filled_qty == Decimal("0.010") and len(repo.fills(cid)) == 1
    assert private.skipped == 0 and private.connects == 1
    assert_invariants(repo, fake)


def test_d12_two_filled_messages_cancel_fill_race(private, om, repo, fake, ws):
    cid = open_limit(om, repo, private)
    ws.duplicate_next("order", patch={"cancelType": "CancelByUser", "rejectReason": "EC_OrigClOrdIDDoesNotExist"})
    fake.fill(cid)
    barrier(om, repo, private)
    assert repo.get_order(cid).state == "Filled" and to_states(repo, cid).count("Filled") == 1
    assert len(repo.fills(cid)) == 1 and private.skipped == 0
    assert_invariants(repo, fake)


def test_d12_filled_before_its_execution(private, om, repo, fake, ws):
    cid = open_limit(om, repo, private)
    ws.delay_next("execution", until="order")
    fake.fill(cid)
    barrier(om, repo, private)
    o = repo.get_order(cid)
    assert to_states(repo, cid)[-2:] == ["PartiallyFilled", "Filled"]  # Filled waits for the fill itself
    assert o.state == "Filled" and o.filled_qty == Decimal("0.010") and len(repo.fills(cid)) == 1
    assert_invariants(repo, fake)


def test_d12_filled_without_execution_fetches_it_after_the_wait(private, om, repo, fake, ws):
    cid = open_limit(om, repo, private)
    queries = fake.count("/v5/execution/list")
    ws.lose_next("execution")
    fake.fill(cid)
    assert wait_for(lambda: repo.get_order(cid).state == "PartiallyFilled")  # reported filled, no fill yet
    assert wait_for(lambda: repo.get_order(cid).state == "Filled", timeout=CFG.fill_wait_s + 3)
    assert fake.count("/v5/execution/list") == queries + 1 and len(repo.fills(cid)) == 1
    assert_invariants(repo, fake)


def test_d12_older_order_update_after_newer_is_ignored(private, om, repo, fake, ws):
    ws.delay_next("order", until="order")  # "New" arrives after "PartiallyFilled"
    cid = submit(om, intent("limit", qty="0.010", price="49000"), private).client_order_id
    time.sleep(0.005)  # the fill's updatedTime must be later than the creation's (ms clock)
    fake.fill(cid, "0.004")
    barrier(om, repo, private)
    o = repo.get_order(cid)
    assert o.state == "PartiallyFilled" and o.last_exchange_update_ms == fake.order(cid)["updatedTime"]
    assert "Open" not in to_states(repo, cid)
    fake.fill(cid)
    barrier(om, repo, private)
    assert repo.get_order(cid).state == "Filled" and private.skipped == 0
    assert_invariants(repo, fake)


def test_d12_same_executions_recorded_concurrently_are_stored_once(om, repo, fake):
    """WebSocket handler, gap-fill and an overlapping restart may insert the same execId at the same time."""
    cids = [om.submit(intent("limit", qty="0.002", price="49000")).client_order_id for _ in range(3)]
    for cid in cids:
        fake.fill(cid, "0.001")
        fake.fill(cid)
    execs = om.client.executions("linear")
    managers = [OrderManager(repo, om.client) for _ in range(4)]
    start, new, errors = threading.Barrier(len(managers)), [], []

    def record(m):
        start.wait()
        try:
            new.append(m.record_executions(execs))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and sum(new) == len(execs) == 6
    assert all(len(repo.fills(c)) == 2 and repo.get_order(c).filled_qty == Decimal("0.002") for c in cids)
    om.resolve()
    assert_invariants(repo, fake)


def test_private_auth_refused_is_fatal(om, ws):
    stream = PrivateStream(om, api_key=KEY, api_secret="wrong-secret-value", url=ws.url("private"), config=CFG)
    with pytest.raises(AuthError):
        stream.start()
    assert not stream.is_connected() and not ws.subscribed("private", "order")


# ============================================================================================ D13
class Clock:
    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
def bars_fake():
    """Two hours of 1-minute bars; REST shows only what the test has "published" so far."""
    with FakeBybitExchange(api_key=KEY, api_secret=SECRET, prices=dict(PRICES), start="2024-01-01",
                           end="2024-01-01 02:00") as f:
        full = f.klines("linear", SYM, "1").copy()
        f.set_klines("linear", SYM, "1", full.iloc[:0])
        yield f, full


@pytest.fixture
def market_ws(bars_fake):
    with FakeBybitWS(bars_fake[0]) as w:
        yield w


def open_market(bars_fake, ws, clock, **cfg) -> MarketStream:
    stream = MarketStream(make_client(bars_fake[0]), url=ws.url("linear"), config=dataclasses.replace(CFG, **cfg),
                          clock=clock).start()
    stream.subscribe_klines(SYM, "1")
    assert wait_for(lambda: ws.subscribed("public", KLINE))
    return stream


@pytest.fixture
def market(bars_fake, market_ws, clock):
    stream = open_market(bars_fake, market_ws, clock)
    yield stream
    stream.close()


def publish(bars_fake, ws, upto: int, *, push: bool = True, **fields):
    """Bars [0, upto] exist on REST; bar ``upto`` is pushed (with ``fields`` overriding its values)."""
    fake, full = bars_fake
    fake.set_klines("linear", SYM, "1", full.iloc[: upto + 1])
    if push:
        ws.push_kline(SYM, full.index[upto], full.iloc[upto], **fields)


def stored(stream) -> int:
    return len(stream.bars(SYM, "1"))


def assert_bars_match(stream, expected):
    got = stream.bars(SYM, "1")
    assert list(got.index) == list(expected.index)  # every bar, no gap, nothing extra
    np.testing.assert_allclose(got.to_numpy(), expected[list(BAR_COLUMNS)].to_numpy(), rtol=1e-12)


def test_d13_poison_messages_are_skipped_and_the_socket_survives(market, bars_fake, market_ws):
    for i in range(3):
        publish(bars_fake, market_ws, i)
    assert wait_for(lambda: stored(market) == 3)
    publish(bars_fake, market_ws, 3, close="")  # malformed kline
    market_ws.send_raw("public", "not json")
    market_ws.send_raw("public", json.dumps({"unexpected": "fields", "no": "topic"}))
    market_ws.send_raw("public", json.dumps({"topic": KLINE, "type": "snapshot", "data": "garbage"}))
    publish(bars_fake, market_ws, 4)  # the gap left by the malformed bar is backfilled from REST
    assert wait_for(lambda: stored(market) == 5)
    assert market.skipped == 4 and market.is_connected()
    assert market.connects == 1 and market_ws.connection_count("public") == 1
    assert_bars_match(market, bars_fake[1].iloc[:5])


def test_d13_zombie_socket_times_out_and_reconnects(market, bars_fake, market_ws):
    publish(bars_fake, market_ws, 0)
    assert wait_for(lambda: stored(market) == 1)
    assert market_ws.silence("public") == 1  # no pong frames, no data
    publish(bars_fake, market_ws, 1)  # lost on the silent socket, backfilled after the reconnect
    assert wait_for(lambda: market.connects == 2 and stored(market) == 2, timeout=5)
    assert wait_for(lambda: market_ws.subscribed("public", KLINE))
    publish(bars_fake, market_ws, 2)
    assert wait_for(lambda: stored(market) == 3)
    assert market.is_connected() and market_ws.connection_count("public") == 2
    assert_bars_match(market, bars_fake[1].iloc[:3])


def test_d13_stale_stream_is_backfilled_from_rest_without_gap(bars_fake, market_ws, clock):
    market = open_market(bars_fake, market_ws, clock, backfill_limit=4)  # 10 missing bars: 3 pages
    try:
        for i in range(3):
            publish(bars_fake, market_ws, i)
        assert wait_for(lambda: stored(market) == 3)
        publish(bars_fake, market_ws, 12, push=False)  # the socket stays up but pushes nothing more
        clock.offset = 119.0
        assert market.check_staleness() == [] and market.backfills == 0  # < 2x the 1-minute interval
        requests = bars_fake[0].count("/v5/market/kline")
        clock.offset = 121.0
        assert wait_for(lambda: stored(market) == 13)  # the watchdog's backfill, paged newest first
        assert market.backfills == 1 and bars_fake[0].count("/v5/market/kline") - requests == 3
        assert market.connects == 1 and market.is_connected()
        assert_bars_match(market, bars_fake[1].iloc[:13])
    finally:
        market.close()


def test_ticker_snapshot_on_subscribe_then_updates(market, bars_fake, market_ws):
    market.subscribe_tickers(SYM)
    assert wait_for(lambda: market.ticker(SYM) is not None)
    assert Decimal(market.ticker(SYM)["lastPrice"]) == PRICES[SYM]
    bars_fake[0].advance({SYM: 51_000})
    market_ws.push_ticker(SYM)
    assert wait_for(lambda: market.ticker(SYM)["lastPrice"] == "51000")
