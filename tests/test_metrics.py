"""eternal_engine.metrics against quantstats 0.0.86 (the oracle), hand-worked cases and input errors."""
import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eternal_engine.errors import ConfigError, DataError
from eternal_engine.metrics import (
    STAT_KEYS,
    TRADE_STAT_KEYS,
    drawdown_series,
    periods_per_year_for,
    stats,
    trade_stats,
)

qs = pytest.importorskip("quantstats")

REL = 1e-9
# Floors for values that are ~0 where relative error means nothing: returns-valued metrics, then ratios.
ABS_RETURNS = 1e-12
ABS_RATIOS = 1e-9
RATIO_KEYS = {"sharpe", "sortino", "calmar", "skew", "kurtosis", "profit_factor", "win_rate"}

# Returns on a 1e-5 grid in [-0.5, 0.5]: zeros and ties are common (the degenerate branches get exercised),
# and quantstats never mistakes them for prices (it does when all values are >= 0 and one is > 1).
returns_lists = st.lists(st.integers(-50_000, 50_000), min_size=1, max_size=120).map(
    lambda xs: [x / 1e5 for x in xs])


def _daily(values, start="2021-03-01"):
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="D", tz="UTC"), dtype=float)


def quantstats_expected(r: pd.Series, periods: float) -> dict:
    """quantstats' value for each of our metrics, translated to our documented degenerate-case policy
    (NaN where quantstats divides by zero and returns inf, 0.0 or rounding dust)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = qs.stats
        exp = {
            "total_return": s.comp(r),
            "cagr": s.cagr(r, periods=periods),
            "volatility_ann": s.volatility(r, periods=periods),
            "sharpe": s.sharpe(r, periods=periods),
            "sortino": s.sortino(r, periods=periods),
            "max_drawdown": s.max_drawdown(r),
            "calmar": s.calmar(r, periods=periods),
            "win_rate": s.win_rate(r),
            "best_period": s.best(r),
            "worst_period": s.worst(r),
            "skew": s.skew(r),
            "kurtosis": s.kurtosis(r),
            "avg_win": s.avg_win(r),
            "avg_loss": s.avg_loss(r),
            "profit_factor": s.profit_factor(r),
        }
    a = r.to_numpy()
    if a.min() == a.max():  # zero volatility
        exp["sharpe"] = math.nan
    if exp["max_drawdown"] == 0:
        exp["calmar"] = math.nan
    if not np.any(a != 0):
        exp["win_rate"] = math.nan
    if not np.any(a < 0):
        exp["profit_factor"] = math.nan
    return {k: float(v) for k, v in exp.items()}


def assert_matches(ours: pd.Series, expected: dict):
    for key, want in expected.items():
        got = float(ours[key])
        if math.isnan(want):
            assert math.isnan(got), f"{key}: expected NaN, got {got}"
            continue
        assert math.isfinite(got), f"{key}: got {got}, quantstats {want}"
        floor = ABS_RATIOS if key in RATIO_KEYS else ABS_RETURNS
        assert got == pytest.approx(want, rel=REL, abs=floor), key


# ---------------------------------------------------------------------------------------------------------
# Agreement with quantstats
# ---------------------------------------------------------------------------------------------------------

@given(returns_lists)
def test_stats_agree_with_quantstats_on_daily_returns(values):
    r = _daily(values)

    ours = stats(r)

    assert ours["periods_per_year"] == 365.0
    assert_matches(ours, quantstats_expected(r, 365))


def test_stats_agree_with_quantstats_on_hourly_returns_with_8760_periods():
    rng = np.random.default_rng(7)
    r = pd.Series(rng.normal(2e-5, 0.004, 24 * 90),
                  index=pd.date_range("2024-01-01", periods=24 * 90, freq="h"))

    ours = stats(r, periods_per_year=8760)

    # cagr counts years as n_periods / periods_per_year in both (quantstats 0.0.86 cagr: count() / periods).
    assert_matches(ours, quantstats_expected(r, 8760))
    assert stats(r).equals(ours)  # inferred periods_per_year is the same 8760


@given(returns_lists)
def test_longest_drawdown_matches_quantstats_drawdown_details_days(values):
    values[0] = abs(values[0])  # quantstats' drawdown_details mis-handles a series that starts under water
    r = _daily(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        details = qs.stats.drawdown_details(qs.stats.to_drawdown_series(r))

    ours = stats(r)["max_drawdown_duration"]

    want = 0 if details.empty else int(details["days"].max())
    assert ours == pd.Timedelta(days=want)


@given(returns_lists)
def test_drawdown_series_equals_quantstats_to_drawdown_series(values):
    r = _daily(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = qs.stats.to_drawdown_series(r).to_numpy()

    ours = drawdown_series(r)

    assert ours.index.equals(r.index)
    np.testing.assert_allclose(ours.to_numpy(), want, rtol=REL, atol=ABS_RETURNS)
    assert (ours <= 0).all()


# ---------------------------------------------------------------------------------------------------------
# Hand-worked cases
# ---------------------------------------------------------------------------------------------------------

def test_three_bar_example_by_hand():
    r = _daily([0.1, -0.05, 0.02])

    s = stats(r)

    assert list(s.index) == list(STAT_KEYS)
    assert s["n_periods"] == 3
    assert s["start"] == r.index[0] and s["end"] == r.index[-1]
    assert s["total_return"] == pytest.approx(1.1 * 0.95 * 1.02 - 1, rel=1e-12)
    assert s["cagr"] == pytest.approx((1.1 * 0.95 * 1.02) ** (365 / 3) - 1, rel=1e-12)
    assert s["max_drawdown"] == pytest.approx(-0.05, rel=1e-12)
    assert s["max_drawdown_duration"] == pd.Timedelta(days=2)  # peak on day 1, still under water on day 3
    assert s["win_rate"] == pytest.approx(2 / 3)
    assert s["best_period"] == 0.1 and s["worst_period"] == -0.05
    assert s["avg_win"] == pytest.approx(0.06) and s["avg_loss"] == pytest.approx(-0.05)
    assert s["profit_factor"] == pytest.approx(0.12 / 0.05)
    mean, std = np.mean([0.1, -0.05, 0.02]), np.std([0.1, -0.05, 0.02], ddof=1)
    assert s["volatility_ann"] == pytest.approx(std * math.sqrt(365))
    assert s["sharpe"] == pytest.approx(mean / std * math.sqrt(365))
    assert s["sortino"] == pytest.approx(mean / math.sqrt(0.05 ** 2 / 3) * math.sqrt(365))
    assert math.isnan(s["kurtosis"])  # needs 4 bars


def test_loss_on_first_bar_is_a_drawdown_from_the_starting_equity():
    r = _daily([-0.1, 0.05, 0.06])

    s = stats(r)

    assert s["max_drawdown"] == pytest.approx(-0.1)
    assert s["max_drawdown_duration"] == pd.Timedelta(days=2)  # days 1-2 under water, recovered on day 3


def test_longest_time_under_water_on_hourly_bars():
    r = pd.Series([0.01, -0.02, 0.005, 0.02, -0.01],
                  index=pd.date_range("2024-05-01 10:00", periods=5, freq="h"))

    s = stats(r)

    # Under water on bars 1-2 (peak bar 0): 2 h; and on bar 4 (peak bar 3): 1 h, still open.
    assert s["max_drawdown_duration"] == pd.Timedelta(hours=2)


def test_win_rate_ignores_zero_returns():
    s = stats(_daily([0.01, 0.0, 0.0, -0.01, 0.02]))

    assert s["win_rate"] == pytest.approx(2 / 3)


def test_constant_returns_give_nan_ratios_not_inf():
    s = stats(_daily([0.001] * 10))

    assert s["volatility_ann"] == 0.0
    assert math.isnan(s["sharpe"]) and math.isnan(s["sortino"])
    assert math.isnan(s["calmar"]) and math.isnan(s["profit_factor"])
    assert math.isnan(s["skew"]) and math.isnan(s["kurtosis"])
    numeric = [v for v in s.to_numpy() if isinstance(v, float)]
    assert not any(math.isinf(v) for v in numeric)


def test_constant_negative_returns_have_finite_sortino_like_quantstats():
    s = stats(_daily([-0.01] * 5))

    assert math.isnan(s["sharpe"])
    assert s["sortino"] == pytest.approx(-math.sqrt(365))


def test_stats_without_datetime_index_needs_periods_per_year_and_has_no_duration():
    r = pd.Series([0.01, -0.02, 0.03])

    s = stats(r, periods_per_year=252)

    assert s["periods_per_year"] == 252.0
    assert s["max_drawdown_duration"] is pd.NaT
    assert s["cagr"] == pytest.approx((1.01 * 0.98 * 1.03) ** (252 / 3) - 1)


# ---------------------------------------------------------------------------------------------------------
# periods_per_year inference
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("freq, expected", [("D", 365.0), ("h", 8760.0), ("min", 525600.0), ("4h", 2190.0)])
def test_periods_per_year_inferred_from_bar_spacing(freq, expected):
    idx = pd.date_range("2024-01-01", periods=50, freq=freq, tz="UTC")

    assert periods_per_year_for(idx) == expected
    # same without a freq attribute (median spacing), in microsecond resolution
    assert periods_per_year_for(pd.DatetimeIndex(list(idx)).as_unit("us")) == expected


def test_periods_per_year_ignores_occasional_gaps():
    idx = pd.date_range("2024-01-01", periods=100, freq="h").delete([10, 11, 50])

    assert periods_per_year_for(idx) == 8760.0


def test_periods_per_year_requires_a_datetime_index():
    with pytest.raises(DataError, match="periods_per_year="):
        stats(pd.Series([0.01, 0.02, -0.01]))


def test_periods_per_year_rejects_unsorted_index():
    idx = pd.DatetimeIndex(["2024-01-01", "2024-01-03", "2024-01-02"])

    with pytest.raises(DataError, match="not sorted") as e:
        stats(pd.Series([0.01, 0.02, -0.01], index=idx))
    assert e.value.timestamp == pd.Timestamp("2024-01-02")


@pytest.mark.parametrize("bad", [0, -365, float("nan"), "daily"])
def test_invalid_periods_per_year_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        stats(_daily([0.01, 0.02]), periods_per_year=bad)


# ---------------------------------------------------------------------------------------------------------
# Input errors
# ---------------------------------------------------------------------------------------------------------

def test_empty_returns_raise():
    with pytest.raises(DataError, match="empty"):
        stats(pd.Series([], dtype=float, index=pd.DatetimeIndex([])))


def test_nan_inside_returns_raises_naming_first_nan_timestamp():
    r = _daily([0.01, np.nan, 0.02, np.nan])

    with pytest.raises(DataError, match="NaN") as e:
        stats(r)
    assert e.value.timestamp == r.index[1]
    assert str(r.index[1]) in str(e.value)


def test_infinite_returns_raise():
    with pytest.raises(DataError, match="infinite"):
        drawdown_series(_daily([0.01, np.inf]))


def test_non_series_input_raises():
    with pytest.raises(DataError, match="Series"):
        stats(np.array([0.01, 0.02]), periods_per_year=365)


# ---------------------------------------------------------------------------------------------------------
# trade_stats
# ---------------------------------------------------------------------------------------------------------

def test_trade_stats_by_hand():
    trades = pd.DataFrame({"pnl": [10.0, -5.0, 0.0, 20.0], "return": [0.01, -0.005, 0.0, 0.02],
                           "bars_held": [3, 1, 2, 6]})

    t = trade_stats(trades)

    assert list(t.index) == list(TRADE_STAT_KEYS)
    assert t["n_trades"] == 4
    assert t["win_rate"] == pytest.approx(0.5)  # the zero-pnl trade is not a win
    assert t["avg_return"] == pytest.approx(0.00625)
    assert t["profit_factor"] == pytest.approx(30 / 5)
    assert t["expectancy"] == pytest.approx(25 / 4)
    assert t["avg_bars_held"] == pytest.approx(3.0)


@pytest.mark.parametrize("frame", [pd.DataFrame(), pd.DataFrame(columns=["pnl", "return", "bars_held"])])
def test_trade_stats_of_no_trades(frame):
    t = trade_stats(frame)

    assert t["n_trades"] == 0
    assert all(math.isnan(t[k]) for k in TRADE_STAT_KEYS[1:])


def test_trade_stats_without_losers_has_nan_profit_factor():
    t = trade_stats(pd.DataFrame({"pnl": [1.0], "return": [0.01], "bars_held": [2]}))

    assert math.isnan(t["profit_factor"])


def test_trade_stats_missing_column_suggests_the_name():
    with pytest.raises(DataError, match="no column 'pnl'; did you mean 'pnl_'"):
        trade_stats(pd.DataFrame({"pnl_": [1.0], "return": [0.01], "bars_held": [2]}))


# ---------------------------------------------------------------------------------------------------------
# Cost
# ---------------------------------------------------------------------------------------------------------

def test_import_is_light():
    code = ("import sys, eternal_engine.metrics; "
            "print(sorted(m for m in ('quantstats', 'matplotlib', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"
