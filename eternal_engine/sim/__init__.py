"""The portfolio simulator: one Numba bar loop (:mod:`.nb`) behind a small Python wrapper.

``simulate(market, config, engines=None, orders=None)`` runs the four engines (or a subset), or replays an
external order array (signed quantities decided on each bar's close, filled like engine orders), and returns a
:class:`~eternal_engine.result.BacktestResult`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from eternal_engine.config import ENGINES, Config
from eternal_engine.errors import ConfigError, DataError


def check_engines(engines) -> tuple[str, ...]:
    """Validated engine names, in the canonical order of `config.ENGINES`."""
    from eternal_engine._hints import did_you_mean

    if isinstance(engines, str):
        engines = [engines]
    engines = tuple(engines)
    if not engines:
        raise ConfigError("engines is empty: pass e.g. engines=['trend'] (or None for all four)")
    for e in engines:
        if e not in ENGINES:
            raise ConfigError(f"unknown engine {e!r}{did_you_mean(e, ENGINES)}; engines are {list(ENGINES)}")
    if len(set(engines)) != len(engines):
        raise ConfigError(f"engines lists a name twice: {list(engines)}")
    return tuple(e for e in ENGINES if e in engines)


def simulate(market, config: Config | None = None, *, engines=None, orders=None, fear_greed=None,
             trade_from=None):
    """Run the bar loop over ``market`` with either ``engines`` or an external ``orders`` array.

    Parameters
    ----------
    market : MarketData
    config : Config (defaults to ``Config()``)
    engines : engine names to run (default: all four, when no ``orders`` are given). Each runs in its own
        sleeve; capital, contributions and rebalancing follow ``portfolio.allocation`` renormalised over them.
    orders : DataFrame (index within ``market.index``, columns = symbols) of signed quantities decided on
        the close of each bar, replayed with the engines' fill rules in one "external" sleeve holding all the
        capital, without governance or contributions. Useful to replay another tool's orders or to test
        accounting.
    fear_greed : optional Series of a fear-&-greed index (0-100) for TACTICAL, stamped when each value became
        known; aligned to the bars as of each bar's open.
    trade_from : optional first bar (UTC time) on which the engines may decide. The bars before it only warm up
        the indicators (and TACTICAL's all-time high): no order, no contribution, no breaker move, so the
        result is the run from ``trade_from`` on, with its indicators ready on its first bar.
    """
    from eternal_engine.result import BacktestResult
    from eternal_engine.sim import build
    from eternal_engine.sim import nb as sim_nb
    from eternal_engine.sim.records import new_record_buffers, new_trade_state

    config = config or Config()
    if orders is not None and engines:
        raise ConfigError("pass either engines or orders, not both")
    engines = () if orders is not None else check_engines(ENGINES if engines is None else engines)
    a = market.arrays
    n, m = a.close.shape
    names = tuple(engines) if orders is None else ("external",)
    ext_qty = _order_array(market, orders) if orders is not None else np.zeros((0, m))
    g = {k: build.group(k, market, config, names, fear_greed) for k in build.GROUPS}
    first = _first_trading_bar(market, trade_from)
    if first:
        g["calendar"] = build.warm_up(g["calendar"], first)
    init_cash = g["cash"]
    out = sim_nb.kernel_for(g["sleeves"], len(names))(
        (a.open, a.high, a.low, a.close, a.funding, a.kind, a.ts_ns), g["costs"], g["sleeves"], g["trend"],
        g["core"], g["funding"], g["tactical"], g["risk"], g["orch"], g["calendar"], ext_qty, init_cash,
        new_trade_state(len(names), m), sleeve_eq := np.empty((n, len(names))), level := np.empty(n, np.int8),
        state := np.empty((n, len(names)), np.uint8), *new_record_buffers(n, len(names), m, a.funding),
    )
    *records, stops, entry_dist = out
    out = (sleeve_eq, level, state, *records)
    if first:
        market, out = market.slice(start=market.index[first]), _from_bar(out, first)
    frame = lambda a: pd.DataFrame(a, index=list(names), columns=list(market.symbols))  # noqa: E731
    return BacktestResult(market, config, tuple(names), init_cash, out, frame(stops), frame(entry_dist))


def _first_trading_bar(market, trade_from) -> int:
    from eternal_engine.data.market import _utc

    if trade_from is None:
        return 0
    first = int(market.index.searchsorted(_utc(trade_from), side="left"))
    if first >= len(market.index):
        raise DataError(f"no bars to trade from {trade_from} on: the data ends at {market.index[-1]}",
                        fix=f"choose a time up to {market.index[-1]}")
    return first


def _from_bar(out: tuple, first: int) -> tuple:
    """The simulator's outputs from bar ``first`` on, record bars renumbered (nothing is recorded before it)."""
    sleeve_eq, level, state, *records = out
    shifted = []
    for rec in records:
        rec = rec.copy()
        for field in ("bar", "entry_bar", "exit_bar"):
            if field in rec.dtype.names:
                keep = rec[field] >= 0
                if (rec[field][keep] < first).any():
                    raise RuntimeError(f"the warm-up recorded a {field} before bar {first}")
                rec[field][keep] -= first
        shifted.append(rec)
    return (sleeve_eq[first:], level[first:], state[first:], *shifted)


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
