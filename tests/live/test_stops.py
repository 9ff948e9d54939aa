"""Exchange-side stop orders: ``OrderIntent(order_type="stop")`` through the unmodified pybit client against the
fake exchange (conditional, reduce-only, stop-market), the ``trigger_price`` column (migration 0002) and the
paper client's stops."""
from __future__ import annotations

import itertools
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import inspect

from live.bybit.client import BybitClient
from live.db import migrate
from live.db.models import OrderState
from live.db.repo import IntentMismatch
from live.db.session import make_engine
from live.orders import OrderIntent, OrderManager
from live.paper import PaperClient
from tests.fakes.bybit_exchange import FakeBybitExchange
from tests.live import test_orders
from tests.live.exchange_setup import KEY, SECRET, make_client
from tests.live.test_orders import assert_invariants

BAR = 1_767_700_800_000_000_000
S = OrderState
_bars = itertools.count()


@pytest.fixture
def om(repo, fake):
    return OrderManager(repo, make_client(fake))


@pytest.fixture(autouse=True)
def conditional_statuses(monkeypatch):
    """The shared invariants know plain order statuses; Bybit's conditional ones, per its enum page."""
    for status, state in (("Untriggered", S.OPEN), ("Triggered", S.OPEN), ("Deactivated", S.CANCELLED)):
        monkeypatch.setitem(test_orders._MAP, status, state)


def market(side, qty, symbol="BTCUSDT"):
    return OrderIntent(sleeve="TREND", symbol=symbol, side=side, qty=qty, bar_ts=BAR + next(_bars), intent="entry")


def stop(side, qty, trigger, symbol="BTCUSDT", **kw):
    kw.setdefault("bar_ts", BAR + next(_bars))
    return OrderIntent(sleeve="TREND", symbol=symbol, side=side, qty=qty, intent="stop", order_type="stop",
                       trigger_price=trigger, reduce_only=True, **kw)


def open_long(om, qty="0.02", symbol="BTCUSDT"):
    om.resolve_order(om.submit(market("Buy", qty, symbol)).client_order_id)


# ============================================================================================ placing
def test_a_stop_rests_untriggered_on_the_exchange_and_open_in_the_db(om, repo, fake):
    open_long(om)

    o = om.submit(stop("Sell", "0.02", "48000"))
    om.resolve()

    x = fake.order(o.client_order_id)
    assert (x["orderStatus"], x["orderType"], x["triggerPrice"], x["triggerDirection"], x["triggerBy"],
            x["reduceOnly"]) == ("Untriggered", "Market", Decimal("48000"), 2, "LastPrice", True)
    row = repo.get_order(o.client_order_id)
    assert row.state == "Open" and row.trigger_price == Decimal("48000") and row.price is None
    assert fake.executions and not [e for e in fake.executions if e["orderLinkId"] == o.client_order_id]
    assert_invariants(repo, fake)


def test_the_trigger_is_rounded_to_the_tick_towards_the_market(om, repo, fake):
    open_long(om)
    om.resolve_order(om.submit(market("Sell", "1", "ETHUSDT")).client_order_id)  # a short to protect

    sell = om.submit(stop("Sell", "0.02", "48000.03"))                    # nearest tick would be 48000.0
    buy = om.submit(stop("Buy", "1", "2100.07", symbol="ETHUSDT"))        # nearest tick would be 2100.1

    assert repo.get_order(sell.client_order_id).trigger_price == Decimal("48000.1")
    assert repo.get_order(buy.client_order_id).trigger_price == Decimal("2100.0")
    assert fake.order(sell.client_order_id)["triggerPrice"] == Decimal("48000.1")
    assert (fake.order(buy.client_order_id)["triggerPrice"], fake.order(buy.client_order_id)["triggerDirection"]) \
        == (Decimal("2100.0"), 1)


def test_a_trigger_the_price_already_crossed_is_rejected_and_nothing_rests(om, repo, fake):
    open_long(om)

    o = om.submit(stop("Sell", "0.02", "50100"))  # above the 50,000 market: a Sell stop would fire at once

    assert o.state == "Rejected" and "110093" in o.last_error
    assert fake.order(o.client_order_id) is None
    assert_invariants(repo, fake)


# ============================================================================================ triggering
def test_the_price_crossing_the_trigger_fills_the_stop_and_closes_the_position(om, repo, fake):
    open_long(om)
    o = om.submit(stop("Sell", "0.02", "48000"))

    assert fake.advance({"BTCUSDT": 48_000.1}) == []           # not reached: still resting
    (ex,) = fake.advance({"BTCUSDT": 47_900})                 # crossed: a market order at that price
    om.resolve()

    assert (ex["execQty"], ex["execPrice"], ex["isMaker"]) == (Decimal("0.02"), Decimal(47_900), False)
    assert ex["execFee"] == Decimal("0.02") * 47_900 * Decimal("0.00055")
    row = repo.get_order(o.client_order_id)
    assert row.state == "Filled" and row.filled_qty == Decimal("0.02") and row.avg_price == Decimal(47_900)
    assert fake.positions["BTCUSDT"]["size"] == 0
    assert_invariants(repo, fake)


def test_a_reduce_only_stop_larger_than_the_position_closes_only_the_position(om, repo, fake):
    open_long(om, "0.01")
    o = om.submit(stop("Sell", "0.03", "48000"))

    fake.advance({"BTCUSDT": 47_000})
    om.resolve()

    assert [e["execQty"] for e in fake.executions if e["orderLinkId"] == o.client_order_id] == [Decimal("0.01")]
    assert fake.positions["BTCUSDT"]["size"] == 0             # flat, not short 0.02
    row = repo.get_order(o.client_order_id)
    assert row.state == "Filled" and row.filled_qty == Decimal("0.01")
    assert_invariants(repo, fake)


def test_a_stop_without_a_position_is_deactivated_and_cancelled_in_the_db(om, repo, fake):
    o = om.submit(stop("Sell", "0.02", "48000"))
    om.resolve()
    assert repo.get_order(o.client_order_id).state == "Open"

    assert fake.advance({"BTCUSDT": 47_000}) == []
    om.resolve()

    assert fake.order(o.client_order_id)["orderStatus"] == "Deactivated"
    assert repo.get_order(o.client_order_id).state == "Cancelled" and not repo.fills(o.client_order_id)
    assert fake.positions.get("BTCUSDT", {}).get("size", 0) == 0
    assert_invariants(repo, fake)


def test_a_cancelled_stop_no_longer_fires(om, repo, fake):
    open_long(om)
    o = om.submit(stop("Sell", "0.02", "48000"))

    assert om.cancel(o.client_order_id).state == "Cancelled"
    fake.advance({"BTCUSDT": 47_000})

    assert fake.order(o.client_order_id)["orderStatus"] == "Deactivated"
    assert fake.positions["BTCUSDT"]["size"] == Decimal("0.02")
    assert_invariants(repo, fake)


def test_a_restart_finds_the_stop_by_order_link_id_and_never_resends_it(om, repo, fake):
    open_long(om)
    fake.lose_ack(mode="drop")
    it = stop("Sell", "0.02", "48000")
    assert om.submit(it).state == "Unknown"

    again = OrderManager(repo, make_client(fake))
    report = again.resolve()
    again.submit(it)

    assert report.changed[it.client_order_id] == "Open" and not report.unresolved
    assert fake.creates(it.client_order_id) == 1 and fake.accepted_creates(it.client_order_id) == 1
    assert repo.get_order(it.client_order_id).exchange_order_id == fake.order(it.client_order_id)["orderId"]
    fake.advance({"BTCUSDT": 47_500})
    again.resolve()
    assert repo.get_order(it.client_order_id).state == "Filled"
    assert_invariants(repo, fake)


# ============================================================================================ intents, schema
def test_a_stop_intent_must_be_a_reduce_only_linear_order_with_a_trigger():
    with pytest.raises(ValueError, match="reduce_only"):
        OrderIntent("TREND", "BTCUSDT", "Sell", "1", BAR, "stop", order_type="stop", trigger_price=1)
    with pytest.raises(ValueError, match="trigger_price"):
        OrderIntent("TREND", "BTCUSDT", "Sell", "1", BAR, "stop", order_type="stop", reduce_only=True)
    with pytest.raises(ValueError, match="stop"):
        OrderIntent("TREND", "BTCUSDT", "Sell", "1", BAR, "exit", trigger_price=1)


def test_the_same_client_order_id_with_another_trigger_is_an_intent_mismatch(repo):
    args = dict(sleeve="TREND", symbol="BTCUSDT", side="Sell", qty="0.02", order_type="Market", reduce_only=True)
    repo.record_intent("TRENBTCUSDT-stop-1", trigger_price="48000", **args)

    assert repo.record_intent("TRENBTCUSDT-stop-1", trigger_price="48000.0", **args).trigger_price == 48000
    with pytest.raises(IntentMismatch, match="trigger_price"):
        repo.record_intent("TRENBTCUSDT-stop-1", trigger_price="47000", **args)


def test_migration_0002_adds_and_drops_the_trigger_price_column(db_url):
    def columns():
        eng = make_engine(db_url)
        try:
            return {c["name"]: c["nullable"] for c in inspect(eng).get_columns("orders")}
        finally:
            eng.dispose()

    assert migrate.upgrade(db_url, "0001") == "0001" and "trigger_price" not in columns()
    assert migrate.upgrade(db_url) == "0002" and columns()["trigger_price"] is True
    from alembic import command

    eng = make_engine(db_url)
    try:
        with eng.begin() as conn:
            cfg = migrate.alembic_config(db_url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
    finally:
        eng.dispose()
    assert migrate.current(db_url) == "0001" and "trigger_price" not in columns()


# ============================================================================================ paper
T0 = pd.Timestamp("2026-03-02", tz="UTC")


@pytest.fixture
def paper_fake():
    with FakeBybitExchange(api_key=KEY, api_secret=SECRET, prices={"BTCUSDT": 40_000}) as f:
        yield f


def bars(*rows):
    """Daily linear bars from T0: (open, high, low, close)."""
    idx = pd.date_range(T0, periods=len(rows), freq="D").as_unit("ns")
    return pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx).assign(volume=1.0, turnover=1.0)


def paper(fake, tmp_path) -> PaperClient:
    public = BybitClient(testnet=False, endpoint=fake.url, timeout=(1.0, 2.0))
    return PaperClient(public, tmp_path / "book.json", wallet_usdt=1_000_000, match_every_s=0.0,
                       clock=lambda: (T0 + pd.Timedelta(hours=12)).timestamp())


@pytest.mark.parametrize("later_bar,fill", [((39_000, 39_500, 37_000, 37_200), Decimal(38_000)),   # crosses
                                            ((37_500, 37_900, 37_000, 37_200), Decimal(37_500))])  # gaps
def test_a_paper_stop_triggers_on_a_later_bar_at_the_trigger_or_the_gap_open(paper_fake, tmp_path, later_bar,
                                                                              fill):
    placed_in = (40_000, 40_100, 36_000, 39_900)  # its low predates the stop: it must not trigger it
    paper_fake.set_klines("linear", "BTCUSDT", "D", bars(placed_in))
    client = paper(paper_fake, tmp_path)
    client.place_order("linear", "BTCUSDT", "Buy", "1", client_order_id="long-1", order_type="Market")
    client.place_order("linear", "BTCUSDT", "Sell", "2", client_order_id="stop-1", order_type="Market",
                       trigger_price="38000", reduce_only=True)
    assert client.get_order("linear", client_order_id="stop-1").status == "Untriggered"

    paper_fake.set_klines("linear", "BTCUSDT", "D", bars(placed_in, (39_900, 40_000, 38_100, 38_500), later_bar))
    restarted = paper(paper_fake, tmp_path)  # the book on disk carries the stop
    o = restarted.get_order("linear", client_order_id="stop-1")

    (e,) = restarted.executions("linear", client_order_id="stop-1")
    assert (o.status, o.trigger_price, o.trigger_direction) == ("Filled", Decimal(38_000), 2)
    assert (e.qty, e.price, e.is_maker, e.fee) == (Decimal(1), fill, False, fill * Decimal("0.00055"))
    assert restarted.positions("linear", "BTCUSDT")[0].size == 0  # reduce-only: 1 of the 2 asked


def test_a_paper_stop_without_a_position_is_deactivated(paper_fake, tmp_path):
    paper_fake.set_klines("linear", "BTCUSDT", "D", bars((40_000, 40_100, 39_900, 40_000),
                                                          (40_000, 40_000, 37_000, 37_500)))
    client = paper(paper_fake, tmp_path)

    client.place_order("linear", "BTCUSDT", "Sell", "1", client_order_id="stop-2", order_type="Market",
                       trigger_price="38000", reduce_only=True)

    assert client.get_order("linear", client_order_id="stop-2").status == "Deactivated"
    assert client.executions("linear") == [] and client.positions("linear") == []
