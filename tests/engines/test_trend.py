"""TREND engine: signal oracle, hand-built stop/sizing scenarios, no look-ahead."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eternal_engine.config import Config
from eternal_engine.data.market import MarketData
from eternal_engine.engines import trend
from eternal_engine.engines.trend_nb import (
    LONG_ENTRY, LONG_EXIT, SHORT_ENTRY, SHORT_EXIT, TrendSignals, pack_signals, trend_flags_nb,
)
from eternal_engine.sim import simulate
from tests.helpers import UNGOVERNED


def signal_inputs(seed, n, k, fast_w, slow_w):
    """Random-walk closes (n x k), their SMAs as pandas frames, a uniform random 'ADX'."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, k)), axis=0))
    c = pd.DataFrame(close)
    return close, c, c.rolling(fast_w).mean(), c.rolling(slow_w).mean(), pd.DataFrame(rng.uniform(0, 50, (n, k)))


@pytest.mark.parametrize("cols", [[0, 1, 2], [2, 0, 1], [1], [2, 0]])
def test_signals_match_pandas_expressions(cols):
    # every instrument (one flat loop over the tables) or some of them (column by column, the rest 0)
    close, c, fast, slow, adx = signal_inputs(1, 500, 3, 20, 60)
    flags = trend_flags_nb(close, np.arange(3), np.array(cols), fast.to_numpy(), slow.to_numpy(), adx.to_numpy(),
                           25.0, np.full(close.shape, 255, dtype=np.uint8))
    le, se, lx, sx = ((flags & bit) != 0 for bit in (LONG_ENTRY, SHORT_ENTRY, LONG_EXIT, SHORT_EXIT))
    traded = np.isin(np.arange(3), cols)
    np.testing.assert_array_equal(le, ((c > slow) & (fast > slow) & (adx > 25)).to_numpy() & traded)
    np.testing.assert_array_equal(se, ((c < slow) & (fast < slow) & (adx > 25)).to_numpy() & traded)
    np.testing.assert_array_equal(lx, (c < slow).to_numpy() & traded)
    np.testing.assert_array_equal(sx, (c > slow).to_numpy() & traded)
    assert not flags[:, ~traded].any() and flags.max() <= 15


def test_signals_of_a_subset_of_instruments_read_their_columns_of_the_tables():
    # tables over instruments 1 and 3 of four (``at`` maps an instrument to its column)
    n = 300
    close, c, fast, slow, adx = signal_inputs(2, n, 2, 10, 30)
    at = np.array([-1, 0, -1, 1])
    flags = trend_flags_nb(close, at, np.array([3, 1]), fast.to_numpy(), slow.to_numpy(), adx.to_numpy(), 20.0,
                           np.full((n, 4), 255, dtype=np.uint8))
    ref = trend_flags_nb(close, np.arange(2), np.arange(2), fast.to_numpy(), slow.to_numpy(), adx.to_numpy(), 20.0,
                         np.empty((n, 2), dtype=np.uint8))
    np.testing.assert_array_equal(flags[:, [1, 3]], ref)
    assert not flags[:, [0, 2]].any()
    np.testing.assert_array_equal((ref[:, 0] & LONG_ENTRY) != 0,
                                  ((c[0] > slow[0]) & (fast[0] > slow[0]) & (adx[0] > 20)).to_numpy())


def scripted_market(opens, highs, lows, closes, symbol="BTC-PERP"):
    n = len(closes)
    idx = pd.date_range("2024-01-01", periods=n, freq="1D", tz="UTC")
    col = lambda v: np.asarray(v, dtype=float).reshape(n, 1)  # noqa: E731
    return MarketData(idx, [symbol], col(opens), col(highs), col(lows), col(closes), np.ones((n, 1)))


def scripted_signals(n, long_entry=(), short_entry=(), long_exit=(), short_exit=(), atr=1.0):
    def mask(bars):
        a = np.zeros((n, 1), dtype=bool)
        a[list(bars), 0] = True
        return a
    flags = pack_signals(mask(long_entry), mask(short_entry), mask(long_exit), mask(short_exit))
    return TrendSignals(flags, np.full((n, 1), atr), np.ones((n, 1), dtype=np.float32))


def run_scripted(monkeypatch, market, signals, **overrides):
    monkeypatch.setattr(trend, "prepare", lambda m, c: signals)
    base = {"trend.symbols": [market.symbols[0]], "execution.slippage": 0.0, "execution.perp_taker_fee": 0.0,
            "execution.spot_taker_fee": 0.0, "portfolio.initial_capital": 10_000.0, **UNGOVERNED}
    return simulate(market, Config().with_overrides({**base, **overrides}), engines=["trend"])


def test_long_entry_sized_by_risk_then_trailing_stop_fills_at_stop(monkeypatch):
    # entry decided on bar 0's close, filled at bar 1's open (100); ATR 2 -> stop 100 - 3*2 = 94
    o = [100, 100, 104, 108, 108, 106]
    h = [101, 105, 110, 109, 108, 107]
    lo = [99, 99, 103, 106, 101, 100]
    c = [100, 104, 108, 108, 106, 101]
    m = scripted_market(o, h, lo, c)
    r = run_scripted(monkeypatch, m, scripted_signals(6, long_entry=[0], atr=2.0))
    qty = 0.01 * 10_000 / (3 * 2.0)  # 1 % risk over the stop distance: 16.67 (notional 1,667 < 50 % cap)
    fills = r.orders
    assert fills["qty"].iloc[0] == pytest.approx(qty)
    assert fills["price"].iloc[0] == 100.0
    # closes: bar1 high 105 -> stop 99; bar2 high 110 -> 104; bar3: 109 < 110 keeps 104; bar4 low 101 hits 104
    assert fills.index[1] == m.index[4]
    assert fills["price_type"].iloc[1] == "stop" and fills["reason"].iloc[1] == "trailing_stop"
    assert fills["price"].iloc[1] == pytest.approx(104.0)
    assert r.trades["pnl"].iloc[0] == pytest.approx(qty * 4.0)


def test_stop_gapped_through_fills_at_the_open(monkeypatch):
    o = [100, 100, 90, 90]
    h = [101, 101, 91, 91]
    lo = [99, 99, 89, 89]
    c = [100, 100, 90, 90]
    m = scripted_market(o, h, lo, c)
    r = run_scripted(monkeypatch, m, scripted_signals(4, long_entry=[0], atr=2.0))
    exit_fill = r.orders.iloc[1]
    assert exit_fill["price_type"] == "stop" and exit_fill["price"] == 90.0  # stop 94, opened at 90


def test_short_on_perp_and_exit_on_sma_cross(monkeypatch):
    m = scripted_market([100] * 5, [101] * 5, [99] * 5, [100] * 5)
    r = run_scripted(monkeypatch, m, scripted_signals(5, short_entry=[0], short_exit=[2], atr=2.0))
    f = r.orders
    assert f["side"].tolist() == ["sell", "buy"]
    assert f["reason"].tolist() == ["entry_short", "exit_signal"]
    assert f.index.tolist() == [m.index[1], m.index[3]]


def test_no_shorts_on_spot(monkeypatch):
    m = scripted_market([100] * 5, [101] * 5, [99] * 5, [100] * 5, symbol="BTC-SPOT")
    r = run_scripted(monkeypatch, m, scripted_signals(5, short_entry=[0], atr=2.0))
    assert len(r.orders) == 0


def test_position_cap_per_asset(monkeypatch):
    m = scripted_market([100] * 4, [100.5] * 4, [99.5] * 4, [100] * 4)
    # tiny ATR -> risk sizing would ask 10,000*0.01/(3*0.01) = 3,333 units; the 50 % cap allows 50
    r = run_scripted(monkeypatch, m, scripted_signals(4, long_entry=[0], atr=0.01))
    assert r.orders["qty"].iloc[0] == pytest.approx(0.5 * 10_000 / 100)


def test_leverage_cap_on_gross_notional(monkeypatch):
    n = 4
    idx = pd.date_range("2024-01-01", periods=n, freq="1D", tz="UTC")
    px = np.full((n, 2), 100.0)
    m = MarketData(idx, ["BTC-PERP", "ETH-PERP"], px, px + 0.5, px - 0.5, px, np.ones((n, 2)))
    entry = np.zeros((n, 2), dtype=bool)
    entry[0] = True
    off = np.zeros((n, 2), dtype=bool)
    sig = TrendSignals(pack_signals(entry, off, off, off), np.full((n, 2), 0.01), np.ones((n, 2), np.float32))
    r = run_scripted(monkeypatch, m, sig, **{"trend.symbols": ["BTC-PERP", "ETH-PERP"],
                                             "trend.max_position": 1.0, "trend.max_leverage": 1.5})
    # BTC takes its full 100 % cap (100 units); ETH gets what is left of 1.5x: 5,000 / 100 = 50 units
    entries = r.orders[r.orders["reason"] == "entry_long"]
    assert entries["qty"].tolist() == pytest.approx([100.0, 50.0])


@settings(max_examples=15)
@given(st.integers(260, 590), st.floats(0.5, 2.0))
def test_no_look_ahead_changing_later_data_changes_nothing_before(cut, factor):
    from eternal_engine.data import synthetic

    m = synthetic(years=600 / 365, freq="1D", seed=3, symbols=("BTC",))
    a = m.arrays
    scaled = [x.copy() for x in (a.open, a.high, a.low, a.close)]
    for x in scaled:
        x[cut:] *= factor  # a different future from bar `cut` on (still valid OHLC)
    m2 = MarketData(m.index, m.symbols, *scaled, a.volume, a.funding)
    cfg = Config().with_overrides({"trend.symbols": ["BTC-PERP"], "trend.sma_slow": 100, "trend.sma_fast": 20})
    r1, r2 = simulate(m, cfg, engines=["trend"]), simulate(m2, cfg, engines=["trend"])
    np.testing.assert_array_equal(r1.equity.to_numpy()[:cut], r2.equity.to_numpy()[:cut])
    f1, f2 = r1.orders, r2.orders
    pd.testing.assert_frame_equal(f1[f1["bar"] < cut], f2[f2["bar"] < cut])


def test_next_close_entry_does_not_trail_from_the_extremes_before_it(monkeypatch):
    # entry decided on bar 0, filled at bar 1's close (100); bar 1 spiked to 200 before that close
    o = [100, 100, 100, 100]
    h = [101, 200, 101, 101]
    lo = [99, 99, 99, 99]
    c = [100, 100, 100, 100]
    m = scripted_market(o, h, lo, c)
    r = run_scripted(monkeypatch, m, scripted_signals(4, long_entry=[0], atr=2.0),
                     **{"execution.fill": "next_close"})
    # a stop trailed from the spike would sit at 200 - 6 = 194 and fire on bar 2; from the entry it is 94
    assert r.orders["reason"].tolist() == ["entry_long"]
    assert r.orders["price_type"].tolist() == ["close"]
