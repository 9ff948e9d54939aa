"""Walk-forward: calendar folds, choices from training data only, stitched out-of-sample returns, bad input."""
import time

import numpy as np
import pandas as pd
import pytest

import eternal_engine as ee
from eternal_engine.data.market import MarketData
from eternal_engine.errors import ConfigError
from eternal_engine.research.sweep import sweep
from eternal_engine.research.walk_forward import splits, walk_forward

GRID = {"trend.sma_slow": [100, 200], "trend.atr_stop_mult": [2.0, 3.0]}


@pytest.fixture(scope="module")
def market():
    return ee.load_sample()


@pytest.fixture(scope="module")
def wf(market):
    return walk_forward(market, grid=GRID, train="730D", test="365D", purge="7D", progress=False)


def test_rolling_and_anchored_calendar_splits():
    idx = pd.date_range("2020-01-01", "2023-12-31", freq="D", tz="UTC")
    d = pd.Timedelta
    roll = splits(idx, d("365D"), d("180D"), d("5D"), anchored=False)
    assert roll[0] == (idx[0], idx[0] + d("365D"), idx[0] + d("370D"), idx[0] + d("550D"))
    assert roll[1][0] == idx[0] + d("180D")  # rolling: the window moves by `test`
    anch = splits(idx, d("365D"), d("180D"), d("5D"), anchored=True)
    assert all(f[0] == idx[0] for f in anch) and anch[1][1] == idx[0] + d("545D")  # anchored: it grows
    for folds in (roll, anch):
        assert all(f[3] <= idx[-1] + d("1D") for f in folds)  # every test window inside the data
        assert all(f[2] - f[1] == d("5D") for f in folds)  # the purge gap


def test_each_fold_chooses_on_its_training_window_only(market, wf):
    f = wf.folds
    assert len(f) == 5 and (f["test_start"] - f["train_end"] == pd.Timedelta("7D")).all()
    bar = pd.Timedelta("1D")
    for _, row in f.iterrows():
        best = sweep(market.slice(row["train_start"], row["train_end"] - bar), combinations=[
            dict(zip(GRID, c)) for c in [(a, b) for a in GRID["trend.sma_slow"] for b in GRID["trend.atr_stop_mult"]]
        ], progress=False).table.iloc[0]
        assert (row["trend.sma_slow"], row["trend.atr_stop_mult"]) == (best["trend.sma_slow"],
                                                                        best["trend.atr_stop_mult"])
        assert row["is_sharpe"] == pytest.approx(best["sharpe"])
        assert row["is_trades"] == best["n_trades"] > 0
        wfe = row["oos_cagr"] / row["is_cagr"] if row["is_cagr"] > 0 else np.nan
        assert row["wfe"] == pytest.approx(wfe, nan_ok=True)


def test_a_different_future_changes_no_earlier_choice(market, wf):
    cut = wf.folds["test_start"].iloc[2]  # change every price from fold 2's test window on
    a = market.arrays
    k = market.index.searchsorted(cut)
    scaled = [x.copy() for x in (a.open, a.high, a.low, a.close)]
    for x in scaled:
        x[k:] *= np.linspace(1.0, 0.3, len(x) - k)[:, None]
    other = MarketData(market.index, market.symbols, *scaled, a.volume, a.funding)
    wf2 = walk_forward(other, grid=GRID, train="730D", test="365D", purge="7D", progress=False)
    keep = ["trend.sma_slow", "trend.atr_stop_mult", "is_sharpe"]
    pd.testing.assert_frame_equal(wf2.folds[keep].iloc[:3], wf.folds[keep].iloc[:3])  # folds 0-2 trained before
    early = wf.oos_returns.index < cut
    np.testing.assert_array_equal(wf2.oos_returns[early].to_numpy(), wf.oos_returns[early].to_numpy())


def test_out_of_sample_returns_are_the_test_windows_stitched(market, wf):
    r = wf.oos_returns
    assert r.index.is_monotonic_increasing and r.index.is_unique
    row = wf.folds.iloc[1]
    run = ee.backtest(market, ee.Config().with_overrides(
        {"trend.sma_slow": int(row["trend.sma_slow"]), "trend.atr_stop_mult": float(row["trend.atr_stop_mult"])}),
        start=row["train_start"], end=row["test_end"] - pd.Timedelta("1D"))
    assert row["oos_trades"] == (run.trades["entry_time"] >= row["test_start"]).sum() > 0
    run = run.returns
    window = run[(run.index >= row["test_start"]) & (run.index < row["test_end"])]
    np.testing.assert_allclose(r.loc[window.index].to_numpy(), window.to_numpy(), rtol=1e-12)
    assert wf.oos_equity.iloc[-1] == pytest.approx((1 + r).prod())


@pytest.mark.parametrize("kwargs, message", [
    ({"train": "3000D", "test": "365D"}, "longer than the data"),
    ({"train": "100D", "test": "365D"}, "need 200 to warm up"),
    ({"grid": {"trend.sma_slw": [100]}}, "did you mean 'trend.sma_slow'"),
    ({"grid": {}}, "grid is empty"),
    ({"train": "two years"}, "not a duration"),
    ({"test": "12h"}, "shorter than one bar"),
    ({"grid": {"trend.sma_slow": [100, 800]}}, "holds 730 bars but the indicators need 800"),
])
def test_bad_windows_and_grids_fail_before_any_work(market, kwargs, message):
    args = {"grid": GRID, "train": "730D", "test": "365D", **kwargs}
    t = time.perf_counter()
    with pytest.raises(ConfigError, match=message):
        walk_forward(market, progress=False, **args)
    assert time.perf_counter() - t < 1.0


def test_a_history_of_one_bar_fails_saying_so(market):
    with pytest.raises(ConfigError, match="1 bar"):
        walk_forward(market.slice("2018-01-01", "2018-01-01"), grid=GRID, progress=False)
