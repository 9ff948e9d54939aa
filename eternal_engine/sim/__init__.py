"""The portfolio simulator: one Numba bar loop (:mod:`.nb`) behind a small Python wrapper.

``simulate(market, config, engines=("trend",), orders=None)`` runs the engines and/or replays an external order
array (signed quantities decided on each bar's close, filled like engine orders) and returns a
:class:`~eternal_engine.result.BacktestResult`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from eternal_engine.config import ENGINES, Config
from eternal_engine.errors import ConfigError, DataError

AVAILABLE_ENGINES = ("trend",)


def check_engines(engines) -> tuple[str, ...]:
    from eternal_engine._hints import did_you_mean

    engines = tuple(engines)
    if not engines:
        raise ConfigError("engines is empty: pass e.g. engines=['trend']")
    for e in engines:
        if e not in ENGINES:
            raise ConfigError(f"unknown engine {e!r}{did_you_mean(e, ENGINES)}; engines are {list(ENGINES)}")
        if e not in AVAILABLE_ENGINES:
            raise ConfigError(
                f"engine {e!r} does not run in this release; available: {list(AVAILABLE_ENGINES)}"
            )
    if len(set(engines)) != len(engines):
        raise ConfigError(f"engines lists a name twice: {list(engines)}")
    return engines


def simulate(market, config: Config | None = None, *, engines=None, orders=None):
    """Run the bar loop over ``market`` with either ``engines`` or an external ``orders`` array.

    Parameters
    ----------
    market : MarketData
    config : Config (defaults to ``Config()``)
    engines : engine names to run (default ``("trend",)`` when no ``orders`` are given).
    orders : DataFrame (index within ``market.index``, columns = symbols) of signed quantities decided on
        the close of each bar, replayed with the engines' fill rules in one "external" sleeve holding all the
        capital. Useful to replay another tool's orders or to test accounting.

    Capital is split among the engines that run in proportion to ``portfolio.allocation``.
    """
    from eternal_engine.engines import trend as trend_engine
    from eternal_engine.result import BacktestResult
    from eternal_engine.sim.nb import simulate_nb
    from eternal_engine.sim.records import new_record_buffers, new_trade_state

    config = config or Config()
    if orders is not None and engines:
        raise ConfigError("pass either engines or orders, not both")
    engines = () if orders is not None else check_engines(engines or ("trend",))
    a = market.arrays
    n, m = a.close.shape
    if orders is not None:
        sleeves, weights = ["external"], np.ones(1)
    else:
        sleeves = list(engines)
        weights = np.array([config.portfolio.allocation.get(s, 0.0) for s in engines])
        if weights.sum() <= 0:
            raise ConfigError(f"portfolio.allocation gives no capital to {sleeves}: give them a positive weight")
    init_cash = config.portfolio.initial_capital * weights / weights.sum()

    if "trend" in engines:
        sig = trend_engine.prepare(market, config.trend)
        cols = trend_engine.trend_columns(market, config.trend)
        trend_sleeve = sleeves.index("trend")
    else:
        sig = trend_engine.TrendSignals(np.zeros((0, m), dtype=np.uint8), np.zeros((0, m)))
        cols, trend_sleeve = np.zeros(0, dtype=np.int64), -1
    if orders is not None:
        ext_qty, ext_sleeve = _order_array(market, orders), sleeves.index("external")
    else:
        ext_qty, ext_sleeve = np.zeros((0, m)), -1

    ex = config.execution
    taker = np.where(a.kind == 1, ex.perp_taker_fee, ex.spot_taker_fee).astype(np.float64)
    out = simulate_nb(
        a.open, a.high, a.low, a.close, a.funding, a.kind, taker, float(ex.slippage), ex.fill == "next_close",
        init_cash, trend_sleeve, cols, sig, trend_engine.params(config.trend), ext_sleeve, ext_qty,
        new_trade_state(len(sleeves), m), np.empty((n, len(sleeves))), *new_record_buffers(n, len(sleeves), m),
    )
    return BacktestResult(market, config, tuple(sleeves), init_cash, out)


def _order_array(market, orders) -> np.ndarray:
    if not isinstance(orders, pd.DataFrame):
        raise DataError("orders must be a DataFrame of signed quantities (index: bar times, columns: symbols)")
    unknown = [c for c in orders.columns if c not in market.symbols]
    if unknown:
        raise DataError(f"orders has columns not in the data: {unknown}", fix=f"use {list(market.symbols)}")
    idx = pd.DatetimeIndex(orders.index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    pos = market.index.get_indexer(idx)
    if (pos < 0).any():
        raise DataError("orders has a timestamp that is not a bar of the data", timestamp=idx[pos < 0][0],
                        fix="index orders by bar open times of the market data")
    qty = np.zeros(market.arrays.close.shape)
    vals = orders.to_numpy(dtype=np.float64)
    if not np.isfinite(vals).all():
        bad = np.flatnonzero(~np.isfinite(vals).all(axis=1))[0]
        raise DataError("orders has NaN or infinite quantities", timestamp=idx[bad], fix="use 0 for no order")
    for k, c in enumerate(orders.columns):
        qty[pos, market.symbols.index(c)] = vals[:, k]
    return qty
