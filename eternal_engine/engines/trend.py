"""TREND engine (spec 3.2): 50/200 SMA trend filter with an ADX strength gate, 3 x ATR trailing stop.

Rules, all thresholds from :class:`~eternal_engine.config.TrendConfig`, decided on the close of each bar:

* long entry: close > SMA(slow) and SMA(fast) > SMA(slow) and ADX > threshold; short entry mirrored (perps only);
* exit: the close crosses back over SMA(slow), or the trailing stop (highest high since entry - mult x ATR,
  mirrored for shorts) is hit by the bar's low/high, in which case it fills at the stop (or the open on a gap);
* size: risk ``risk_per_trade`` of sleeve equity over the stop distance, at most ``max_position`` of sleeve
  equity in notional per asset, total gross notional at most ``max_leverage`` x sleeve equity (1x on spot).

A position may be re-entered on the bar after an exit if the entry conditions still hold.
Indicators are computed on each traded instrument's own OHLC (the perp's for perps).
"""
from __future__ import annotations

import numpy as np

from eternal_engine.config import TrendConfig
from eternal_engine.engines.trend_nb import TrendParams, TrendSignals, trend_signals_nb
from eternal_engine.errors import ConfigError


def trend_columns(market, cfg: TrendConfig) -> np.ndarray:
    """Indexes of the configured TREND instruments in ``market`` (ConfigError if one is missing)."""
    from eternal_engine._hints import did_you_mean

    cols = []
    for sym in cfg.symbols:
        if sym not in market.symbols:
            raise ConfigError(
                f"trend.symbols lists {sym!r}, which the data does not have{did_you_mean(sym, market.symbols)}; "
                f"available: {list(market.symbols)}"
            )
        cols.append(market.symbols.index(sym))
    return np.array(cols, dtype=np.int64)


def prepare(market, cfg: TrendConfig) -> TrendSignals:
    """Vectorised half of TREND: indicators and raw conditions for every bar, shape (bars, instruments).

    ``flags`` holds the conditions as bits (see `trend_nb`), ``confidence`` is ADX / 100 (the signal
    confidence the pre-trade check compares with ``risk.min_confidence``); columns TREND does not trade are
    0 / NaN.
    """
    from eternal_engine.indicators.nb import adx_nb, atr_nb, sma_nb

    a = market.arrays
    cols = trend_columns(market, cfg)
    n, m = a.close.shape
    every = len(cols) == m and (cols == np.arange(m)).all()
    h, lo, c = (x if every else np.ascontiguousarray(x[:, cols]) for x in (a.high, a.low, a.close))
    # outputs allocated by numpy (huge pages for big arrays: far fewer page faults than Numba's allocator)
    shape = c.shape
    fast = sma_nb(c, cfg.sma_fast, np.empty(shape))
    slow = sma_nb(c, cfg.sma_slow, np.empty(shape))
    adx = adx_nb(h, lo, c, cfg.adx_window, np.empty((3,) + shape))[0]
    atr = atr_nb(h, lo, c, cfg.atr_window, np.empty(shape))
    flags = trend_signals_nb(c, fast, slow, adx, cfg.adx_threshold, np.empty(shape, dtype=np.uint8))
    conf = np.empty(shape, dtype=np.float32)
    np.multiply(adx, 0.01, out=conf, casting="same_kind")
    if every:
        return TrendSignals(flags, atr, conf)
    flags_full = np.zeros((n, m), dtype=np.uint8)
    flags_full[:, cols] = flags
    atr_full = np.full((n, m), np.nan)
    atr_full[:, cols] = atr
    conf_full = np.full((n, m), np.nan, dtype=np.float32)
    conf_full[:, cols] = conf
    return TrendSignals(flags_full, atr_full, conf_full)


def params(cfg: TrendConfig) -> TrendParams:
    return TrendParams(
        float(cfg.atr_stop_mult), float(cfg.risk_per_trade), float(cfg.max_position), float(cfg.max_leverage),
        bool(cfg.allow_short),
    )
