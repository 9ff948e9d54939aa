"""Sweeps: every row equals the backtest it stands for; bad grids fail before any work; Dask gives the same."""
import time

import numpy as np
import pandas as pd
import pytest

import eternal_engine as ee
from eternal_engine.errors import ConfigError
from eternal_engine.research.sweep import combinations_of, sweep


@pytest.fixture(scope="module")
def market():
    return ee.load_sample().slice(end="2019-12-31")


GRID = {"trend.sma_slow": [100, 200], "trend.atr_stop_mult": [2.0, 3.0]}


@pytest.fixture(scope="module")
def result(market):
    return sweep(market, grid=GRID, progress=False)


def test_every_row_equals_its_own_backtest(market, result):
    assert len(result.table) == 4 and set(result.table["combo"]) == {0, 1, 2, 3}
    for _, row in result.table.iterrows():
        cfg = ee.Config().with_overrides({k: row[k] for k in GRID})
        s = ee.backtest(market, cfg).stats()
        assert row["config_hash"] == cfg.config_hash()
        for key in ("total_return", "cagr", "volatility_ann", "sharpe", "sortino", "max_drawdown", "calmar",
                    "win_rate"):
            assert row[key] == pytest.approx(s[key], rel=1e-12), key
    # sorted by the objective, best first; best_config rebuilds that row's config
    assert result.table["sharpe"].is_monotonic_decreasing
    assert result.best_config().config_hash() == result.table["config_hash"].iloc[0]


def test_daily_returns_are_kept_per_combination_for_the_overfitting_statistics(market, result):
    d = result.daily_returns
    assert d.shape == (len(pd.date_range(market.index[0], market.index[-1], freq="D")), 4)
    best = result.table.iloc[0]
    r = ee.backtest(market, ee.Config().with_overrides({k: best[k] for k in GRID})).returns
    np.testing.assert_allclose(d[best["combo"]].to_numpy(), r.to_numpy(), rtol=1e-12)  # daily bars: the same


@pytest.mark.parametrize("grid, message", [
    ({"trend.sma_slw": [100]}, "did you mean 'trend.sma_slow'"),
    ({}, "grid is empty"),
    ({"trend.sma_slow": []}, "is empty"),
    ({"trend.sma_slow": 100}, "must be a list"),
    ({"trend.sma_fast": [300]}, "below trend.sma_slow"),
])
def test_bad_grids_fail_before_any_work(market, grid, message):
    t = time.perf_counter()
    with pytest.raises(ConfigError, match=message):
        sweep(market, grid=grid, progress=False)
    assert time.perf_counter() - t < 1.0  # validation only: no simulation ran


def test_unknown_objective_and_explicit_combinations(market):
    with pytest.raises(ConfigError, match="did you mean 'sharpe'"):
        sweep(market, grid=GRID, objective="sharp", progress=False)
    combos = [{"trend.sma_slow": 120}, {"trend.sma_slow": 180, "trend.atr_stop_mult": 2.5}]
    res = sweep(market, combinations=combos, objective="max_drawdown", progress=False)
    assert len(res.table) == 2 and res.table["max_drawdown"].is_monotonic_decreasing  # closest to 0 first
    assert len(combinations_of({"a.b": [1, 2], "c.d": [3, 4, 5]})) == 6


def test_heatmap_shows_the_metric_over_two_parameters(result):
    fig = result.heatmap("trend.sma_slow", "trend.atr_stop_mult")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "trend.sma_slow" and ax.get_ylabel() == "trend.atr_stop_mult"
    with pytest.raises(ConfigError, match="not a swept parameter"):
        result.heatmap("trend.sma_fast", "trend.atr_stop_mult")


def test_dask_local_cluster_gives_identical_results(market, result):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        res = sweep(market, grid=GRID, executor=client.get_executor(), chunk_size=1, progress=False)
    pd.testing.assert_frame_equal(res.table, result.table)
    pd.testing.assert_frame_equal(res.daily_returns, result.daily_returns)


def test_overfitting_statistics_come_with_every_sweep(market, result):
    from eternal_engine.research.overfitting import deflated_sharpe_ratio, probability_of_backtest_overfitting

    dsr = result.deflated_sharpe()
    assert 0.0 <= dsr.dsr <= 1.0
    assert dsr.dsr == pytest.approx(deflated_sharpe_ratio(result.daily_returns).dsr)
    pbo = result.pbo(n_splits=4)
    assert pbo.pbo == pytest.approx(probability_of_backtest_overfitting(result.daily_returns, n_splits=4).pbo)
    assert 0.0 <= pbo.pbo <= 1.0
