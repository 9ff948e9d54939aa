"""Simulator accounting: hand-worked cases and hypothesis invariants, through the external-orders sleeve."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eternal_engine.config import Config
from eternal_engine.data.market import MarketData
from eternal_engine.sim import simulate


def make_market(close, symbols=("BTC-PERP",), funding=None, spread=0.01, freq="1h"):
    close = np.asarray(close, dtype=float).reshape(len(close), -1)
    opn = np.vstack([close[:1], close[:-1]])
    high = np.maximum(opn, close) * (1 + spread)
    low = np.minimum(opn, close) * (1 - spread)
    idx = pd.date_range("2024-01-01", periods=len(close), freq=freq, tz="UTC")
    return MarketData(idx, symbols, opn, high, low, close, np.ones_like(close), funding)


def orders_frame(market, rows):
    df = pd.DataFrame(0.0, index=market.index, columns=list(market.symbols))
    for bar, sym, qty in rows:
        df.iloc[bar, df.columns.get_loc(sym)] += qty
    return df


def cfg(fee=0.0, slippage=0.0, fill="next_open", capital=10_000.0):
    return Config().with_overrides({
        "execution.perp_taker_fee": fee, "execution.spot_taker_fee": fee, "execution.slippage": slippage,
        "execution.fill": fill, "portfolio.initial_capital": capital,
    })


def test_hand_worked_perp_round_trip_with_fee_slippage_and_funding():
    # bars:        0      1      2      3
    close = [100.0, 110.0, 120.0, 90.0]
    funding = np.array([[0.0], [0.0], [0.001], [0.0]])  # settles in bar 2
    m = make_market(close, funding=funding)
    orders = orders_frame(m, [(0, "BTC-PERP", 2.0), (2, "BTC-PERP", -2.0)])
    r = simulate(m, cfg(fee=0.001, slippage=0.01), orders=orders)

    buy_px = 100.0 * 1.01  # bar 1 opens at bar 0's close, +1 % slippage
    sell_px = 120.0 * 0.99  # bar 3 opens at 120, -1 %
    buy_fee, sell_fee = 2 * buy_px * 0.001, 2 * sell_px * 0.001
    funding_paid = 2 * 110.0 * 0.001  # long pays a positive rate, priced at bar 2's open (110)
    fills = r.orders
    assert list(fills["side"]) == ["buy", "sell"]
    assert fills["price"].tolist() == pytest.approx([buy_px, sell_px], rel=1e-12)
    assert fills["fee"].tolist() == pytest.approx([buy_fee, sell_fee], rel=1e-12)
    assert list(fills.index) == [m.index[1], m.index[3]]
    assert r.funding_payments["amount"].tolist() == pytest.approx([-funding_paid])

    eq = r.equity.to_numpy()
    cash1 = 10_000 - 2 * buy_px - buy_fee
    assert eq[0] == pytest.approx(10_000)
    assert eq[1] == pytest.approx(cash1 + 2 * 110.0)
    assert eq[2] == pytest.approx(cash1 - funding_paid + 2 * 120.0)
    final = 10_000 + 2 * (sell_px - buy_px) - buy_fee - sell_fee - funding_paid
    assert eq[3] == pytest.approx(final, rel=1e-12)

    (trade,) = r.trades.itertuples()
    assert trade.direction == "long" and trade.exit_reason == "external"
    assert trade.gross_pnl == pytest.approx(2 * (sell_px - buy_px))
    assert trade.fees == pytest.approx(buy_fee + sell_fee)
    assert trade.funding == pytest.approx(-funding_paid)
    assert trade.pnl == pytest.approx(final - 10_000, rel=1e-12)


def test_short_receives_positive_funding():
    m = make_market([100.0, 100.0, 100.0], funding=np.array([[0.0], [0.0], [0.0005]]))
    r = simulate(m, cfg(), orders=orders_frame(m, [(0, "BTC-PERP", -1.0)]))
    assert r.funding_payments["amount"].tolist() == pytest.approx([100.0 * 0.0005])
    assert r.equity.iloc[-1] == pytest.approx(10_000 + 0.05)


def test_next_close_fills_at_the_following_close():
    m = make_market([100.0, 105.0, 111.0])
    r = simulate(m, cfg(fill="next_close"), orders=orders_frame(m, [(0, "BTC-PERP", 1.0)]))
    assert r.orders["price"].tolist() == [105.0]
    assert r.orders["price_type"].tolist() == ["close"]
    assert r.equity.iloc[-1] == pytest.approx(10_000 + 6.0)


def test_order_on_last_bar_is_logged_unfilled():
    m = make_market([100.0, 101.0])
    r = simulate(m, cfg(), orders=orders_frame(m, [(1, "BTC-PERP", 1.0)]))
    assert len(r.orders) == 0
    assert r.order_log["status"].tolist() == ["unfilled"]


def test_flip_closes_one_trade_and_opens_another():
    m = make_market([100.0, 110.0, 120.0, 100.0, 100.0])
    r = simulate(m, cfg(), orders=orders_frame(m, [(0, "BTC-PERP", 1.0), (1, "BTC-PERP", -3.0)]))
    t = r.trades
    assert t["direction"].tolist() == ["long", "short"]
    assert t["qty"].tolist() == [1.0, 2.0]
    assert t["gross_pnl"].tolist() == pytest.approx([10.0, 2 * (110.0 - 100.0)])  # short open, marked at 100
    assert t["exit_reason"].tolist() == ["external", "open"]


# ---------------------------------------------------------------- properties
prices = st.lists(st.floats(50.0, 150.0), min_size=3, max_size=40)


@st.composite
def market_and_orders(draw):
    close = np.array(draw(prices))
    n = len(close)
    second = close * np.array(draw(st.lists(st.floats(0.8, 1.2), min_size=n, max_size=n)))
    m = make_market(np.column_stack([close, second]), symbols=("BTC-SPOT", "ETH-PERP"),
                    funding=np.column_stack([np.zeros(n), np.array(draw(
                        st.lists(st.floats(-0.002, 0.002), min_size=n, max_size=n)))]))
    qty = draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(m.symbols), st.floats(-5, 5)),
                        max_size=12))
    return m, orders_frame(m, [q for q in qty if abs(q[2]) > 1e-6])


@given(market_and_orders(), st.floats(0, 0.002), st.floats(0, 0.002))
def test_equity_is_cash_plus_marked_positions_every_bar(mo, fee, slip):
    m, orders = mo
    r = simulate(m, cfg(fee=fee, slippage=slip), orders=orders)
    marked = r.cash.to_numpy() + (r.positions.to_numpy() * m.arrays.close).sum(axis=1)
    np.testing.assert_allclose(r.equity.to_numpy(), marked, rtol=1e-12, atol=1e-9)


@given(market_and_orders(), st.floats(0, 0.002))
def test_trade_pnl_adds_up_to_the_equity_change(mo, fee):
    m, orders = mo
    r = simulate(m, cfg(fee=fee, slippage=0.0005), orders=orders)
    assert r.trades["pnl"].sum() == pytest.approx(r.equity.iloc[-1] - 10_000, abs=1e-6)
    assert r.trades["fees"].sum() == pytest.approx(r.orders["fee"].sum(), abs=1e-9)
    assert r.trades["funding"].sum() == pytest.approx(r.funding_payments["amount"].sum(), abs=1e-9)


@given(market_and_orders(), st.floats(0, 0.002), st.floats(0, 0.002))
def test_higher_fees_never_raise_final_equity(mo, low_fee, extra):
    m, orders = mo
    low = simulate(m, cfg(fee=low_fee), orders=orders).equity.iloc[-1]
    high = simulate(m, cfg(fee=low_fee + extra), orders=orders).equity.iloc[-1]
    assert high <= low + 1e-9


@given(st.floats(1.0, 1e5), st.floats(0.01, 5.0), st.sampled_from(["BTC-SPOT", "BTC-PERP"]))
def test_zero_fee_round_trip_at_flat_price_changes_nothing(price, leverage, sym):
    # up to 5x: with the bars' 1 % wicks a perp at ~68x would be liquidated (tested in test_portfolio_rules)
    qty = leverage * 10_000 / price
    m = make_market(np.full((5, 2), price), symbols=("BTC-SPOT", "BTC-PERP"))
    r = simulate(m, cfg(), orders=orders_frame(m, [(0, sym, qty), (2, sym, -qty)]))
    assert (r.equity == 10_000).all()
    assert len(r.orders) == 2 and r.positions.iloc[-1].abs().sum() == 0


def test_orders_off_the_bar_grid_are_rejected():
    from eternal_engine.errors import DataError

    m = make_market([100.0, 101.0, 102.0])
    bad = pd.DataFrame({"BTC-PERP": [1.0]}, index=[m.index[0] + pd.Timedelta("30min")])
    with pytest.raises(DataError, match="not a bar"):
        simulate(m, cfg(), orders=bad)


def test_record_buffers_grow_when_a_run_trades_on_every_bar():
    from eternal_engine.sim.records import new_record_buffers

    n = 60_000
    close = 100 + np.sin(np.arange(n) / 7.0)
    m = make_market(close, freq="1min")
    assert len(new_record_buffers(n, 1, 1)[1]) < n  # the initial buffers cannot hold every fill
    qty = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    orders = pd.DataFrame({"BTC-PERP": qty}, index=m.index)
    r = simulate(m, cfg(fee=0.001), orders=orders)
    assert len(r.orders) == n - 1 and len(r.order_log) == n
    assert r.order_log["status"].iloc[:-1].eq("filled").all()
    np.testing.assert_array_equal(r.orders["bar"].to_numpy(), np.arange(1, n))
    marked = r.cash.to_numpy() + (r.positions.to_numpy() * m.arrays.close).sum(axis=1)
    np.testing.assert_allclose(r.equity.to_numpy(), marked, rtol=1e-12)
    assert r.trades["pnl"].sum() == pytest.approx(r.equity.iloc[-1] - 10_000, abs=1e-6)


def test_funding_after_long_flat_stretches_is_charged_on_every_settlement():
    n = 200  # hourly bars: settlements at 00, 08, 16 UTC
    m = make_market(np.full(n, 100.0), funding=np.where(
        (pd.date_range("2024-01-01", periods=n, freq="1h").hour % 8 == 0)[:, None], 0.0001, 0.0))
    orders = orders_frame(m, [(100, "BTC-PERP", 1.0), (180, "BTC-PERP", -1.0)])  # held bars 101..181
    r = simulate(m, cfg(), orders=orders)
    held = m.index[101:182]
    expected = held[held.hour % 8 == 0]
    assert list(r.funding_payments.index) == list(expected)
    assert r.funding_payments["amount"].tolist() == pytest.approx([-0.01] * len(expected))
    assert (r.equity.iloc[:101] == 10_000).all()
