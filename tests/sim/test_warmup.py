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
