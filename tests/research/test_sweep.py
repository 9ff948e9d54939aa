"""Sweeps: every row equals the backtest it stands for; bad grids fail before any work; Dask gives the same."""
import time

import numpy as np
import pandas as pd
import pytest

import eternal_engine as ee
from eternal_engine.errors import ConfigError
from eternal_engine.research.sweep import combinations_of, sweep
from eternal_engine.research.sweep_nb import RUN_STATS, SWEEP_STATS


@pytest.fixture(scope="module")
def market():
    return ee.load_sample().slice(end="2019-12-31")


GRID = {"trend.sma_slow": [100, 200], "trend.atr_stop_mult": [2.0, 3.0]}


@pytest.fixture(scope="module")
def result(market):
    return sweep(market, grid=GRID, progress=False)


def _assert_row_is(row, s, where=""):
    """A sweep row's statistics equal its backtest's `Result.stats` (sums in another order: 1e-12; funding
    payments of both signs can cancel, hence an absolute tolerance for their sum)."""
    for key in SWEEP_STATS + RUN_STATS:
        if key in ("n_trades", "max_breaker_level", "liquidations"):
            assert row[key] == s[key] and isinstance(row[key], (int, np.integer)), (where, key)
        else:
            tol = 1e-9 if key == "funding_net" else 0.0
            assert row[key] == pytest.approx(s[key], rel=1e-12, abs=tol, nan_ok=True), (where, key)


def test_every_row_equals_its_own_backtest(market, result):
    assert len(result.table) == 4 and set(result.table["combo"]) == {0, 1, 2, 3}
    for _, row in result.table.iterrows():
        cfg = ee.Config().with_overrides({k: row[k] for k in GRID})
        s = ee.backtest(market, cfg).stats()
        assert row["config_hash"] == cfg.config_hash()
        _assert_row_is(row, s)
        assert s["n_trades"] > 100 and s["max_breaker_level"] >= 1 and s["fees_paid"] > 0 and s["funding_net"] != 0
    # sorted by the objective, best first; best_config rebuilds that row's config
    assert result.table["sharpe"].is_monotonic_decreasing
    assert result.best_config().config_hash() == result.table["config_hash"].iloc[0]


def test_daily_returns_are_kept_per_combination_for_the_overfitting_statistics(market, result):
    d = result.daily_returns
    assert d.shape == (len(pd.date_range(market.index[0], market.index[-1], freq="D")), 4)
    best = result.table.iloc[0]
    r = ee.backtest(market, ee.Config().with_overrides({k: best[k] for k in GRID})).returns
    # daily bars: the same returns, kept as float32
    assert d.dtypes.eq(np.float32).all()
    np.testing.assert_allclose(d[best["combo"]].to_numpy(), r.to_numpy(), rtol=1e-6, atol=1e-12)


# one or two keys of every input group of the bar loop (`sim.build.GROUPS`), TREND's indicators and its
# parameters: combinations that share some inputs and differ in others must each equal their own backtest
MIXED = [
    {},
    {"trend.sma_fast": 20, "trend.adx_window": 10},
    {"trend.atr_window": 20, "trend.adx_threshold": 20.0},
    {"trend.atr_stop_mult": 2.0, "trend.max_leverage": 1.5},
    {"execution.slippage": 0.002, "perp.maintenance_margin_rate": 0.01},
    {"core_hodl.min_order_value": 50.0, "core_hodl.rebalance_threshold": 0.05},
    {"core_hodl.rebalance_calendar": "monthly"},
    {"funding.perp_leverage": 1.5, "funding.entry_rate_8h": 0.0002},
    {"tactical.profit_target": 0.5},
    {"risk.kelly_fraction": 0.25, "risk.daily_loss_limit": 0.03},
    {"orchestrator.rebalance_threshold": 0.08, "portfolio.dca_amount": 0.0},
    {"portfolio.dca_day": 15, "portfolio.initial_capital": 50_000.0},
    {"portfolio.allocation": {"core_hodl": 0.4, "trend": 0.3, "funding": 0.2, "tactical": 0.1}},
]


def test_combinations_sharing_some_inputs_each_equal_their_backtest(market):
    res = sweep(market, combinations=MIXED, progress=False, chunk_size=5)
    hashes = set()
    for _, row in res.table.iterrows():
        cfg = ee.Config().with_overrides(MIXED[row["combo"]])
        hashes.add(cfg.config_hash())
        r = ee.backtest(market, cfg)
        s = r.stats()
        assert row["config_hash"] == cfg.config_hash()
        _assert_row_is(row, s, MIXED[row["combo"]])
        np.testing.assert_allclose(res.daily_returns[row["combo"]].to_numpy(), r.returns.to_numpy(), rtol=1e-6,
                                   atol=1e-12)
    assert len(hashes) == len(MIXED)  # every combination really differs


def test_trend_alone_sweeps_on_its_own_loop_and_every_row_equals_its_backtest(market, monkeypatch):
    from eternal_engine.research import batch_nb

    ran = []
    real = batch_nb.sweep_batch_trend_nb
    monkeypatch.setattr(batch_nb, "sweep_batch_trend_nb", lambda *a: ran.append(len(a[-1])) or real(*a))
    grid = {"trend.sma_fast": [10, 30], "trend.sma_slow": [100, 160]}
    res = sweep(market, grid=grid, engines=["trend"], progress=False)
    assert ran == [4]  # one batch of 4 combinations, on TREND's own copy of the loop
    for _, row in res.table.iterrows():
        cfg = ee.Config().with_overrides({k: row[k] for k in grid})
        r = ee.backtest(market, cfg, engines=["trend"])
        _assert_row_is(row, r.stats(), row["combo"])
        np.testing.assert_allclose(res.daily_returns[row["combo"]].to_numpy(), r.returns.to_numpy(), rtol=1e-6,
                                   atol=1e-12)
    assert (res.table["n_trades"] > 0).all() and res.table["n_trades"].nunique() > 1


def test_run_stats_of_hand_made_records_follow_result_stats_definitions():
    from eternal_engine.research.sweep_nb import run_stats_nb
    from eternal_engine.sim.records import EV_BREAKER_DOWN, EV_LIQUIDATION, event_dt, fill_dt, trade_dt

    close = np.array([[10.0, 100.0], [11.0, 100.0], [12.0, 90.0], [12.0, 80.0], [13.0, 70.0]])
    fills = np.zeros(4, fill_dt)  # +2 of col 0 and -1 of col 1 at bar 1, col 0 closed at bar 3, col 1 at bar 4
    fills["bar"], fills["col"] = [1, 1, 3, 4], [0, 1, 0, 1]
    fills["qty"], fills["fee"] = [2.0, -1.0, -2.0, 1.0], [0.5, 0.25, 1.0, 0.125]
    trades = np.zeros(3, trade_dt)
    trades["pnl"], trades["funding"] = [5.0, -1.0, 0.0], [2.5, 0.25, 2.0]  # a zero-pnl trade is not won
    events = np.zeros(3, event_dt)
    events["kind"] = [EV_LIQUIDATION, EV_BREAKER_DOWN, EV_LIQUIDATION]
    level = np.array([0, 2, 1, 0, 0], dtype=np.int8)
    out = run_stats_nb(fills, trades, events, level, close, np.empty(len(RUN_STATS)))
    assert dict(zip(RUN_STATS, out)) == {
        "n_trades": 3, "trade_win_rate": pytest.approx(1 / 3), "max_breaker_level": 2, "liquidations": 2,
        "fees_paid": 1.875, "funding_net": 4.75, "time_in_market": 3 / 5}  # bars 1, 2, 3 hold a position
    none = run_stats_nb(fills[:0], trades[:0], events[:0], level[:0], close, out)
    assert none[0] == 0 and np.isnan(none[1]) and none[2] == 0 and none[4] == none[5] == none[6] == 0.0


def test_time_in_market_alone_equals_the_share_with_gross_exposure():
    from eternal_engine.sim.exposure_nb import gross_exposure_nb

    rng = np.random.default_rng(5)
    for _ in range(300):
        n, m, k = int(rng.integers(1, 40)), int(rng.integers(1, 4)), int(rng.integers(0, 30))
        bars = np.sort(rng.integers(0, n + 2, k))  # some after the last bar
        cols, qty = rng.integers(0, m, k), rng.choice([-1.0, 0.0, 0.5, 2.0], k)
        close = rng.uniform(0.5, 2.0, (n, m))
        positions = np.zeros((n, m))
        for b, c, q in zip(bars, cols, qty):
            positions[b:, c] += q
        share = (positions != 0).any(axis=1).mean()
        both = gross_exposure_nb(bars, cols, qty, close, rng.uniform(1.0, 2.0, n))
        alone = gross_exposure_nb(bars, cols, qty, close, close[:, 0], False)
        assert both[1] == alone[1] == pytest.approx(share, abs=1e-15) and np.isnan(alone[0])


def test_indicator_tables_built_per_chunk_above_the_memory_budget_give_the_same_sweep(market, monkeypatch):
    import sys

    from eternal_engine.engines import trend as trend_engine

    sweep_mod = sys.modules[sweep.__module__]
    built = []
    real = trend_engine.indicator_tables
    monkeypatch.setattr(trend_engine, "indicator_tables", lambda m, cfgs: built.append(len(cfgs)) or real(m, cfgs))
    combos = MIXED[:4]  # different SMA, ADX and ATR windows
    shared = sweep(market, combinations=combos, progress=False, chunk_size=2)
    assert built == [4]  # once for the whole sweep
    monkeypatch.setattr(sweep_mod, "SHARED_TABLES_MB", 0)
    per_chunk = sweep(market, combinations=combos, progress=False, chunk_size=2)
    assert built == [4, 2, 2]  # over the budget: each chunk its own windows
    pd.testing.assert_frame_equal(per_chunk.table, shared.table)
    pd.testing.assert_frame_equal(per_chunk.daily_returns, shared.daily_returns)


def test_returns_in_the_loop_equal_time_weighted_and_daily_returns_on_hourly_bars_with_a_missing_day():
    from eternal_engine.attribution import time_weighted_returns
    from eternal_engine.report import daily_returns
    from eternal_engine.research.batch import day_last_bars
    from eternal_engine.research.batch_nb import returns_nb
    from eternal_engine.sim.records import EV_CONTRIBUTION, event_dt

    idx = pd.date_range("2024-01-01 05:00", periods=24 * 6, freq="h", tz="UTC")
    idx = idx[(idx.day != 3)]  # a day without bars: its return is 0
    rng = np.random.default_rng(3)
    sleeves = 1_000.0 * np.cumprod(1 + rng.normal(0, 0.01, (len(idx), 2)), axis=0)
    events = np.zeros(3, event_dt)
    events["kind"] = [EV_CONTRIBUTION, EV_CONTRIBUTION + 1, EV_CONTRIBUTION]
    events["bar"], events["amount"] = [7, 9, 30], [150.0, 99.0, 40.0]  # the middle one is not a contribution
    sleeves[7:] += 100.0
    sleeves[7:, 1] += 50.0
    sleeves[30:, 0] += 40.0
    flows = np.zeros(len(idx))
    flows[[7, 30]] = [150.0, 40.0]
    ref = pd.Series(time_weighted_returns(sleeves.sum(axis=1), 2_000.0, flows), index=idx)
    ref_daily = daily_returns(ref)
    buf = np.zeros(len(idx))
    rets, daily = np.empty(len(idx)), np.empty(len(ref_daily))
    for _ in range(2):  # the flows buffer is left zero for the next combination
        returns_nb(sleeves, 2_000.0, events, day_last_bars(idx), buf, rets, daily)
        np.testing.assert_allclose(rets, ref.to_numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(daily, ref_daily.to_numpy(), rtol=1e-12, atol=1e-15)
        assert not buf.any()
    assert daily[2] == 0.0 and len(daily) == 7 and abs(rets[7]) < 0.05 and abs(rets[30]) < 0.05


@pytest.mark.parametrize("grid, message", [
    ({"trend.sma_slw": [100]}, "did you mean 'trend.sma_slow'"),
    ({}, "grid is empty"),
    ({"trend.sma_slow": []}, "is empty"),
    ({"trend.sma_slow": 100}, "must be a list"),
    ({"trend.sma_fast": [300]}, "below trend.sma_slow"),
    ({"trend.sma_slow": [200, 2000]}, "need 2000 to warm up"),
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
