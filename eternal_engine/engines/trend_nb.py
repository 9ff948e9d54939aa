"""TREND kernels (spec 3.2): vectorised signals and the per-bar, path-dependent step.

The step is called by the simulator once per bar and, in live trading, once per closed bar: the same code.
"""
from collections import namedtuple

import numpy as np
from numba import njit

TrendSignals = namedtuple("TrendSignals", ["long_entry", "short_entry", "long_exit", "short_exit", "atr"])
TrendParams = namedtuple("TrendParams", ["stop_mult", "risk_per_trade", "max_position", "max_leverage", "allow_short"])

_PERP = 1


@njit(cache=True)
def trend_signals_nb(close, sma_fast, sma_slow, adx, adx_threshold):
    """Raw conditions on the close of each bar (NaN indicators give False).

    long entry: close > SMA_slow and SMA_fast > SMA_slow and ADX > threshold; short entry mirrored;
    long exit: close < SMA_slow; short exit: close > SMA_slow.
    """
    n, m = close.shape
    le = np.zeros((n, m), dtype=np.bool_)
    se = np.zeros((n, m), dtype=np.bool_)
    lx = np.zeros((n, m), dtype=np.bool_)
    sx = np.zeros((n, m), dtype=np.bool_)
    for j in range(m):
        for t in range(n):
            c, f, s, a = close[t, j], sma_fast[t, j], sma_slow[t, j], adx[t, j]
            strong = a > adx_threshold
            le[t, j] = c > s and f > s and strong
            se[t, j] = c < s and f < s and strong
            lx[t, j] = c < s
            sx[t, j] = c > s
    return le, se, lx, sx


@njit(cache=True)
def trend_step_nb(qty, stop, extreme, close, high, low, atr, long_entry, short_entry, long_exit, short_exit,
                  is_perp, equity, gross, params):
    """Decide TREND's order for one instrument of one sleeve on the close of a bar.

    Inputs are the position ``qty`` and its ``stop``/``extreme`` (highest high, or lowest low, since entry),
    the bar's close/high/low, ATR and raw signals, the sleeve's ``equity`` and ``gross`` notional so far.
    Trails the stop of an open position (extreme - mult x ATR for longs, + for shorts; it only tightens),
    exits on the SMA cross, and sizes an entry as ``min(risk x equity / (mult x ATR),
    max_position x equity / close, (max_leverage x equity - gross) / close)`` (leverage 1x on spot).

    Returns ``(stop, extreme, order_qty, reason, stop_dist)``; ``order_qty`` 0 means no order.
    Scalars in, scalars out: a per-bar kernel taking arrays would pay reference-count traffic on every call.
    """
    mult = params.stop_mult
    if qty > 0.0:
        if high > extreme:
            extreme = high
        cand = extreme - mult * atr
        if cand > stop:  # a NaN ATR leaves the stop unchanged
            stop = cand
        if long_exit:
            return stop, extreme, -qty, 2, np.nan
        return stop, extreme, 0.0, -1, np.nan
    if qty < 0.0:
        if low < extreme:
            extreme = low
        cand = extreme + mult * atr
        if cand < stop:
            stop = cand
        if short_exit:
            return stop, extreme, -qty, 2, np.nan
        return stop, extreme, 0.0, -1, np.nan
    direction = 0
    if long_entry:
        direction = 1
    elif short_entry and params.allow_short and is_perp:
        direction = -1
    if direction == 0 or not atr > 0.0 or not equity > 0.0:
        return stop, extreme, 0.0, -1, np.nan
    dist = mult * atr
    size = params.risk_per_trade * equity / dist
    size = min(size, params.max_position * equity / close)
    lev = params.max_leverage if is_perp else min(params.max_leverage, 1.0)
    size = min(size, (lev * equity - gross) / close)
    if not size > 0.0:
        return stop, extreme, 0.0, -1, np.nan
    return stop, extreme, direction * size, 0 if direction > 0 else 1, dist
