"""BybitClient (unmodified pybit over loopback) against the fake Bybit V5 exchange."""
from __future__ import annotations

import json
import logging
import time
from decimal import Decimal

import pytest
import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from live.bybit import (
    AmbiguousError,
    AuthError,
    BybitClient,
    ClockSkewError,
    DuplicateOrderError,
    ExchangeError,
    InsufficientBalanceError,
    OrderNotActiveError,
    RateLimitError,
    RejectedError,
    TokenBucket,
    TransientError,
    classify,
)
from tests.fakes.bybit_exchange import FakeBybitExchange, sign, sign_ws
from tests.live.exchange_setup import CREATE, KEY, SECRET, make_client, start_exchange


@pytest.fixture
def exchange():
    with start_exchange() as fake:
        yield fake


@pytest.fixture
def client(exchange):
    return make_client(exchange)


# --------------------------------------------------------------------------------------------- signatures (A.2)
def test_golden_vectors_recomputed_by_the_fake_verifier():
    fake = FakeBybitExchange(api_key="testkey", api_secret="testsecret")
    ts, rw = 1700000000000, 5000
    q = "category=linear&orderLinkId=el-1&symbol=BTCUSDT"
    assert fake.expected_signature(ts, rw, q) == "03bed34a9343da1e65623846ddc519549d9f79854791f283113487e5259950dd"
    body = ('{"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.001", '
            '"price": "50000", "timeInForce": "PostOnly", "orderLinkId": "el-1"}')
    assert fake.expected_signature(ts, rw, body.encode()) == \
        "c380da5a370830dadf035b386cb4dbe00b8d8650fa05a82da1c275888efb6b43"
    assert sign_ws("testsecret", 1700000001000) == "26df689652787d6e2816d6ac43239f177f3a452676ef6c0a64e80828cb7144c7"
    # pybit's own serialisation produces exactly these payloads
    assert HTTP.prepare_payload("GET", {"symbol": "BTCUSDT", "category": "linear", "orderLinkId": "el-1"}) == q
    assert HTTP.prepare_payload("POST", {"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
                                         "orderType": "Limit", "qty": 0.001, "price": "50000",
                                         "timeInForce": "PostOnly", "orderLinkId": "el-1"}) == body


def test_verifier_uses_raw_bytes_not_reserialised_json(exchange):
    """A body signed with other separators is valid as sent; re-serialising would break it."""
    body = b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.001"}'
    ts = int(time.time() * 1000)
    headers = {"X-BAPI-API-KEY": KEY, "X-BAPI-TIMESTAMP": str(ts), "X-BAPI-RECV-WINDOW": "5000",
               "X-BAPI-SIGN": sign(SECRET, KEY, ts, 5000, body), "Content-Type": "application/json"}
    r = requests.post(exchange.url + CREATE, data=body, headers=headers, timeout=2)
    assert r.json()["retCode"] == 0
    headers["X-BAPI-SIGN"] = sign(SECRET, KEY, ts, 5000, json.dumps(json.loads(body)))
    r = requests.post(exchange.url + CREATE, data=body, headers=headers, timeout=2)
    assert r.json()["retCode"] == 10004
    r = requests.get(exchange.url + "/v5/order/realtime?category=linear&symbol=BTCUSDT", headers=headers, timeout=2)
    assert r.json()["retCode"] == 10004


# --------------------------------------------------------------------------------------------- happy path
def test_market_data_and_instruments(client, exchange):
    lin = client.instrument("linear", "BTCUSDT")
    assert (lin.qty_step, lin.tick_size, lin.min_qty, lin.min_notional) == (
        Decimal("0.001"), Decimal("0.10"), Decimal("0.001"), Decimal("5"))
    spot = client.instrument("spot", "BTCUSDT")  # spot: basePrecision / minOrderAmt
    assert (spot.qty_step, spot.min_notional, spot.tick_size) == (Decimal("0.000001"), Decimal("5"), Decimal("0.01"))
    k = client.klines("linear", "BTCUSDT", "60", limit=5)
    assert len(k) == 5 and k.index.is_monotonic_increasing
    src = exchange.klines("linear", "BTCUSDT", "60")
    assert k["close"].iloc[-1] == src["close"].iloc[-1]
    f = client.funding_history("BTCUSDT", limit=3)
    assert len(f) == 3 and f.index.is_monotonic_increasing
    t = client.tickers("linear", "BTCUSDT")
    assert t[0]["lastPrice"] == "50000"
    ob = client.orderbook("linear", "BTCUSDT", limit=3)
    assert ob.bids[0][0] < ob.asks[0][0] and len(ob.asks) == 3
    assert abs(client.clock_skew_ms()) < 1000


def test_limit_order_round_trip(client, exchange):
    ack = client.place_order("linear", "BTCUSDT", "Buy", "0.0105", price="49000.07", client_order_id="el-rt-1")
    assert ack.qty == Decimal("0.010") and ack.price == Decimal("49000.0")  # floored to step / tick (buy: down)
    o = client.get_order("linear", "BTCUSDT", client_order_id="el-rt-1")
    assert o.status == "New" and o.order_id == ack.order_id and o.is_open
    assert [x.client_order_id for x in client.open_orders("linear", "BTCUSDT")] == ["el-rt-1"]
    assert client.executions("linear", "BTCUSDT") == []
    exchange.advance({"BTCUSDT": 49_500})
    assert client.get_order("linear", "BTCUSDT", client_order_id="el-rt-1").status == "New"
    made = exchange.advance({"BTCUSDT": 48_900})
    assert len(made) == 1
    o = client.get_order("linear", "BTCUSDT", client_order_id="el-rt-1")
    assert o.status == "Filled" and o.cum_exec_qty == Decimal("0.01") and o.avg_price == Decimal("49000")
    ex = client.executions("linear", "BTCUSDT", client_order_id="el-rt-1")
    assert len(ex) == 1 and ex[0].is_maker and ex[0].price == Decimal("49000") and ex[0].qty == Decimal("0.01")
    assert ex[0].fee == Decimal("0.098")  # 490 * 0.0002
    (pos,) = client.positions("linear", "BTCUSDT")
    assert pos.side == "Buy" and pos.signed_size == Decimal("0.01") and pos.avg_price == Decimal("49000")
    w = client.wallet_balance()
    assert w.coins["USDT"].wallet_balance == Decimal("100000") - Decimal("0.098")
    assert client.positions() == [pos] or client.positions()[0].symbol == "BTCUSDT"
    assert exchange.accepted_creates("el-rt-1") == 1 and len(exchange.orders_with_link_id("el-rt-1")) == 1


def test_market_orders_spot_and_linear_and_cancel(client, exchange):
    exchange.slippage_bps = Decimal(10)
    client.place_order("linear", "ETHUSDT", "Sell", "0.5", order_type="Market", client_order_id="m-1")
    o = client.get_order("linear", "ETHUSDT", client_order_id="m-1")
    assert o.status == "Filled" and o.avg_price == Decimal("1998")  # 2000 - 10 bp
    assert client.positions("linear", "ETHUSDT")[0].signed_size == Decimal("-0.5")
    client.place_order("spot", "BTCUSDT", "Buy", "0.01", order_type="Market", client_order_id="s-1",
                       reference_price=50_000)
    w = client.wallet_balance()
    assert w.coins["BTC"].wallet_balance == Decimal("0.01") * (1 - Decimal("0.001"))
    # PostOnly that would cross: accepted, then Cancelled with the documented reason
    client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="50100", time_in_force="PostOnly",
                       client_order_id="po-1")
    o = client.get_order("linear", "BTCUSDT", client_order_id="po-1")
    assert o.status == "Cancelled" and o.reject_reason == "EC_PostOnlyWillTakeLiquidity"
    # cancel a resting order, then cancelling again is "not active"
    client.place_order("linear", "BTCUSDT", "Sell", "0.01", price="51000", client_order_id="c-1")
    client.cancel_order("linear", "BTCUSDT", client_order_id="c-1")
    assert client.get_order("linear", "BTCUSDT", client_order_id="c-1").status == "Cancelled"
    with pytest.raises(OrderNotActiveError) as ei:
        client.cancel_order("linear", "BTCUSDT", client_order_id="c-1")
    assert ei.value.ret_code == 110008
    # history still finds closed orders after a Bybit restart cleared the realtime buffer
    exchange.forget_closed()
    assert client.get_order("linear", "BTCUSDT", client_order_id="c-1").status == "Cancelled"
    assert client.get_order("linear", "BTCUSDT", client_order_id="never-sent") is None


def test_external_position_change_is_visible(client, exchange):
    exchange.external_position_change("BTCUSDT", "-0.02")
    (pos,) = client.positions("linear", "BTCUSDT")
    assert pos.signed_size == Decimal("-0.02") and pos.side == "Sell"
    assert client.executions("linear") == []  # no fills: changed outside the engine


# --------------------------------------------------------------------------------------------- faults
def test_lost_ack_is_ambiguous_and_the_order_is_found(client, exchange):
    exchange.lose_ack(1)  # connection closed after the order was created
    with pytest.raises(AmbiguousError) as ei:
        client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="la-1")
    assert ei.value.client_order_id == "la-1"
    o = client.get_order("linear", "BTCUSDT", client_order_id="la-1")
    assert o is not None and o.status == "New"
    # a resend with the same orderLinkId reports the duplicate; the exchange still holds exactly one order
    with pytest.raises(DuplicateOrderError) as ei:
        client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="la-1")
    assert ei.value.ret_code == 110072 and isinstance(ei.value, RejectedError)
    assert len(exchange.orders_with_link_id("la-1")) == 1 and exchange.accepted_creates("la-1") == 1


def test_lost_ack_by_timeout_is_ambiguous(client, exchange):
    exchange.lose_ack(1, mode="timeout", hang=1.5)
    t0 = time.monotonic()
    with pytest.raises(AmbiguousError, match="outcome unknown"):
        client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="la-2")
    assert time.monotonic() - t0 < 1.4
    assert client.get_order("linear", "BTCUSDT", client_order_id="la-2").status == "New"
    assert exchange.creates("la-2") == 1


def test_ambiguous_write_is_never_retried(exchange):
    client = make_client(exchange, retries=3)
    exchange.lose_ack(1)
    with pytest.raises(AmbiguousError):
        client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="nr-1")
    assert exchange.creates("nr-1") == 1


def test_read_timeout_on_a_read_is_transient(client, exchange):
    exchange.delay(1.0, path="/v5/position/list")
    with pytest.raises(TransientError):
        client.positions("linear", "BTCUSDT")


def test_rate_limit_10006_is_transient(exchange):
    client = make_client(exchange, retries=2)
    exchange.rate_limit(10, path=CREATE, reset_ms=20)
    with pytest.raises(RateLimitError) as ei:
        client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="rl-1")
    assert isinstance(ei.value, TransientError) and ei.value.ret_code == 10006
    assert exchange.creates("rl-1") == 3 and exchange.order("rl-1") is None
    exchange.clear_faults()
    exchange.rate_limit(1, path=CREATE, reset_ms=20)  # one 10006, then the same orderLinkId goes through
    client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="rl-1")
    assert exchange.creates("rl-1") == 5 and exchange.accepted_creates("rl-1") == 1


def test_5xx_before_acceptance_is_transient(client, exchange):
    exchange.error_5xx(before=True)
    with pytest.raises(TransientError) as ei:
        client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="x5-1")
    assert ei.value.http_status == 503 and not isinstance(ei.value, AmbiguousError)
    assert exchange.order("x5-1") is None


def test_5xx_after_acceptance_is_ambiguous(client, exchange):
    exchange.error_5xx(before=False)
    with pytest.raises(AmbiguousError) as ei:
        client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="x5-2")
    assert ei.value.http_status == 502
    assert client.get_order("linear", "BTCUSDT", client_order_id="x5-2").status == "New"


def test_duplicate_order_link_id_spot(client, exchange):
    client.place_order("spot", "BTCUSDT", "Buy", "0.001", price="40000", client_order_id="dup-s")
    with pytest.raises(DuplicateOrderError) as ei:
        client.place_order("spot", "BTCUSDT", "Buy", "0.001", price="40000", client_order_id="dup-s")
    assert ei.value.ret_code == 170141


@pytest.mark.parametrize("kw", [
    dict(qty="0.0004", price="49000"),            # below min qty after flooring
    dict(qty="0.0001", price="49000"),            # floors to zero
    dict(qty="0.001", price="4000"),              # notional 4 < 5 USDT
    dict(qty="0.001", order_type="Market", reference_price="4000"),
])
def test_filter_violations_are_rejected_before_any_request(client, exchange, kw):
    client.instrument("linear", "BTCUSDT")
    before = exchange.request_count
    with pytest.raises(RejectedError) as ei:
        client.place_order("linear", "BTCUSDT", "Buy", client_order_id="flt-1", **kw)
    assert ei.value.ret_code is None
    assert exchange.request_count == before and exchange.creates() == 0


def test_bad_client_order_id_is_rejected_locally(client, exchange):
    with pytest.raises(RejectedError):
        client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="x" * 37)
    assert exchange.request_count == 0


def test_exchange_side_filter_and_balance_rejects(client, exchange):
    # bypass the client's rounding by handing a looser instrument: the fake enforces the real filters
    from dataclasses import replace
    loose = replace(client.instrument("linear", "BTCUSDT"), qty_step=Decimal("0.0001"), min_qty=Decimal("0.0001"),
                    min_notional=Decimal(0))
    with pytest.raises(RejectedError) as ei:
        client.place_order("linear", "BTCUSDT", "Buy", "0.0015", price="49000", client_order_id="f-1",
                           instrument=loose)
    assert ei.value.ret_code == 10001 and exchange.creates(outcome="error:10001") == 1
    with pytest.raises(RejectedError) as ei:
        client.place_order("linear", "BTCUSDT", "Buy", "0.0001", price="40000", client_order_id="f-2",
                           instrument=loose)
    assert ei.value.ret_code in (110017, 10001)
    with pytest.raises(InsufficientBalanceError) as ei:
        client.place_order("linear", "BTCUSDT", "Buy", "100", price="49000", client_order_id="f-3")
    assert ei.value.ret_code == 110007
    with pytest.raises(InsufficientBalanceError) as ei:
        client.place_order("spot", "BTCUSDT", "Sell", "1", price="49000", client_order_id="f-4")
    assert ei.value.ret_code == 170131
    assert exchange.accepted_creates() == 0


def test_clock_skew_is_rejected_with_sync_hint(client, exchange):
    exchange.clock_skew(-20_000)  # server 20 s behind: our timestamps are in its future
    with pytest.raises(ClockSkewError, match="sync the system clock") as ei:
        client.positions("linear", "BTCUSDT")
    assert isinstance(ei.value, RejectedError) and ei.value.ret_code == 10002
    assert client.clock_skew_ms() < -15_000
    exchange.clock_skew(+20_000)
    with pytest.raises(ClockSkewError):
        client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="ck-1")
    assert exchange.order("ck-1") is None


def test_bad_signature_is_rejected_with_sync_hint(exchange):
    client = make_client(exchange, secret="wrong-secret-0000")
    with pytest.raises(AuthError, match="sync the system clock") as ei:
        client.wallet_balance()
    assert isinstance(ei.value, RejectedError) and ei.value.ret_code == 10004
    bad_key = BybitClient("nokey", SECRET, endpoint=exchange.url, timeout=(1, 1), retries=0)
    with pytest.raises(AuthError) as ei:
        bad_key.wallet_balance()
    assert ei.value.ret_code == 10003 or ei.value.http_status == 401


def test_connection_refused_is_transient_even_for_writes(exchange):
    url = exchange.url
    exchange.stop()
    client = BybitClient(KEY, SECRET, endpoint=url, timeout=(0.5, 0.5), retries=0)
    from live.bybit.client import Instrument
    inst = Instrument("linear", "BTCUSDT", "BTC", "USDT", "Trading", Decimal("0.001"), Decimal("0.1"),
                      Decimal("0.001"), None, Decimal(5))
    with pytest.raises(TransientError) as ei:
        client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id="cr-1",
                           instrument=inst)
    assert not isinstance(ei.value, AmbiguousError)


# --------------------------------------------------------------------------------------------- classify()
def _inv(code, msg="x"):
    return InvalidRequestError(request="POST /v5/order/create: {}", message=msg, status_code=code, time="00:00:00",
                               resp_headers={})


def _failed(status, msg="HTTP status code is not 200."):
    return FailedRequestError(request="POST /v5/order/create: {}", message=msg, status_code=status,
                              time="00:00:00", resp_headers={})


@pytest.mark.parametrize("exc, is_write, cls", [
    (_inv(10006), True, RateLimitError),
    (_inv(10016), True, AmbiguousError),
    (_inv(10016), False, TransientError),
    (_inv(10000), True, AmbiguousError),
    (_inv(170146), True, AmbiguousError),
    (_inv(10001), True, RejectedError),
    (_inv(110072), True, DuplicateOrderError),
    (_inv(170141), True, DuplicateOrderError),
    (_inv(110007), True, InsufficientBalanceError),
    (_inv(170131), True, InsufficientBalanceError),
    (_inv(110008), True, OrderNotActiveError),
    (_inv(10002), False, ClockSkewError),
    (_inv(10004), False, AuthError),
    (_failed(502), True, AmbiguousError),
    (_failed(502), False, TransientError),
    (_failed(503), True, TransientError),
    (_failed(429), True, RateLimitError),
    (_failed(400, "Bad Request. Retries exceeded maximum."), True, AmbiguousError),
    (_failed(409, "Conflict. Could not decode JSON."), True, AmbiguousError),
    (requests.exceptions.ConnectTimeout("x"), True, TransientError),
    (requests.exceptions.ReadTimeout("x"), True, AmbiguousError),
    (requests.exceptions.ReadTimeout("x"), False, TransientError),
    (requests.exceptions.ConnectionError(ConnectionResetError("reset")), True, AmbiguousError),
    (requests.exceptions.ConnectionError(ConnectionRefusedError("refused")), True, TransientError),
    (requests.exceptions.ChunkedEncodingError("x"), True, AmbiguousError),
    ({"retCode": 110094, "retMsg": "min notional"}, True, RejectedError),
])
def test_classify(exc, is_write, cls):
    err = classify(exc, is_write=is_write, operation="op")
    assert type(err) is cls
    assert isinstance(err, ExchangeError)
    if cls is not AmbiguousError:
        assert not isinstance(err, AmbiguousError)


# --------------------------------------------------------------------------------------------- rate limiting
def test_token_bucket_keeps_every_rolling_second_under_the_limit():
    now = [0.0]
    bucket = TokenBucket.for_limit(10, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    stamps = []
    for _ in range(40):
        bucket.acquire()
        stamps.append(now[0])
    for i, t in enumerate(stamps):
        assert sum(1 for u in stamps[i:] if u < t + 1.0) <= 10
    assert stamps[-1] > 3.0  # 40 requests at 9/s


def test_client_rate_limiter_spaces_order_writes(exchange):
    client = make_client(exchange, rate_limits={"order:linear": 10})
    client.instrument("linear", "BTCUSDT")
    t0 = time.monotonic()
    for i in range(12):
        client.place_order("linear", "BTCUSDT", "Buy", "0.001", price="40000", client_order_id=f"burst-{i}")
    assert time.monotonic() - t0 >= 1.0  # 1 burst token + 11 at 9/s
    stamps = [j.at for j in exchange.journal if j.path == CREATE]
    for i, t in enumerate(stamps):
        assert sum(1 for u in stamps[i:] if u < t + 1.0) <= 10


# --------------------------------------------------------------------------------------------- secrets
def test_secret_never_in_messages_repr_or_logs(exchange, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(exchange, retries=1)
    seen = [repr(client), str(client), repr(client._session)]
    faults = [lambda: exchange.lose_ack(1), lambda: exchange.error_5xx(before=False),
              lambda: exchange.error_5xx(before=True, n=5), lambda: exchange.rate_limit(5, path=CREATE, reset_ms=5),
              lambda: exchange.clock_skew(30_000)]
    for i, fault in enumerate(faults):
        exchange.clear_faults()
        fault()
        with pytest.raises(ExchangeError) as ei:
            client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="49000", client_order_id=f"sec-{i}")
        e = ei.value
        seen += [str(e), repr(e), str(e.__cause__), repr(e.__cause__), str(e.args)]
    exchange.clear_faults()
    with pytest.raises(AuthError) as ei:
        make_client(exchange, secret=SECRET[::-1]).wallet_balance()
    seen += [str(ei.value), repr(ei.value)]
    seen += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert len(caplog.records) > 0
    for text in seen:
        assert SECRET not in text and SECRET[::-1] not in text
