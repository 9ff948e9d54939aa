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
def trend_step_nb(t, s, cols, close, high, low, kind, sig, params, pos, equity, stop, extreme,
                  out_qty, out_reason, out_stop_dist):
    """Decide TREND orders for sleeve ``s`` on the close of bar ``t``.

    Trails the stops of open positions (highest high since entry - mult x ATR for longs, lowest low + mult x
    ATR for shorts; stops only ever tighten), exits on the SMA cross, and sizes entries as
    ``min(risk x equity / (mult x ATR), max_position x equity / close)`` within the leverage cap on the
    sleeve's gross notional (1x for spot). Writes signed quantities to ``out_qty`` (0 = no order), the
    reason code to ``out_reason`` and, for entries, the stop distance to ``out_stop_dist``.
    """
    mult = params.stop_mult
    gross = 0.0
    for j in range(close.shape[1]):
        gross += abs(pos[s, j]) * close[t, j]
    for k in range(cols.shape[0]):
        i = cols[k]
        p = pos[s, i]
        a = sig.atr[t, i]
        if p > 0.0:
            if high[t, i] > extreme[s, i]:
                extreme[s, i] = high[t, i]
            cand = extreme[s, i] - mult * a
            if cand > stop[s, i]:  # NaN ATR leaves the stop unchanged
                stop[s, i] = cand
            if sig.long_exit[t, i]:
                out_qty[i] = -p
                out_reason[i] = 2
        elif p < 0.0:
            if low[t, i] < extreme[s, i]:
                extreme[s, i] = low[t, i]
            cand = extreme[s, i] + mult * a
            if cand < stop[s, i]:
                stop[s, i] = cand
            if sig.short_exit[t, i]:
                out_qty[i] = -p
                out_reason[i] = 2
        else:
            direction = 0
            if sig.long_entry[t, i]:
                direction = 1
            elif sig.short_entry[t, i] and params.allow_short and kind[i] == _PERP:
                direction = -1
            if direction == 0 or not a > 0.0 or not equity > 0.0:
                continue
            price = close[t, i]
            dist = mult * a
            qty = params.risk_per_trade * equity / dist
            cap = params.max_position * equity / price
            if qty > cap:
                qty = cap
            lev = params.max_leverage if kind[i] == _PERP else min(params.max_leverage, 1.0)
            room = (lev * equity - gross) / price
            if qty > room:
                qty = room
            if qty <= 0.0:
                continue
            gross += qty * price
            out_qty[i] = direction * qty
            out_reason[i] = 0 if direction > 0 else 1
            out_stop_dist[i] = dist
