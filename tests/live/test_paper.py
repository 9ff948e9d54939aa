"""Paper mode: the same loop and database, fills simulated against the fake's public prices, no order sent."""
from __future__ import annotations

from decimal import Decimal

import pytest

from live.bybit.client import BybitClient
from live.bybit.errors import DuplicateOrderError, InsufficientBalanceError
from live.db.repo import Repository
from live.loop import LiveSettings, LiveTrader
from live.paper import PaperClient
from live.reconcile import reconcile
from tests.fakes.bybit_exchange import FakeBybitExchange
from tests.live.exchange_setup import KEY, SECRET
from tests.live.test_loop import CONFIG, ENGINES, Replay, db_orders

BTC = Decimal(40_000)


@pytest.fixture
def fake():
    with FakeBybitExchange(api_key=KEY, api_secret=SECRET, start="2024-01-01", end="2024-04-10",
                           prices={"BTCUSDT": BTC, "ETHUSDT": 2_200}) as f:
        yield f


def paper(fake, tmp_path, **kw) -> PaperClient:
    kw.setdefault("match_every_s", 0.0)
    return PaperClient(BybitClient(testnet=False, endpoint=fake.url, timeout=(1.0, 2.0)), tmp_path / "book.json",
                       wallet_usdt=1_000_000, **kw)


def test_the_paper_loop_fills_orders_and_never_calls_a_private_endpoint(db, fake, tmp_path):
    replay = Replay(fake)
    client = paper(fake, tmp_path, clock=replay.clock)
    trader = LiveTrader(Repository(db), client, CONFIG, LiveSettings(start="2024-01-01", engines=ENGINES),
                        clock=replay.clock, reconcile=reconcile, mode="paper")
    for t in range(35):
        replay.to_close_of(t)
        trader.run_bar()

    orders = db_orders(db)
    repo = Repository(db)
    fills = [f for o in orders for f in repo.fills(o.client_order_id)]
    trading = [o for o in orders if o.trigger_price is None]
    assert {o.sleeve for o in trading} == set(ENGINES) and all(o.state == "Filled" for o in trading)
    stops = [o for o in orders if o.trigger_price is not None]  # TREND's stops rest in the paper book too
    assert stops and {o.state for o in stops} <= {"Open", "Cancelled", "Filled"}
    assert any(f.is_maker for f in fills) and any(not f.is_maker for f in fills)  # post-only CORE, IOC TREND
    assert fake.private_count() == 0 and fake.creates() == 0


def test_a_market_order_takes_the_book_with_the_taker_fee(fake, tmp_path):
    client = paper(fake, tmp_path)

    client.place_order("linear", "BTCUSDT", "Buy", "1.5", client_order_id="m-1", order_type="Market")

    ex = sorted(client.executions("linear", client_order_id="m-1"), key=lambda e: e.price)
    assert [(e.qty, e.price) for e in ex] == [(Decimal(1), BTC + Decimal("0.1")),
                                               (Decimal("0.5"), BTC + Decimal("0.2"))]  # the fake's 1-lot levels
    assert all(not e.is_maker and e.fee == e.value * Decimal("0.00055") for e in ex)
    assert client.positions("linear")[0].signed_size == Decimal("1.5")
    assert client.get_order("linear", client_order_id="m-1").status == "Filled"


def test_a_post_only_order_that_would_cross_is_cancelled(fake, tmp_path):
    client = paper(fake, tmp_path)

    client.place_order("spot", "BTCUSDT", "Buy", "0.1", client_order_id="p-1", price=BTC + 1,
                       time_in_force="PostOnly")

    o = client.get_order("spot", client_order_id="p-1")
    assert o.status == "Cancelled" and o.reject_reason == "EC_PostOnlyWillTakeLiquidity"
    assert client.executions("spot") == []


def test_a_resting_limit_fills_at_its_price_once_a_later_price_reaches_it(fake, tmp_path):
    client = paper(fake, tmp_path)
    client.place_order("spot", "BTCUSDT", "Buy", "0.1", client_order_id="l-1", price=BTC - 100,
                       time_in_force="PostOnly")
    assert client.get_order("spot", client_order_id="l-1").status == "New"

    fake.advance({"BTCUSDT": BTC - 150})

    o = client.get_order("spot", client_order_id="l-1")
    (e,) = client.executions("spot", client_order_id="l-1")
    assert o.status == "Filled" and e.is_maker and e.price == BTC - 100
    assert client.wallet_balance().coins["BTC"].wallet_balance == Decimal("0.1") - e.fee  # fee in the coin bought


def test_the_book_survives_a_restart_and_refuses_a_second_order_with_the_same_id(fake, tmp_path):
    paper(fake, tmp_path).place_order("linear", "ETHUSDT", "Sell", "2", client_order_id="r-1", order_type="Market")

    again = paper(fake, tmp_path)

    assert again.get_order("linear", client_order_id="r-1").status == "Filled"
    assert again.positions("linear")[0].signed_size == Decimal(-2)
    with pytest.raises(DuplicateOrderError):
        again.place_order("linear", "ETHUSDT", "Sell", "2", client_order_id="r-1", order_type="Market")


def test_a_spot_sell_beyond_the_coins_held_is_refused(fake, tmp_path):
    client = paper(fake, tmp_path)

    with pytest.raises(InsufficientBalanceError):
        client.place_order("spot", "ETHUSDT", "Sell", "1", client_order_id="s-1", order_type="Market")
    assert client.get_order("spot", client_order_id="s-1") is None
