"""Oracle: replaying our fills through vectorbt's Portfolio.from_orders gives the same equity curve."""
import numpy as np
import pytest

from eternal_engine import backtest, load_sample
from eternal_engine.config import Config

vbt = pytest.importorskip("vectorbt")


def spot_long_only_run(atr_stop_mult):
    cfg = Config().with_overrides({
        "trend.symbols": ["BTC-SPOT", "ETH-SPOT", "SOL-SPOT"], "trend.allow_short": False,
        "trend.atr_stop_mult": atr_stop_mult, "trend.max_position": 0.3, "trend.max_leverage": 1.0,
        "execution.slippage": 0.0005, "portfolio.dca_amount": 0.0,
    })
    return backtest(load_sample(), cfg, engines=["trend"])


@pytest.mark.parametrize("atr_stop_mult", [3.0, 1.5])
def test_fills_replayed_in_vectorbt_give_the_same_equity(atr_stop_mult):
    result = spot_long_only_run(atr_stop_mult)
    market, fills = result.market, result.orders
    assert (fills["reason"] == "trailing_stop").sum() >= 5 and (fills["side"] == "sell").sum() >= 10
    assert result.funding_payments.empty

    # Within a bar our loop fills market orders at the open, then stops, then (next_close mode) at the close.
    # Give vectorbt three rows per bar in that order, so a bar with an entry and a stop exit replays exactly;
    # equity is compared on each bar's last row.
    step = {"open": 0, "stop": 1, "close": 2}
    n, m = market.arrays.close.shape
    close = np.repeat(market.arrays.close, 3, axis=0)
    rows = 3 * fills["bar"].to_numpy() + fills["price_type"].map(step).to_numpy()
    cols = np.array([market.symbols.index(s) for s in fills["symbol"]])
    assert len(set(zip(rows, cols))) == len(rows), "at most one fill per bar, column and price type"
    size = np.full(close.shape, np.nan)
    price = np.full(close.shape, np.nan)
    size[rows, cols] = np.where(fills["side"] == "buy", 1.0, -1.0) * fills["qty"].to_numpy()
    price[rows, cols] = fills["price"].to_numpy()
    if atr_stop_mult < 2:  # tight stops: some entries are stopped out in their own bar
        assert len(set(zip(fills["bar"], cols))) < len(fills)

    pf = vbt.Portfolio.from_orders(
        close=close, size=size, price=price, size_type="amount", direction="both",
        fees=result.config.execution.spot_taker_fee, init_cash=result.config.portfolio.initial_capital,
        cash_sharing=True, group_by=True, call_seq="auto", freq="1D",
    )
    assert pf.orders.count() == len(fills)
    ours = result.equity.to_numpy()
    theirs = pf.value().to_numpy()[2::3]
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
