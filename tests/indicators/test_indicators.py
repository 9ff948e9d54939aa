"""Indicator kernels against their oracles (pandas, TA-Lib), hand-worked Wilder arithmetic, and the wrappers."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import eternal_engine.indicators as ind
from eternal_engine.errors import ConfigError, DataError
from eternal_engine.indicators import nb

RTOL = 1e-9
NAN = np.nan


def assert_same(actual, expected, rtol=RTOL):
    """Same NaN positions, and values within ``rtol`` relative (exact where the oracle gives 0)."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg="NaN positions differ")
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)


def random_ohlc(n, k, seed, tick=None):
    """Geometric random walks (time x k) with high/low around open/close; ``tick`` rounds to a price grid."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, k)), axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.005, (n, k))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.005, (n, k))))
    if tick:  # many equal highs/lows: ties in +DM/-DM and zero moves
        high, low, close = (np.round(x / tick) * tick for x in (high, low, close))
    return high, low, close


def with_nans(*arrays):
    """Column 1 gets one missing bar mid-series, column 2 starts 30 bars late (a symbol listed later)."""
    out = [a.copy() for a in arrays]
    for a in out:
        a[100, 1] = NAN
        a[:30, 2] = NAN
    return out


def talib_cols(func, *arrays, **kwargs):
    """Apply a TA-Lib function column by column."""
    return np.column_stack([func(*(a[:, j] for a in arrays), **kwargs) for j in range(arrays[0].shape[1])])


# ---------------------------------------------------------------- kernels vs pandas


@pytest.mark.parametrize("window", [1, 2, 7, 50])
def test_sma_matches_pandas_rolling_mean_with_nans(window):
    (close,) = with_nans(random_ohlc(400, 3, seed=1)[2])
    assert_same(nb.sma_nb(close, window), pd.DataFrame(close).rolling(window).mean())


def test_sma_stays_within_1e9_of_pandas_over_5_million_bars():
    rng = np.random.default_rng(2)
    close = (20_000 * np.exp(np.cumsum(rng.normal(0, 0.001, 5_000_000)))).reshape(-1, 1)
    assert_same(nb.sma_nb(close, 200), pd.DataFrame(close).rolling(200).mean())


def test_sma_of_a_flat_window_is_exactly_its_value():
    a = np.array([[0.1], [0.7], [0.3], [0.3], [0.3]])
    assert nb.sma_nb(a, 3)[4, 0] == 0.3


@pytest.mark.parametrize("window", [1, 3, 30])
def test_rolling_max_matches_pandas_with_nans(window):
    (close,) = with_nans(random_ohlc(400, 3, seed=3)[2])
    assert_same(nb.rolling_max_nb(close, window), pd.DataFrame(close).rolling(window).max())


def test_rolling_max_with_window_0_is_cummax():
    (close,) = with_nans(random_ohlc(400, 3, seed=4)[2])
    assert_same(nb.rolling_max_nb(close, 0), pd.DataFrame(close).cummax())


def test_rolling_max_small_case_by_hand():
    a = np.array([[3.0], [1.0], [2.0], [NAN], [5.0], [4.0], [1.0]])
    # window 2: [-, max(3,1), max(1,2), NaN in window, NaN in window, max(5,4), max(4,1)]
    assert_same(nb.rolling_max_nb(a, 2)[:, 0], [NAN, 3, 2, NAN, NAN, 5, 4])
    assert_same(nb.rolling_max_nb(a, 0)[:, 0], [3, 3, 3, NAN, 5, 5, 5])


def test_drawdown_from_peak_matches_pandas():
    (close,) = with_nans(random_ohlc(400, 3, seed=5)[2])
    df = pd.DataFrame(close)
    assert_same(nb.drawdown_from_peak_nb(close), df / df.cummax() - 1)


def test_drawdown_from_peak_small_case_by_hand():
    a = np.array([[100.0], [120.0], [90.0], [130.0]])
    assert_same(nb.drawdown_from_peak_nb(a)[:, 0], [0, 0, 90 / 120 - 1, 0])  # -0.25 at 90 after a 120 peak


@pytest.mark.parametrize("window", [2, 20])
def test_realized_vol_matches_pandas_with_nans(window):
    (close,) = with_nans(random_ohlc(400, 3, seed=6)[2])
    oracle = np.log(pd.DataFrame(close)).diff().rolling(window).std() * np.sqrt(8760)
    assert_same(nb.realized_vol_nb(close, window, 8760.0), oracle)


def test_realized_vol_small_case_by_hand():
    close = np.exp(np.array([[0.0], [1.0], [0.0], [1.0]]))  # log returns +1, -1, +1
    # std(ddof=1) of (+1, -1) = sqrt(((1-0)^2 + (-1-0)^2) / 1) = sqrt(2); times sqrt(4) = 2
    assert_same(nb.realized_vol_nb(close, 2, 4.0)[:, 0], [NAN, NAN, 2 * np.sqrt(2), 2 * np.sqrt(2)], rtol=1e-12)


# ---------------------------------------------------------------- kernels vs TA-Lib


@pytest.mark.parametrize("span", [1, 2, 10, 30])
def test_ema_matches_talib_with_nans(span):
    (close,) = with_nans(random_ohlc(400, 3, seed=7)[2])
    assert_same(nb.ema_nb(close, span), talib_cols(talib.EMA, close, timeperiod=span))


def test_ema_seeds_with_the_mean_of_the_first_span_values_unlike_pandas():
    a = np.arange(1.0, 7.0).reshape(-1, 1)  # 1..6, span 3, k = 2 / (3 + 1) = 0.5
    # seed (1+2+3)/3 = 2 at index 2; then (4-2)*0.5+2 = 3, (5-3)*0.5+3 = 4, (6-4)*0.5+4 = 5
    assert_same(nb.ema_nb(a, 3)[:, 0], [NAN, NAN, 2, 3, 4, 5], rtol=1e-12)
    # pandas adjust=False seeds with a[0]: 1, 1.5, 2.25, ... so it is not the same indicator
    assert pd.Series(a[:, 0]).ewm(span=3, adjust=False).mean().iloc[2] == 2.25


@pytest.mark.parametrize("window", [1, 2, 14])
def test_atr_matches_talib_with_nans(window):
    high, low, close = with_nans(*random_ohlc(400, 3, seed=8))
    assert_same(nb.atr_nb(high, low, close, window), talib_cols(talib.ATR, high, low, close, timeperiod=window))


@pytest.mark.parametrize("tick", [None, 0.5])
@pytest.mark.parametrize("window", [2, 3, 14])
def test_adx_and_dis_match_talib_with_nans(window, tick):
    high, low, close = with_nans(*random_ohlc(400, 3, seed=9, tick=tick))
    adx, plus_di, minus_di = nb.adx_nb(high, low, close, window)
    assert_same(adx, talib_cols(talib.ADX, high, low, close, timeperiod=window))
    assert_same(plus_di, talib_cols(talib.PLUS_DI, high, low, close, timeperiod=window))
    assert_same(minus_di, talib_cols(talib.MINUS_DI, high, low, close, timeperiod=window))


def test_flat_prices_give_zero_atr_di_and_adx_like_talib():
    h = l = c = np.full((12, 1), 10.0)
    adx, plus_di, minus_di = nb.adx_nb(h, l, c, 3)
    # TR = 0, so +DI = -DI = 0 from bar 3 and no DX is ever defined: ADX = 0 from bar 2*3-1 = 5
    assert_same(plus_di[:, 0], [NAN] * 3 + [0.0] * 9)
    assert_same(minus_di[:, 0], [NAN] * 3 + [0.0] * 9)
    assert_same(adx[:, 0], [NAN] * 5 + [0.0] * 7)
    assert_same(adx[:, 0], talib.ADX(h[:, 0], l[:, 0], c[:, 0], 3))
    assert_same(plus_di[:, 0], talib.PLUS_DI(h[:, 0], l[:, 0], c[:, 0], 3))
    assert_same(nb.atr_nb(h, l, c, 3)[:, 0], talib.ATR(h[:, 0], l[:, 0], c[:, 0], 3))


def test_adx_freezes_like_talib_once_the_dis_sum_below_its_1e14_epsilon():
    # one up-move of 0.001 then flat bars with a constant range: +DM decays by half a bar (window 2), so DX
    # stays 100 until +DI + -DI < 1e-14, where TA-Lib stops updating ADX; +DI itself keeps decaying
    high, low, close = (np.full((120, 1), p) for p in (101.0, 99.0, 100.0))
    for x in (high, low, close):
        x[5:] += 0.001
    adx, plus_di, minus_di = nb.adx_nb(high, low, close, 2)
    h, lo, c = high[:, 0], low[:, 0], close[:, 0]
    assert_same(adx[:, 0], talib.ADX(h, lo, c, 2))
    assert_same(plus_di[:, 0], talib.PLUS_DI(h, lo, c, 2))
    assert adx[-1, 0] == adx[-2, 0] < 100 and 0 < plus_di[-1, 0] < 1e-14


def ohlc_from(returns, spreads):
    """Positive OHLC bars from hypothesis-drawn log returns and high/low spreads."""
    close = 100 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * np.exp(spreads[:, 0])
    low = np.minimum(open_, close) * np.exp(-spreads[:, 1])
    return high.reshape(-1, 1), low.reshape(-1, 1), close.reshape(-1, 1)


@given(
    data=st.data(),
    n=st.integers(1, 60),
    window=st.integers(2, 10),
)
def test_wilder_kernels_and_ema_match_talib_on_generated_bars(data, n, window):
    returns = data.draw(hnp.arrays(np.float64, n, elements=st.floats(-0.05, 0.05)))
    spreads = data.draw(hnp.arrays(np.float64, (n, 2), elements=st.floats(0, 0.03)))
    high, low, close = ohlc_from(returns, spreads)
    h, lo, c = high[:, 0], low[:, 0], close[:, 0]
    adx, plus_di, minus_di = nb.adx_nb(high, low, close, window)
    assert_same(adx[:, 0], talib.ADX(h, lo, c, window))
    assert_same(plus_di[:, 0], talib.PLUS_DI(h, lo, c, window))
    assert_same(minus_di[:, 0], talib.MINUS_DI(h, lo, c, window))
    assert_same(nb.atr_nb(high, low, close, window)[:, 0], talib.ATR(h, lo, c, window))
    assert_same(nb.ema_nb(close, window)[:, 0], talib.EMA(c, window))


# pandas' rolling treats +-inf as missing, like NaN; cummax keeps it
values_with_nans = st.one_of(st.floats(-1e6, 1e6, allow_subnormal=False), st.sampled_from([NAN, np.inf, -np.inf]))


@given(
    a=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40), elements=values_with_nans),
    window=st.integers(1, 12),
)
def test_sma_and_rolling_max_match_pandas_on_generated_arrays(a, window):
    df = pd.DataFrame(a)
    assert_same(nb.sma_nb(a, window), df.rolling(window).mean())
    assert_same(nb.rolling_max_nb(a, window), df.rolling(window).max())
    assert_same(nb.rolling_max_nb(a, 0), df.cummax())


@given(
    close=hnp.arrays(np.float64, st.integers(1, 60), elements=st.one_of(st.floats(1e-3, 1e6), st.just(0.0))),
    window=st.integers(2, 12),
)
def test_realized_vol_and_drawdown_match_pandas_on_generated_prices(close, window):
    s = pd.Series(close)
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf: a missing return to pandas
        oracle = np.log(s).diff().rolling(window).std() * np.sqrt(365)
    actual = nb.realized_vol_nb(close.reshape(-1, 1), window, 365.0)[:, 0]
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(oracle))
    # numba's log may differ from numpy's by an ulp (~2e-15 here), which a near-zero std cannot hide in rtol
    np.testing.assert_allclose(actual, oracle, rtol=RTOL, atol=1e-12 * np.sqrt(365))
    assert_same(nb.drawdown_from_peak_nb(close.reshape(-1, 1))[:, 0], s / s.cummax() - 1)


# ---------------------------------------------------------------- Wilder by hand (window 3)

# Nine bars chosen to hit every rule: up moves, down moves, a gap down (TR from |L - prev C|), a gap up
# (TR from |H - prev C|) and an outside bar whose up and down moves are equal (+DM = -DM = 0).
HIGH = [10.0, 11.0, 12.0, 12.0, 9.0, 10.0, 11.0, 11.5, 12.5]
LOW = [8.0, 9.0, 10.0, 9.0, 7.5, 9.0, 9.5, 10.0, 9.0]
CLOSE = [9.0, 10.5, 11.5, 9.5, 8.0, 9.5, 10.5, 11.0, 10.0]
# bar  TR = max(H-L, |H-Cprev|, |L-Cprev|)   up = H-Hprev  down = Lprev-L   +DM   -DM
#  1   max(2, 2, 0)       = 2                 1             -1             1     0
#  2   max(2, 1.5, 0.5)   = 2                 1             -1             1     0
#  3   max(3, 0.5, 2.5)   = 3                 0              1             0     1
#  4   max(1.5, 0.5, 2)   = 2   (gap down)   -3              1.5           0     1.5
#  5   max(1, 2, 1)       = 2   (gap up)      1             -1.5           1     0
#  6   max(1.5, 1.5, 0)   = 1.5               1             -0.5           1     0
#  7   max(1.5, 1, 0.5)   = 1.5               0.5           -0.5           0.5   0
#  8   max(3.5, 1.5, 2)   = 3.5               1              1 (equal)     0     0


def hand_arrays():
    return tuple(np.array(x).reshape(-1, 1) for x in (HIGH, LOW, CLOSE))


def test_atr_by_hand():
    # first ATR at bar 3 = mean TR of bars 1..3; then ATR = (ATR_prev * 2 + TR) / 3
    atr3 = (2 + 2 + 3) / 3              # 7/3
    atr4 = (14 / 3 + 2) / 3             # 20/9
    atr5 = (40 / 9 + 2) / 3             # 58/27
    atr6 = (116 / 27 + 1.5) / 3         # 156.5/81
    atr7 = (313 / 81 + 1.5) / 3         # 434.5/243
    atr8 = (869 / 243 + 3.5) / 3        # 1719.5/729
    expected = [NAN, NAN, NAN, atr3, atr4, atr5, atr6, atr7, atr8]
    assert_same(nb.atr_nb(*hand_arrays(), 3)[:, 0], expected, rtol=1e-12)
    assert_same(talib.ATR(np.array(HIGH), np.array(LOW), np.array(CLOSE), 3), expected, rtol=1e-12)


def test_di_and_adx_by_hand():
    # TA-Lib seeds the smoothed sums with bars 1..2 (TR 4, +DM 2, -DM 0), then from bar 3 on
    # S = S - S/3 + x = S * 2/3 + x.            smoothed TR      +DM          -DM
    # bar 3: 4*2/3 + 3 ; 2*2/3 + 0 ; 0 + 1     = 17/3           4/3          1
    # bar 4: (17/3)*2/3 + 2 ; (4/3)*2/3 ; 1*2/3 + 1.5
    #                                          = 52/9           8/9          13/6
    # bar 5:                                   = 158/27         43/27        13/9
    # bar 6:                                   = 437.5/81       167/81       78/81
    # bar 7:                                   = 1239.5/243     455.5/243    156/243
    # bar 8:                                   = 5030.5/729     911/729      312/729
    # +DI = 100 * (+DM) / TR, -DI = 100 * (-DM) / TR (the common denominators cancel):
    plus_di = [100 * 4 / 17, 100 * 8 / 52, 100 * 43 / 158, 100 * 167 / 437.5, 100 * 455.5 / 1239.5,
               100 * 911 / 5030.5]
    minus_di = [100 * 3 / 17, 100 * (13 / 6) / (52 / 9), 100 * 39 / 158, 100 * 78 / 437.5, 100 * 156 / 1239.5,
                100 * 312 / 5030.5]
    # DX = 100 * |+DM - -DM| / (+DM + -DM) on the smoothed sums:
    dx3 = 100 * (4 - 3) / (4 + 3)                            # 14.29
    dx4 = 100 * (37.5 - 200 / 13) / (37.5 + 200 / 13)        # -DI 37.5, +DI 15.38: 41.82
    dx5 = 100 * (43 - 39) / (43 + 39)                        # 4.88
    dx6 = 100 * (167 - 78) / (167 + 78)                      # 36.33
    dx7 = 100 * (455.5 - 156) / (455.5 + 156)                # 48.98
    dx8 = 100 * (911 - 312) / (911 + 312)                    # 48.98 (bar 8 adds no DM, both decay by 2/3)
    adx5 = (dx3 + dx4 + dx5) / 3                             # first ADX at bar 2*3-1 = 5
    adx6 = (adx5 * 2 + dx6) / 3
    adx7 = (adx6 * 2 + dx7) / 3
    adx8 = (adx7 * 2 + dx8) / 3
    warm_di, warm_adx = [NAN] * 3, [NAN] * 5
    adx, pdi, mdi = (x[:, 0] for x in nb.adx_nb(*hand_arrays(), 3))
    assert_same(pdi, warm_di + plus_di, rtol=1e-12)
    assert_same(mdi, warm_di + minus_di, rtol=1e-12)
    assert_same(adx, warm_adx + [adx5, adx6, adx7, adx8], rtol=1e-12)
    h, lo, c = np.array(HIGH), np.array(LOW), np.array(CLOSE)
    assert_same(talib.PLUS_DI(h, lo, c, 3), warm_di + plus_di, rtol=1e-12)
    assert_same(talib.ADX(h, lo, c, 3), warm_adx + [adx5, adx6, adx7, adx8], rtol=1e-12)


# ---------------------------------------------------------------- no look-ahead


@pytest.mark.parametrize("name", ["sma", "ema", "atr", "adx", "rolling_max", "drawdown", "vol"])
def test_changing_bars_after_t_changes_no_output_up_to_t(name):
    high, low, close = random_ohlc(300, 2, seed=10)
    run = {
        "sma": lambda h, lo, c: [nb.sma_nb(c, 20)],
        "ema": lambda h, lo, c: [nb.ema_nb(c, 20)],
        "atr": lambda h, lo, c: [nb.atr_nb(h, lo, c, 14)],
        "adx": lambda h, lo, c: list(nb.adx_nb(h, lo, c, 14)),
        "rolling_max": lambda h, lo, c: [nb.rolling_max_nb(c, 20), nb.rolling_max_nb(c, 0)],
        "drawdown": lambda h, lo, c: [nb.drawdown_from_peak_nb(c)],
        "vol": lambda h, lo, c: [nb.realized_vol_nb(c, 20, 365.0)],
    }[name]
    before = run(high, low, close)
    t = 150
    for x in (high, low, close):
        x[t + 1:] *= 1.7
    after = run(high, low, close)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(b[: t + 1], a[: t + 1])


# ---------------------------------------------------------------- wrappers


@pytest.fixture
def bars():
    high, low, close = random_ohlc(60, 2, seed=11)
    index = pd.date_range("2024-01-01", periods=60, freq="h", tz="UTC")
    frame = lambda x: pd.DataFrame(x, index=index, columns=["BTCUSDT", "ETHUSDT"])  # noqa: E731
    return frame(high), frame(low), frame(close)


def test_series_in_series_out_with_index_and_name(bars):
    close = bars[2]["BTCUSDT"]
    for out in (ind.sma(close, 5), ind.ema(close, 5), ind.rolling_max(close, 5), ind.rolling_max(close),
                ind.drawdown_from_peak(close), ind.realized_vol(close, 5, periods_per_year=8760)):
        assert isinstance(out, pd.Series)
        assert out.index.equals(close.index)
        assert out.name == "BTCUSDT"
    assert_same(ind.sma(close, 5), close.rolling(5).mean())


def test_dataframe_in_dataframe_out_with_index_and_columns(bars):
    high, low, close = bars
    outs = [ind.sma(close, 5), ind.ema(close, 5), ind.atr(high, low, close, 5), *ind.adx(high, low, close, 5),
            ind.rolling_max(close, 5), ind.drawdown_from_peak(close),
            ind.realized_vol(close, 5, periods_per_year=8760)]
    for out in outs:
        assert isinstance(out, pd.DataFrame)
        assert out.index.equals(close.index)
        assert out.columns.equals(close.columns)
    assert_same(ind.atr(high, low, close, 5), talib_cols(talib.ATR, *(x.to_numpy() for x in bars), timeperiod=5))


def test_arrays_keep_their_ndim(bars):
    close = bars[2].to_numpy()
    one = close[:, 0].copy()
    assert ind.sma(one, 3).shape == one.shape
    assert ind.sma(close, 3).shape == close.shape
    assert ind.atr(one, one, one, 3).ndim == 1
    assert ind.adx(close, close, close, 3).adx.shape == close.shape


def test_adx_returns_a_namedtuple_of_series(bars):
    high, low, close = (x["ETHUSDT"] for x in bars)
    out = ind.adx(high, low, close, 5)
    assert isinstance(out, ind.ADX)
    assert all(isinstance(x, pd.Series) and x.name == "ETHUSDT" for x in out)
    assert_same(out.plus_di, talib.PLUS_DI(high.to_numpy(), low.to_numpy(), close.to_numpy(), 5))


def test_hlc_series_with_different_names_give_an_unnamed_result(bars):
    high, low, close = (x["ETHUSDT"].rename(n) for x, n in zip(bars, ["high", "low", "close"]))
    assert ind.atr(high, low, close, 5).name is None


def test_integer_and_float32_inputs_are_accepted():
    a = np.arange(10)
    assert_same(ind.sma(a, 3), pd.Series(a).rolling(3).mean())
    assert ind.sma(a.astype(np.float32), 3).dtype == np.float64
    assert_same(ind.sma(pd.Series(a, dtype="Int64"), 3), pd.Series(a).rolling(3).mean())


@pytest.mark.parametrize("window", [0, -1, 2.5, 14.0, "14", True, None])
def test_bad_windows_raise_config_error_with_a_fix(window):
    with pytest.raises(ConfigError, match="Fix"):
        ind.sma(np.ones(20), window)


@pytest.mark.parametrize("call", [
    lambda a: ind.ema(a, 0),
    lambda a: ind.atr(a, a, a, 0),
    lambda a: ind.adx(a, a, a, 1),  # TA-Lib's ADX needs window >= 2
    lambda a: ind.rolling_max(a, -1),
    lambda a: ind.realized_vol(a, 1, periods_per_year=365),  # a sample std needs two returns
    lambda a: ind.realized_vol(a, 5, periods_per_year=0),
    lambda a: ind.realized_vol(a, 5, periods_per_year=float("nan")),
])
def test_out_of_range_parameters_raise_config_error(call):
    with pytest.raises(ConfigError, match="Fix"):
        call(np.ones(20))


def test_hlc_of_different_shapes_raise_data_error():
    a = np.ones(20)
    with pytest.raises(DataError, match="different shapes"):
        ind.atr(a, a, np.ones(21), 3)


def test_hlc_with_different_indexes_raise_data_error(bars):
    high, low, close = bars
    with pytest.raises(DataError, match="different indexes"):
        ind.adx(high.shift(1, freq="h"), low, close, 3)
    with pytest.raises(DataError, match="different columns"):
        ind.atr(high, low[["ETHUSDT", "BTCUSDT"]], close, 3)


def test_hlc_of_different_kinds_raise_data_error(bars):
    high, low, close = (x["BTCUSDT"] for x in bars)
    with pytest.raises(DataError, match="different kinds"):
        ind.atr(high, low, close.to_numpy(), 3)


@pytest.mark.parametrize("bad", [[1.0, 2.0, 3.0], np.array(["a", "b"]), np.ones((2, 2, 2)),
                                 pd.Series([True, False]), pd.Series(["x", "y"])])
def test_non_numeric_or_unsupported_inputs_raise_data_error(bad):
    with pytest.raises(DataError, match="Fix"):
        ind.sma(bad, 1)


def test_importing_the_package_compiles_no_kernel():
    code = ("import eternal_engine.indicators as ind; from eternal_engine.indicators import nb; "
            "fs = [getattr(nb, n) for n in dir(nb) if n.endswith('_nb')]; "
            "assert fs and not any(f.signatures for f in fs), [f for f in fs if f.signatures]")
    root = str(Path(ind.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
