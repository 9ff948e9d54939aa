"""live.orders against the fake Bybit exchange (unmodified pybit over loopback): the fault matrix of
bybit-v5-notes section D, each row ending with the same invariants (:func:`assert_invariants`)."""
from __future__ import annotations

import itertools
import random
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from live.db.models import Order, OrderState
from live.db.session import session_scope
from live.orders import NOT_ACCEPTED, NOT_FOUND, OrderIntent, OrderManager, TradingHalted, client_order_id
from tests.live.exchange_setup import CREATE, make_client
BAR = 1_767_614_400_000_000_000
S = OrderState
_bars = itertools.count()


@pytest.fixture
def om(repo, fake, clock):
    return OrderManager(repo, make_client(fake), clock=clock)


def intent(order_type="market", side="Buy", qty="0.01", price=None, symbol="BTCUSDT", **kw):
    kw.setdefault("bar_ts", BAR + next(_bars))
    return OrderIntent(sleeve="TREND", symbol=symbol, side=side, qty=qty, intent="entry", order_type=order_type,
                       price=price, **kw)


def all_orders(repo) -> list[Order]:
    with session_scope(repo.engine) as s:
        return list(s.scalars(select(Order).order_by(Order.id)))


_MAP = {"New": S.OPEN, "PartiallyFilled": S.PARTIALLY_FILLED, "Filled": S.FILLED, "Cancelled": S.CANCELLED,
        "PartiallyFilledCanceled": S.CANCELLED, "Rejected": S.REJECTED,
        "Untriggered": S.OPEN, "Triggered": S.OPEN, "Deactivated": S.CANCELLED}  # conditional (stop) orders


def assert_invariants(repo, fake, *, positions=True):
    """Notes D, I1-I6: one exchange order per client_order_id and no orphans; DB fills == exchange executions;
    DB state == exchange state; nothing Unknown/in flight; nothing Rejected that is live; positions match."""
    orders = all_orders(repo)
    by_cid = {o.client_order_id: o for o in orders}
    exch_links = {o["orderLinkId"] for o in fake.orders}
    assert exch_links <= set(by_cid), f"orphan exchange orders: {exch_links - set(by_cid)}"  # I1
    for o in orders:
        cid = o.client_order_id
        on_exchange = fake.orders_with_link_id(cid)
        assert len(on_exchange) <= 1 and fake.accepted_creates(cid) <= 1, cid  # I2
        assert o.state not in (S.UNKNOWN.value, S.SUBMITTED.value, S.CREATED.value), (cid, o.state)  # I5
        if not on_exchange:
            assert o.state in (S.REJECTED.value, S.CANCELLED.value), (cid, o.state)
            assert not repo.fills(cid) and o.exchange_order_id is None
            continue
        x = on_exchange[0]
        assert o.state != S.REJECTED.value, f"{cid} Rejected but on the exchange ({x['orderStatus']})"  # I6
        assert o.exchange_order_id == x["orderId"]
        assert o.state == _MAP[x["orderStatus"]].value, (cid, o.state, x["orderStatus"])
        fills = repo.fills(cid)  # I3
        execs = [e for e in fake.executions if e["orderLinkId"] == cid]
        assert {f.exec_id for f in fills} == {e["execId"] for e in execs}
        assert sum((f.qty for f in fills), Decimal(0)) == x["cumExecQty"] == o.filled_qty
        assert sum((f.fee for f in fills), Decimal(0)) == sum((e["execFee"] for e in execs), Decimal(0))
    if positions:  # I4 (linear, one account)
        net: dict[str, Decimal] = {}
        for o in orders:
            if o.category == "linear":
                for f in repo.fills(o.client_order_id):
                    net[o.symbol] = net.get(o.symbol, Decimal(0)) + (f.qty if o.side == "Buy" else -f.qty)
        exch = {s: p["size"] for s, p in fake.positions.items() if p["size"] != 0}
        assert {s: q for s, q in net.items() if q != 0} == exch


def wait_for(pred, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


# ============================================================================================ client_order_id
def test_client_order_id_format_and_stability():
    cid = client_order_id("TREND", "BTCUSDT", BAR, "entry")
    assert cid == client_order_id("TREND", "BTCUSDT", BAR, "entry", 0)
    assert cid.startswith("TRENBTCUSDT-") and len(cid) <= 36
    # golden values: the mapping must never change between releases (a restart would re-place orders)
    assert client_order_id("TREND", "BTCUSDT", 1_767_614_400_000_000_000, "entry", 0) == \
        "TRENBTCUSDT-natxetmchsr7meyeie6pfs"
    assert client_order_id("CORE_HODL", "ETHUSDT", 0, "rebalance", 3) == "COREETHUSDT-f4i7iiohfhejyx2mrhajph"
    assert client_order_id("TREND", "BTCUSDT", BAR, "entry", 1) != cid
    assert client_order_id("TREND", "BTCUSDT", BAR + 1, "entry") != cid
    assert client_order_id("TREND", "BTCUSDT", BAR, "exit") != cid
    assert client_order_id("TREND2", "BTCUSDT", BAR, "entry") != cid  # same readable prefix, other hash
    assert OrderIntent("TREND", "BTCUSDT", "Buy", "0.01", BAR, "entry").client_order_id == cid
    for bad in [("", "BTCUSDT", BAR, "entry"), ("T", "", BAR, "entry"), ("T", "X", BAR, "")]:
        with pytest.raises(ValueError):
            client_order_id(*bad)


def test_client_order_id_no_collisions_and_charset():
    rng = random.Random(7)
    sleeves = ["CORE_HODL", "TREND", "FUNDING", "TACTICAL", "trend", "TREND-2", "a" * 40, "Ünïcode sleeve"]
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BTC-26DEC25", "1000PEPEUSDT", "X" * 30]
    intents = ["entry", "exit", "rebalance", "stop", "reconcile", "take profit 1"]
    seen: dict[str, tuple] = {}
    n = 0
    for sl in sleeves:
        for sy in symbols:
            for it in intents:
                for _ in range(25):
                    bar = BAR + rng.randrange(10**15)
                    for seq in (0, 1, 2):
                        key = (sl, sy, bar, it, seq)
                        cid = client_order_id(*key)
                        n += 1
                        assert len(cid) <= 36 and all(c.isalnum() and c.isascii() or c in "-_" for c in cid), cid
                        assert seen.setdefault(cid, key) == key, f"collision {cid}: {seen[cid]} vs {key}"
                        assert client_order_id(*key) == cid
    assert n == len(seen) > 20_000


# ============================================================================================ happy paths
def test_market_order_acknowledged_then_filled(om, repo, fake):
    o = om.submit(intent())
    assert o.state == S.ACKNOWLEDGED.value and o.exchange_order_id
    ev = [e.to_state for e in repo.events(o.client_order_id)]
    assert ev[:3] == ["Created", "Submitted", "Acknowledged"]
    assert fake.creates() == 1
    om.resolve()
    assert repo.get_order(o.client_order_id).state == "Filled"
    assert om.submit(intent(bar_ts=o.bar_ts)).state == "Filled"  # the same decision again: nothing sent
    assert fake.creates() == 1
    assert_invariants(repo, fake)


def test_limit_order_open_then_cancel(om, repo, fake):
    o = om.submit(intent("limit", qty="0.0105", price="49000.07"))
    assert (o.qty, o.price) == (Decimal("0.010"), Decimal("49000.0"))  # filters applied before recording
    om.resolve()
    assert repo.get_order(o.client_order_id).state == "Open"
    assert om.cancel(o.client_order_id).state == "Cancelled"
    assert_invariants(repo, fake)


def test_intent_written_before_http(repo, fake, clock):
    """The Created row exists when place_order runs."""
    client = make_client(fake)
    seen = {}
    real = client.place_order

    def spy(*a, client_order_id, **kw):
        seen["row"] = repo.get_order(client_order_id).state
        return real(*a, client_order_id=client_order_id, **kw)

    client.place_order = spy
    it = intent()
    OrderManager(repo, client, clock=clock).submit(it)
    assert seen["row"] == "Submitted"
    assert [e.to_state for e in repo.events(it.client_order_id)][:2] == ["Created", "Submitted"]


# ============================================================================================ fault matrix (D)
@pytest.mark.parametrize("mode,order_type", [("drop", "market"), ("drop", "limit"), ("timeout", "market")])
def test_d1_lost_ack_resolves_by_query(om, repo, fake, mode, order_type):
    fake.lose_ack(mode=mode, hang=1.0)
    o = om.submit(intent(order_type, price="49000" if order_type == "limit" else None))
    assert o.state == "Unknown" and fake.accepted_creates(o.client_order_id) == 1
    om.resolve()
    o = repo.get_order(o.client_order_id)
    assert o.state == ("Filled" if order_type == "market" else "Open") and o.exchange_order_id
    assert fake.creates() == 1  # never resent
    assert_invariants(repo, fake)


def test_d2_duplicate_after_retry_is_adopted(repo, fake, clock):
    """The first create lands but answers 503 (transient): the client retries with the same id -> 110072."""
    om = OrderManager(repo, make_client(fake, retries=1), clock=clock)
    fake.error_5xx(before=False, status=503)
    o = om.submit(intent())
    assert fake.creates() == 2 and fake.creates(outcome="error:110072") == 1
    assert o.state == "Filled" and o.exchange_order_id == fake.order(o.client_order_id)["orderId"]
    assert not repo.unacked_alerts()
    assert_invariants(repo, fake)


def test_d2_spot_duplicate_170141(repo, fake, clock):
    om = OrderManager(repo, make_client(fake, retries=1), clock=clock)
    fake.error_5xx(before=False, status=503)
    o = om.submit(intent("limit", symbol="BTCUSDT", category="spot", qty="0.001", price="49000"))
    assert fake.creates(outcome="error:170141") == 1 and o.state == "Open"
    assert_invariants(repo, fake, positions=False)


def test_d3_rate_limit_retried_with_same_link_id(repo, fake, clock):
    om = OrderManager(repo, make_client(fake, retries=2), clock=clock)
    fake.rate_limit(1, path=CREATE)
    o = om.submit(intent())
    links = [j.order_link_id for j in fake.journal if j.path == CREATE]
    assert links == [o.client_order_id] * 2 and fake.creates(outcome="rate_limited") == 1
    assert o.state == "Acknowledged"
    om.resolve()
    assert_invariants(repo, fake)


def test_d3_rate_limit_exhausted_is_not_accepted_then_rejected(om, repo, fake):
    fake.rate_limit(1, path=CREATE)
    o = om.submit(intent())
    assert o.state == "Submitted" and o.last_error.startswith(NOT_ACCEPTED)
    om.resolve()  # provably never accepted and not on the exchange -> Rejected, not resent
    o = repo.get_order(o.client_order_id)
    assert o.state == "Rejected" and NOT_FOUND in o.last_error and fake.creates() == 1
    assert_invariants(repo, fake)


def test_d3_burst_each_intent_one_order(repo, fake, clock):
    om = OrderManager(repo, make_client(fake, retries=3), clock=clock)
    fake.rate_limit(3, path=CREATE)
    cids = [om.submit(intent(qty="0.001", seq=i, bar_ts=BAR)).client_order_id for i in range(12)]
    assert len(set(cids)) == 12
    om.resolve()
    assert all(repo.get_order(c).state == "Filled" for c in cids)
    assert fake.accepted_creates() == 12
    assert_invariants(repo, fake)


def test_d4_503_before_acceptance_retried(repo, fake, clock):
    om = OrderManager(repo, make_client(fake, retries=1), clock=clock)
    fake.error_5xx(before=True)
    o = om.submit(intent())
    assert o.state == "Acknowledged" and fake.creates() == 2 and fake.accepted_creates() == 1
    om.resolve()
    assert_invariants(repo, fake)


def test_d4_503_before_acceptance_not_retried_ends_rejected(om, repo, fake):
    fake.error_5xx(before=True)
    o = om.submit(intent())
    assert o.state == "Submitted"
    om.resolve()
    assert repo.get_order(o.client_order_id).state == "Rejected" and fake.creates() == 1
    assert_invariants(repo, fake)


def test_d4_ambiguous_502_not_created_stays_unknown_until_grace(om, repo, fake, clock):
    fake.error_5xx(before=True, status=502)  # ambiguous to the client, but nothing was created
    o = om.submit(intent())
    assert o.state == "Unknown" and fake.orders == []
    rep = om.resolve()
    assert rep.unresolved == [o.client_order_id] and repo.get_order(o.client_order_id).state == "Unknown"
    om.resolve()
    assert [a.code for a in repo.unacked_alerts()] == ["ORDER_UNKNOWN"]  # alerted once, not per pass
    clock.offset = om.unknown_grace_s + 1
    om.resolve()
    o = repo.get_order(o.client_order_id)
    assert o.state == "Rejected" and NOT_FOUND in o.last_error
    assert fake.creates() == 1  # never resent
    assert_invariants(repo, fake)


def test_d5_5xx_after_acceptance_resolves_to_the_order(om, repo, fake):
    fake.error_5xx(before=False)  # 502 after the order was created
    o = om.submit(intent("limit", price="49000"))
    assert o.state == "Unknown"
    om.resolve()
    assert repo.get_order(o.client_order_id).state == "Open" and fake.creates() == 1
    assert_invariants(repo, fake)


def test_d6_definitive_rejects(om, repo, fake):
    small = om.submit(intent(qty="0.0004"))  # below minOrderQty: refused locally, nothing sent
    assert small.state == "Rejected" and "minimum" in small.last_error and fake.creates() == 0
    broke = om.submit(intent(qty="100"))  # 110007 insufficient balance
    assert broke.state == "Rejected" and "110007" in broke.last_error and fake.creates() == 1
    po = om.submit(intent("postonly", side="Buy", price="51000"))  # crosses: accepted, then cancelled
    om.resolve()
    po = repo.get_order(po.client_order_id)
    assert po.state == "Cancelled" and "PostOnly" in po.last_error
    om.resolve()
    assert fake.creates() == 2  # no retries
    assert_invariants(repo, fake)


def test_d7_clock_skew_rejected(om, repo, fake):
    fake.clock_skew(-6000)
    o = om.submit(intent())
    assert o.state == "Rejected" and "10002" in o.last_error and fake.orders == []
    assert_invariants(repo, fake)


def test_d8_auth_failure_rejects_and_halts(repo, fake, clock):
    om = OrderManager(repo, make_client(fake, secret="wrong-secret-value"), clock=clock)
    o = om.submit(intent())
    assert o.state == "Rejected" and repo.is_halted() and fake.creates() == 1
    with pytest.raises(TradingHalted):
        om.submit(intent())
    assert fake.creates() == 1
    assert_invariants(repo, fake)


def test_d9_restart_between_intent_and_submit(repo, fake, clock):
    it = intent()
    created = OrderManager(repo, make_client(fake), clock=clock).prepare(it)  # "kill -9" after the commit
    assert created.state == "Created" and fake.creates() == 0
    om2 = OrderManager(repo, make_client(fake), clock=clock)
    om2.resolve()  # not on the exchange, never sent: sent now with the same id
    assert fake.creates() == 1
    om2.resolve()
    assert om2.submit(it).state == "Filled" and fake.creates() == 1
    assert_invariants(repo, fake)


def test_d9_restart_between_intent_and_submit_policy_no_resubmit(repo, fake, clock):
    OrderManager(repo, make_client(fake), clock=clock).prepare(intent())
    OrderManager(repo, make_client(fake), clock=clock, resubmit_created=False).resolve()
    assert fake.creates() == 0
    assert_invariants(repo, fake)


def test_d9_restart_after_submitted_commit_before_http(repo, fake, clock):
    """Crash after Submitted was committed, before the request left: ambiguous from the DB's view."""
    om = OrderManager(repo, make_client(fake), clock=clock)
    o = om.prepare(intent())
    repo.transition(o.client_order_id, "Submitted")
    om2 = OrderManager(repo, make_client(fake), clock=clock)
    om2.resolve()
    assert repo.get_order(o.client_order_id).state == "Unknown" and fake.creates() == 0
    clock.offset = om2.unknown_grace_s + 1
    om2.resolve()
    assert repo.get_order(o.client_order_id).state == "Rejected" and fake.creates() == 0
    assert_invariants(repo, fake)


def test_d10_restart_after_submit_before_ack_with_fills_while_down(repo, fake, clock):
    client = make_client(fake)
    om = OrderManager(repo, client, clock=clock)
    o = om.prepare(intent("limit", qty="0.010", price="49000"))
    repo.transition(o.client_order_id, "Submitted")
    client.place_order("linear", "BTCUSDT", "Buy", "0.010", price="49000", client_order_id=o.client_order_id)
    # ... process dies before recording the ack; the order fills partially, then fully, while it is down
    fake.fill(o.client_order_id, "0.004")
    fake.fill(o.client_order_id)
    om2 = OrderManager(repo, make_client(fake), clock=clock)
    om2.resolve()
    o = repo.get_order(o.client_order_id)
    assert o.state == "Filled" and len(repo.fills(o.client_order_id)) == 2
    om2.resolve()
    assert om2.submit(intent("limit", qty="0.010", price="49000", bar_ts=o.bar_ts)).state == "Filled"
    assert fake.creates() == 1 and len(repo.fills(o.client_order_id)) == 2
    assert_invariants(repo, fake)


def test_partial_fills_then_fill(om, repo, fake):
    o = om.submit(intent("limit", qty="0.010", price="49000"))
    cid = o.client_order_id
    fake.fill(cid, "0.003")
    om.resolve()
    o = repo.get_order(cid)
    assert o.state == "PartiallyFilled" and o.filled_qty == Decimal("0.003")
    assert_invariants(repo, fake)
    fake.fill(cid, "0.002")
    om.resolve()
    om.resolve()  # replays change nothing
    assert len(repo.fills(cid)) == 2
    fake.advance({"BTCUSDT": 48_900})
    om.resolve()
    o = repo.get_order(cid)
    assert o.state == "Filled" and o.filled_qty == Decimal("0.010") and len(repo.fills(cid)) == 3
    assert_invariants(repo, fake)


def test_partial_fill_then_cancel(om, repo, fake):
    o = om.submit(intent("limit", qty="0.010", price="49000"))
    fake.fill(o.client_order_id, "0.004")
    assert om.cancel(o.client_order_id).state == "Cancelled"
    assert repo.get_order(o.client_order_id).filled_qty == Decimal("0.004")
    assert_invariants(repo, fake)


def test_delay_in_flight_order_is_not_rejected_early(om, repo, fake):
    """The request is held past the client's read timeout and processed afterwards (still within recv_window):
    the first query finds nothing -- the order must stay Unknown, then be found."""
    fake.delay(2.5, path=CREATE)  # well past the 0.5 s read timeout, even on a loaded machine
    o = om.submit(intent("limit", price="49000"))
    assert o.state == "Unknown" and fake.orders == []
    om.resolve()
    if not fake.orders:  # (the query normally runs before the held request is processed)
        assert repo.get_order(o.client_order_id).state == "Unknown"
    assert wait_for(lambda: len(fake.orders) == 1, timeout=10.0)
    om.resolve()
    assert repo.get_order(o.client_order_id).state == "Open" and fake.creates() == 1
    assert_invariants(repo, fake)


def test_d14_cancel_fill_race(om, repo, fake):
    o = om.submit(intent("limit", qty="0.010", price="49000"))
    fake.fill(o.client_order_id)  # filled before our cancel arrives -> 110008
    assert om.cancel(o.client_order_id).state == "Filled"
    assert_invariants(repo, fake)


def test_cancel_never_sent_is_local(om, repo, fake):
    o = om.prepare(intent())
    assert om.cancel(o.client_order_id).state == "Cancelled" and fake.private_count() == 0
    assert_invariants(repo, fake)


def test_d15_realtime_forgot_closed_order_found_in_history(om, repo, fake):
    fake.lose_ack()
    o = om.submit(intent())
    fake.forget_closed()
    om.resolve()
    assert repo.get_order(o.client_order_id).state == "Filled"
    assert_invariants(repo, fake)


def test_d15_external_position_change_alerts(om, repo, fake):
    om.submit(intent())
    om.resolve()
    assert om.check_positions() == {}
    fake.external_position_change("BTCUSDT", "0.5")
    mism = om.check_positions()
    assert mism == {"BTCUSDT": (Decimal("0.01"), Decimal("0.51"))}
    assert [a.code for a in repo.unacked_alerts()] == ["POSITION_MISMATCH"]
    assert fake.creates() == 1  # nothing traded to "fix" it
    assert_invariants(repo, fake, positions=False)


def test_halt_blocks_submit_and_created_resubmission(repo, fake, clock):
    om = OrderManager(repo, make_client(fake), clock=clock)
    o = om.prepare(intent())
    repo.set_halt("test")
    with pytest.raises(TradingHalted):
        om.submit(intent())
    om.resolve()
    assert repo.get_order(o.client_order_id).state == "Created" and fake.creates() == 0
