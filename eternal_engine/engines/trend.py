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

from collections import namedtuple

import numpy as np

from eternal_engine._threads import beside
from eternal_engine.config import TrendConfig
from eternal_engine.engines.trend_nb import TrendParams, TrendSignals
from eternal_engine.errors import ConfigError

# indicator tables shared by many TREND configs (see `indicator_tables`): ``close``, ``sma``, ``adx`` over the
# traded instruments (``at``: instrument -> column), ``atr`` and ``confidence`` = ADX / 100 (float32) full width
TrendTables = namedtuple("TrendTables", ["close", "at", "sma", "adx", "atr", "confidence"])


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
    from eternal_engine.engines.trend_nb import trend_flags_nb

    tab, idx = indicator_tables(market, [cfg])
    fast, slow, adx, atr = idx[0]
    flags = trend_flags_nb(tab.close, tab.at, trend_columns(market, cfg), tab.sma[fast], tab.sma[slow],
                           tab.adx[adx], float(cfg.adx_threshold),
                           np.empty(market.arrays.close.shape, dtype=np.uint8))
    return TrendSignals(flags, tab.atr[atr], tab.confidence[adx])


def indicator_tables(market, cfgs) -> tuple[TrendTables, np.ndarray]:
    """The indicators TREND configs ``cfgs`` need, each window computed once (a sweep shares them).

    Returns the tables and, per config, the rows ``(sma_fast, sma_slow, adx, atr)`` of its indicators in them
    (int64, ``len(cfgs) x 4``). The SMA and ADX tables hold only the instruments some config trades (``at``
    maps an instrument to its column there); ATR and confidence, which the bar loop reads, are full width
    (NaN where no config trades).
    """
    from eternal_engine.indicators.nb import adx_nb, atr_nb, sma_nb

    a = market.arrays
    cols = np.unique(np.concatenate([trend_columns(market, c) for c in {c.symbols: c for c in cfgs}.values()]))
    n, m = a.close.shape
    every = len(cols) == m
    h, lo, c = (x if every else np.ascontiguousarray(x[:, cols]) for x in (a.high, a.low, a.close))
    at = np.full(m, -1, dtype=np.int64)
    at[cols] = np.arange(len(cols))
    sma_w = sorted({w for cf in cfgs for w in (cf.sma_fast, cf.sma_slow)})
    adx_w = sorted({cf.adx_window for cf in cfgs})
    atr_w = sorted({cf.atr_window for cf in cfgs})
    # outputs allocated by numpy (huge pages for big arrays: far fewer page faults than Numba's allocator)
    sma = np.empty((len(sma_w),) + c.shape)
    adx = np.empty((len(adx_w),) + c.shape)
    atr = np.full((len(atr_w), n, m), np.nan)
    conf = np.full((len(adx_w), n, m), np.nan, dtype=np.float32)
    def adx_tables():
        for k, w in enumerate(adx_w):
            adx[k] = adx_nb(h, lo, c, w, np.empty((3,) + c.shape))[0]
            if every:
                np.multiply(adx[k], 0.01, out=conf[k], casting="same_kind")
            else:
                conf[k][:, cols] = adx[k] * 0.01

    # ADX (the costliest: sequential Wilder smoothing, TA-Lib's divisions) on a second thread, the kernels
    # release the GIL; SMA and ATR meanwhile here
    with beside(adx_tables, name="ee-indicators"):
        for k, w in enumerate(sma_w):
            sma_nb(c, w, sma[k])
        for k, w in enumerate(atr_w):
            if every:
                atr_nb(h, lo, c, w, atr[k])
            else:
                atr[k][:, cols] = atr_nb(h, lo, c, w, np.empty(c.shape))
    row_of = [{w: k for k, w in enumerate(ws)} for ws in (sma_w, adx_w, atr_w)]
    idx = np.array([(row_of[0][cf.sma_fast], row_of[0][cf.sma_slow], row_of[1][cf.adx_window],
                     row_of[2][cf.atr_window]) for cf in cfgs], dtype=np.int64).reshape(len(cfgs), 4)
    return TrendTables(c, at, sma, adx, atr, conf), idx


def warmup(cfg: TrendConfig) -> int:
    """Bars the indicators need before TREND can signal: SMA(slow), ADX (2 x its window), ATR (window + 1)."""
    return max(cfg.sma_slow, 2 * cfg.adx_window, cfg.atr_window + 1)


def params(cfg: TrendConfig) -> TrendParams:
    return TrendParams(
        float(cfg.atr_stop_mult), float(cfg.risk_per_trade), float(cfg.max_position), float(cfg.max_leverage),
        bool(cfg.allow_short),
    )
