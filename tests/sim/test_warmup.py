"""``trade_from``: the bars before it only warm up the indicators; the result starts there."""
import numpy as np
import pandas as pd
import pytest

import eternal_engine as ee
from eternal_engine.engines import trend as trend_engine
from eternal_engine.engines.trend_nb import ENTRY
from eternal_engine.errors import DataError
from eternal_engine.sim.records import EV_CONTRIBUTION
from tests.helpers import UNGOVERNED

CFG = ee.Config().with_overrides({**UNGOVERNED, "trend.sma_fast": 10, "trend.sma_slow": 60})


@pytest.fixture(scope="module")
def market():
    return ee.load_sample().slice(end="2020-12-31")


def test_trade_from_the_first_bar_changes_nothing(market):
    a = ee.backtest(market, CFG)
    b = ee.backtest(market, CFG, trade_from=market.index[0])
    np.testing.assert_array_equal(a.equity.to_numpy(), b.equity.to_numpy())
    assert len(a.fill_records) == len(b.fill_records)


def test_the_first_entry_is_the_first_signal_after_trade_from_with_indicators_warmed_on_earlier_bars(market):
    k = 400
    start = market.index[k]
    r = ee.backtest(market, CFG, engines=["trend"], trade_from=start)
    assert r.equity.index[0] == start and len(r.equity) == len(market.index) - k
    assert r.equity.iloc[0] == CFG.portfolio.initial_capital  # nothing happened before: the capital is intact
    # the oracle: TREND's entry flags on the whole data; the first one at or after bar k is the first entry
    flags = trend_engine.prepare(market, CFG.trend).flags
    cols = trend_engine.trend_columns(market, CFG.trend)
    first_signal = min(t for t in range(k, len(market.index)) if (flags[t, cols] & ENTRY).any())
    assert first_signal - k < CFG.trend.sma_slow  # the warm-up matters for this case
    log = r.order_log
    assert log.index[0] == market.index[first_signal]
    # the same window without the bars before it: TREND waits sma_slow bars for its own warm-up
    cold = ee.backtest(market.slice(start=start), CFG, engines=["trend"])
    assert (cold.order_log.index - start).min() >= pd.Timedelta(days=CFG.trend.sma_slow - 1)


def test_no_record_and_no_contribution_before_trade_from(market):
    cfg = ee.Config().with_overrides({"portfolio.dca_amount": 500.0})
    start = market.index[200]
    full = ee.backtest(market, cfg)
    r = ee.backtest(market, cfg, trade_from=start)
    for rec in (r.order_records, r.fill_records, r.funding_records, r.event_records):
        assert (rec["bar"] >= 0).all()
    paid = r.event_records[r.event_records["kind"] == EV_CONTRIBUTION]
    assert len(paid) > 0 and paid["bar"].min() > 0  # never on the first bar: that money is the initial capital
    # contributions fall on the same calendar as in a run over all the data
    full_paid = full.event_records[full.event_records["kind"] == EV_CONTRIBUTION]
    full_days = set(market.index[full_paid["bar"]])
    assert set(r.market.index[paid["bar"]]) == {d for d in full_days if d > start}


def test_trade_from_after_the_data_is_a_clear_error(market):
    with pytest.raises(DataError, match="no bars to trade from"):
        ee.backtest(market, CFG, trade_from="2031-01-01")
    with pytest.raises(DataError, match="not a date"):
        ee.backtest(market, CFG, trade_from="soon")


def test_final_stops_are_the_stops_the_next_bar_triggers_and_entries_carry_their_stop_distance(market):
    """The stop reported after bar e-1 is the price a trailing-stop exit on bar e fills at (no gap), and an
    entry decided on the last bar carries the distance its stop is placed at from its fill."""
    cfg = ee.Config().with_overrides(UNGOVERNED)
    full = ee.backtest(market, cfg, engines=["trend"])
    fills = full.orders
    stops = fills[fills["price_type"] == "stop"]
    assert len(stops) >= 3
    slip = cfg.execution.slippage
    for time, row in stops.head(3).iterrows():
        before = ee.backtest(market.slice(end=time - pd.Timedelta(days=1)), cfg, engines=["trend"])
        stop = before.final_stops.loc["trend", row["symbol"]]
        sell = row["side"] == "sell"
        opened = market.open.loc[time, row["symbol"]]
        touched = min(stop, opened) if sell else max(stop, opened)  # the stop, or the open on a gap through it
        assert row["price"] == pytest.approx(touched * (1 - slip if sell else 1 + slip), rel=1e-12)
        assert before.final_stops.loc["trend"].notna().sum() == (before.positions.iloc[-1] != 0).sum()
    entries = fills[fills["reason"].isin(["entry_long", "entry_short"])]
    time, row = next(iter(entries.iterrows()))
    decided = ee.backtest(market.slice(end=time - pd.Timedelta(days=1)), cfg, engines=["trend"])
    dist = decided.entry_stop_dist.loc["trend", row["symbol"]]
    assert np.isfinite(dist) and decided.entry_stop_dist.notna().sum(axis=None) >= 1
    # the stop rests at fill -/+ dist from the bar of the fill on
    after = ee.backtest(market.slice(end=time), cfg, engines=["trend"])
    sign = 1.0 if row["side"] == "buy" else -1.0
    trailed = after.final_stops.loc["trend", row["symbol"]]
    assert sign * trailed >= sign * (row["price"] - sign * dist) - 1e-9  # it only tightens from there
    assert np.isnan(after.entry_stop_dist.loc["trend", row["symbol"]])
