"""The synthetic generator: calibration ranges (as documented in its docstring), determinism, bar-size
consistency, OHLC/funding invariants and argument errors."""
import numpy as np
import pandas as pd
import pytest

from eternal_engine.data import MarketData, synthetic
from eternal_engine.errors import ConfigError, DataError

SEEDS = range(5)
YEAR = pd.Timedelta(days=365.25)


@pytest.fixture(scope="module")
def daily_runs():
    """5 seeds x 8 years of daily BTC/ETH/SOL with their regime paths."""
    return [synthetic(8.0, "1D", seed, return_regimes=True) for seed in SEEDS]


@pytest.fixture(scope="module")
def hourly_run():
    """2 years of hourly bars; seed 3 has bull, bear and crash spells."""
    return synthetic(2.0, "1h", 3, return_regimes=True)


def _log_returns(data, symbol):
    return np.diff(np.log(data.close[symbol].to_numpy()))


def _ann_vol(data, symbol):
    return _log_returns(data, symbol).std(ddof=1) * np.sqrt(YEAR / data.freq)


def _basis(data, u="BTC"):
    return data.close[f"{u}-PERP"] / data.close[f"{u}-SPOT"] - 1.0


# ---------------------------------------------------------------- layout
def test_instruments_are_all_spots_then_all_perps():
    data = synthetic(0.1, "1D", 0, ("SOL", "BTC"))

    assert data.symbols == ("SOL-SPOT", "BTC-SPOT", "SOL-PERP", "BTC-PERP")
    assert data.kinds == ("spot", "spot", "perp", "perp")


def test_perps_false_gives_spot_only_and_no_funding():
    data = synthetic(0.1, "1D", 0, ("BTC", "ETH"), perps=False)

    assert data.symbols == ("BTC-SPOT", "ETH-SPOT")
    assert not data.arrays.funding.any()


def test_length_index_and_grid():
    data = synthetic(8.0, "1D", 0)

    assert len(data) == 2922
    assert data.index[0] == pd.Timestamp("2017-01-01", tz="UTC")
    assert data.freq == pd.Timedelta("1D")
    assert (np.diff(data.index.asi8) == pd.Timedelta("1D").value).all()


def test_start_is_rounded_up_to_the_epoch_grid():
    data = synthetic(0.01, "1h", 0, ("BTC",), start="2020-03-01 00:30")

    assert data.index[0] == pd.Timestamp("2020-03-01 01:00", tz="UTC")


def test_return_regimes_gives_categorical_series_on_the_data_index(hourly_run):
    data, regimes = hourly_run

    assert regimes.index.equals(data.index)
    assert list(regimes.cat.categories) == ["bull", "bear", "crash", "sideways"]
    assert regimes.notna().all()


# ------------------------------------------------------------ determinism
def test_same_seed_gives_identical_data():
    a, ra = synthetic(1.0, "4h", 11, return_regimes=True)
    b, rb = synthetic(1.0, "4h", 11, return_regimes=True)

    assert a == b
    assert ra.equals(rb)


def test_different_seeds_give_different_data():
    a = synthetic(1.0, "1D", 1)
    b = synthetic(1.0, "1D", 2)

    assert not np.allclose(a.arrays.close, b.arrays.close)


# ------------------------------------------------------------ calibration
def test_btc_annualised_vol_is_in_documented_range(daily_runs):
    vols = [_ann_vol(d, "BTC-SPOT") for d, _ in daily_runs]

    assert all(0.53 <= v <= 0.71 for v in vols), vols


def test_alt_vol_ratios_to_btc(daily_runs):
    for data, _ in daily_runs:
        btc = _ann_vol(data, "BTC-SPOT")
        assert 1.10 <= _ann_vol(data, "ETH-SPOT") / btc <= 1.30
        assert 1.45 <= _ann_vol(data, "SOL-SPOT") / btc <= 1.75


def test_btc_worst_drawdown_is_in_documented_range(daily_runs):
    dds = []
    for data, _ in daily_runs:
        close = data.close["BTC-SPOT"].to_numpy()
        dds.append((close / np.maximum.accumulate(close) - 1).min())

    assert all(-0.95 <= dd <= -0.45 for dd in dds), dds


def test_return_correlations_are_in_documented_range(daily_runs):
    for data, _ in daily_runs:
        btc, eth, sol = (_log_returns(data, f"{u}-SPOT") for u in ("BTC", "ETH", "SOL"))
        assert 0.75 <= np.corrcoef(btc, eth)[0, 1] <= 0.85
        assert 0.65 <= np.corrcoef(btc, sol)[0, 1] <= 0.77


def test_funding_mean_per_8h_is_in_documented_range(daily_runs):
    for data, _ in daily_runs:
        per_8h = data.funding.to_numpy().sum(axis=0) / (3 * len(data))
        assert ((4e-5 <= per_8h) & (per_8h <= 2e-4)).all(), per_8h


def test_funding_is_positive_in_bull_and_negative_in_crash(daily_runs):
    by_regime = {}
    for data, regimes in daily_runs:
        f = data.funding["BTC-PERP"].to_numpy() / 3
        for name in ("bull", "crash", "sideways"):
            by_regime.setdefault(name, []).append(f[(regimes == name).to_numpy()])
    mean = {k: np.concatenate(v).mean() for k, v in by_regime.items()}

    assert 1.5e-4 <= mean["bull"] <= 5e-4
    assert -5e-4 <= mean["crash"] <= -1e-4
    assert mean["crash"] < mean["sideways"] < mean["bull"]


def test_funding_is_clamped_to_the_bybit_cap(hourly_run):
    data, _ = hourly_run

    assert np.abs(data.funding.to_numpy()).max() <= 0.0075


def test_basis_stays_small_and_mean_reverts(hourly_run, daily_runs):
    data, regimes = hourly_run
    basis = _basis(data).to_numpy()
    # OU check: regressing the next change on the level gives a clearly negative slope
    slope = np.polyfit(basis[:-1], np.diff(basis), 1)[0]

    assert np.abs(basis).max() <= 0.03
    assert np.median(np.abs(basis)) < 0.003
    assert -0.2 < slope < -0.01
    assert _basis(data)[(regimes == "bull").to_numpy()].mean() > 0
    for d, _ in daily_runs:
        assert _basis(d).autocorr() < 0.5
        assert np.abs(_basis(d)).max() < 0.02


def test_crash_is_followed_by_bear_or_sideways(hourly_run):
    _, regimes = hourly_run
    r = regimes.astype(str).to_numpy()
    changes = np.flatnonzero(r[1:] != r[:-1])

    assert (r == "crash").any()
    assert set(r[changes + 1][r[changes] == "crash"]) <= {"bear", "sideways"}


def test_regime_switch_rate_does_not_depend_on_bar_size():
    rates = {}
    for freq in ("1D", "15min"):
        n = 0
        for seed in range(3):
            _, reg = synthetic(4.0 if freq == "1D" else 1.0, freq, seed, ("BTC",), return_regimes=True)
            codes = reg.cat.codes.to_numpy()
            n += (codes[1:] != codes[:-1]).sum()
        rates[freq] = n / (3 * (4.0 if freq == "1D" else 1.0))
    # long-run rate sum(pi_r / duration_r) is ~2.8 switches a year
    assert 1.5 <= rates["1D"] <= 4.5 and 1.0 <= rates["15min"] <= 5.5, rates


def test_volume_is_larger_on_big_moves(daily_runs, hourly_run):
    for data in [d for d, _ in daily_runs] + [hourly_run[0]]:
        move = np.abs(_log_returns(data, "BTC-SPOT"))
        vol = np.log(data.volume["BTC-SPOT"].to_numpy()[1:])
        assert (data.arrays.volume > 0).all()
        assert np.corrcoef(move, vol)[0, 1] > 0.2


def test_fifty_years_stay_finite_and_sane():
    data = synthetic(50.0, "1D", 3, ("BTC", "SOL"))
    close = data.close.to_numpy()
    cagr = (close[-1] / close[0]) ** (1 / 50) - 1

    assert np.isfinite(close).all()
    assert close.min() > 0.01 and close.max() < 1e9
    assert ((0.02 <= cagr) & (cagr <= 0.35)).all(), cagr


# --------------------------------------------------- bar-size consistency
@pytest.mark.parametrize("rule", ["4h", "1D"])
def test_coarse_bars_equal_resampled_hourly_bars(rule):
    coarse = synthetic(2.0, rule, 5)
    hourly = synthetic(2.0, "1h", 5).resample(rule)

    assert coarse.index.equals(hourly.index)
    for a, b in zip(coarse.arrays, hourly.arrays):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-18)


def test_hourly_funding_only_at_settlement_hours_and_daily_is_sum_of_three(hourly_run):
    data, _ = hourly_run
    f = data.funding.to_numpy()
    settles = np.isin(data.index.hour, [0, 8, 16])

    assert (f[settles] != 0).all()
    assert not f[~settles].any()
    assert not data.funding.columns.str.endswith("SPOT").any()
    daily = data.resample("1D")
    whole_days = f[: len(daily) * 24].reshape(len(daily), 24, f.shape[1])
    np.testing.assert_allclose(daily.funding.to_numpy(), whole_days.sum(axis=1), rtol=1e-12)
    assert (np.count_nonzero(whole_days, axis=1) == 3).all()


@pytest.mark.parametrize("freq", ["5h", "7min", "90min"])
def test_every_settlement_lands_in_the_bar_containing_it(freq):
    data = synthetic(0.05, freq, 0, ("BTC",))
    ts = data.index.asi8
    step, eight_h = data.freq.value, pd.Timedelta("8h").value
    first = -(-ts[0] // eight_h) * eight_h
    marks = np.arange(first, ts[-1] + step, eight_h)
    expected = np.zeros(len(ts), dtype=int)
    np.add.at(expected, np.searchsorted(ts, marks, side="right") - 1, 1)

    assert ((data.funding["BTC-PERP"].to_numpy() != 0) == (expected > 0)).all()


def test_funding_distribution_is_the_same_for_minute_and_daily_bars():
    minute = synthetic(100_000 / (YEAR / pd.Timedelta("1min")), "1min", 0, ("BTC",))
    f = minute.funding["BTC-PERP"].to_numpy()
    idx = minute.index
    settles = (idx.minute == 0) & np.isin(idx.hour, [0, 8, 16])
    daily_means = [synthetic(8.0, "1D", s, ("BTC",)).funding.to_numpy().mean() / 3 for s in SEEDS]

    assert len(minute) == 100_000
    assert (f[settles] != 0).all() and not f[~settles].any()
    assert abs(f[settles].std() - 1e-4) < 2e-4  # same per-settlement scale as at any bar size
    assert all(4e-5 <= m <= 2e-4 for m in daily_means)


# --------------------------------------------------------------- OHLC
@pytest.mark.parametrize("freq", ["1min", "7min", "1h", "90min", "1D"])
def test_ohlc_invariants(freq):
    years = min(2.0, 30_000 * pd.Timedelta(freq) / YEAR)
    data = synthetic(years, freq, 4)
    a = data.arrays

    assert isinstance(data, MarketData)
    assert (a.low <= np.minimum(a.open, a.close)).all()
    assert (a.high >= np.maximum(a.open, a.close)).all()
    assert (a.low > 0).all()
    np.testing.assert_array_equal(a.open[1:], a.close[:-1])  # 24/7: open = previous close
    assert (a.high > np.maximum(a.open, a.close)).mean() > 0.9  # wicks are real, not just the body


# --------------------------------------------------------------- errors
@pytest.mark.parametrize("symbols", [("DOGE",), ("BTC", "XRP")])
def test_unknown_symbol_raises_data_error_naming_the_calibrated_ones(symbols):
    with pytest.raises(DataError, match="only .*BTC.*ETH.*SOL"):
        synthetic(1.0, "1D", 0, symbols)


def test_instrument_name_instead_of_underlying_suggests_the_underlying():
    with pytest.raises(DataError, match="did you mean 'BTC'"):
        synthetic(1.0, "1D", 0, ("BTC-PERP",))


def test_duplicate_or_empty_symbols_raise_data_error():
    with pytest.raises(DataError, match="twice"):
        synthetic(1.0, "1D", 0, ("BTC", "btc"))
    with pytest.raises(DataError, match="no symbols"):
        synthetic(1.0, "1D", 0, ())


@pytest.mark.parametrize("years", [0, -1.0, float("nan"), "four", 1e-9])
def test_bad_years_raise_config_error(years):
    with pytest.raises(ConfigError, match="years"):
        synthetic(years, "1D", 0)


@pytest.mark.parametrize("freq", ["banana", "30s", "2D", "1W"])
def test_bad_freq_raises_config_error(freq):
    with pytest.raises(ConfigError, match="freq"):
        synthetic(1.0, freq, 0)


@pytest.mark.parametrize("start", ["not a date", None])
def test_bad_start_raises_config_error(start):
    with pytest.raises(ConfigError, match="start"):
        synthetic(1.0, "1D", 0, start=start)


@pytest.mark.parametrize("seed", [-1, "abc"])
def test_bad_seed_raises_config_error(seed):
    with pytest.raises(ConfigError, match="seed"):
        synthetic(1.0, "1D", seed)
