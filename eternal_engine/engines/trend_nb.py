"""TREND kernels (spec 3.2): vectorised signals and the per-bar, path-dependent step.

The step is called by the simulator once per bar and, in live trading, once per closed bar: the same code.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from eternal_engine.risk.sizing_nb import size_nb
from eternal_engine.sim.records import REASON_ENTRY_LONG, REASON_ENTRY_SHORT, REASON_EXIT_SIGNAL

TrendSignals = namedtuple("TrendSignals", ["flags", "atr", "confidence"])  # confidence: ADX / 100 (float32)
TrendParams = namedtuple("TrendParams", ["stop_mult", "risk_per_trade", "max_position", "max_leverage", "allow_short"])

# Bits of ``TrendSignals.flags`` (one byte per bar and instrument: one memory read per bar in the loop).
LONG_ENTRY, SHORT_ENTRY, LONG_EXIT, SHORT_EXIT = 1, 2, 4, 8
ENTRY = LONG_ENTRY | SHORT_ENTRY


@njit(cache=True, inline="always")
def signal_bits_nb(c, fast, slow, adx, adx_threshold):
    """The raw conditions on one bar's close as bit flags (NaN indicators give no flag).

    LONG_ENTRY: close > SMA_slow and SMA_fast > SMA_slow and ADX > threshold; SHORT_ENTRY mirrored;
    LONG_EXIT: close < SMA_slow; SHORT_EXIT: close > SMA_slow.
    """
    strong = adx > adx_threshold
    above, below = c > slow, c < slow
    # without branches: the conditions flip at random from bar to bar
    return (LONG_ENTRY * (above & (fast > slow) & strong) | SHORT_ENTRY * (below & (fast < slow) & strong)
            | LONG_EXIT * below | SHORT_EXIT * above)


@njit(cache=True, nogil=True)
def trend_flags_nb(close, at, cols, sma_fast, sma_slow, adx, adx_threshold, out):
    """`signal_bits_nb` of the instruments ``cols`` (distinct: the config rejects repeats) into ``out`` (uint8,
    bars x all instruments), 0 elsewhere.
    ``close`` and the indicators hold only the instruments some config trades: instrument ``j`` is their
    column ``at[j]``."""
    n, m_t = close.shape
    if cols.shape[0] == m_t == out.shape[1]:  # every instrument, in the tables' order: one flat loop over all
        # elements vectorises (strided columns do not: 7x slower); inputs not in C order are copied
        c, f, s, a, o = close.ravel(), sma_fast.ravel(), sma_slow.ravel(), adx.ravel(), out.reshape(-1)
        for k in range(c.shape[0]):
            o[k] = signal_bits_nb(c[k], f[k], s[k], a[k], adx_threshold)
        return out
    if cols.shape[0] < out.shape[1]:
        out[:] = 0
    for j in cols:
        p = at[j]
        for t in range(n):
            out[t, j] = signal_bits_nb(close[t, p], sma_fast[t, p], sma_slow[t, p], adx[t, p], adx_threshold)
    return out


def pack_signals(long_entry, short_entry, long_exit, short_exit) -> np.ndarray:
    """Boolean condition arrays -> the uint8 flags the step kernel reads (for tests and custom signals)."""
    flags = np.zeros(np.shape(long_entry), dtype=np.uint8)
    for mask, bit in ((long_entry, LONG_ENTRY), (short_entry, SHORT_ENTRY), (long_exit, LONG_EXIT),
                      (short_exit, SHORT_EXIT)):
        flags |= np.where(np.asarray(mask, dtype=bool), bit, 0).astype(np.uint8)
    return flags


@njit(cache=True, inline="always")
def trend_step_nb(qty, stop, extreme, close, high, low, atr, flags, is_perp, equity, gross, cap_notional, kelly,
                  size_mult, stop_mult, params):
    """Decide TREND's order for one instrument of one sleeve on the close of a bar.

    Inputs are the position ``qty`` and its ``stop``/``extreme`` (highest high, or lowest low, since entry),
    the bar's close/high/low, ATR and signal ``flags`` (entry bits already cleared by the pre-trade checks),
    the sleeve's ``equity`` and ``gross`` notional so far, and the risk layer's ``cap_notional`` (position cap),
    ``kelly`` fraction (NaN: not enough trades yet), ``size_mult`` and ``stop_mult`` (breaker-adjusted ATR
    multiple). Trails the stop of an open position (extreme - stop_mult x ATR for longs, + for shorts; it only
    tightens), exits on the SMA cross, and sizes an entry with `size_nb` (1 % risk over the stop distance,
    Kelly, cap) within the leverage room ``max_leverage x equity - gross`` (1x on spot).

    Returns ``(stop, extreme, order_qty, reason, stop_dist)``; ``order_qty`` 0 means no order.
    Scalars in, scalars out: a per-bar kernel taking arrays would pay reference-count traffic on every call.
    """
    if qty > 0.0:
        if high > extreme:
            extreme = high
        cand = extreme - stop_mult * atr
        if cand > stop:  # a NaN ATR leaves the stop unchanged
            stop = cand
        if flags & LONG_EXIT:
            return stop, extreme, -qty, REASON_EXIT_SIGNAL, np.nan
        return stop, extreme, 0.0, -1, np.nan
    if qty < 0.0:
        if low < extreme:
            extreme = low
        cand = extreme + stop_mult * atr
        if cand < stop:
            stop = cand
        if flags & SHORT_EXIT:
            return stop, extreme, -qty, REASON_EXIT_SIGNAL, np.nan
        return stop, extreme, 0.0, -1, np.nan
    direction = 0
    if flags & LONG_ENTRY:
        direction = 1
    elif flags & SHORT_ENTRY and params.allow_short and is_perp:
        direction = -1
    if direction == 0 or not atr > 0.0 or not equity > 0.0:
        return stop, extreme, 0.0, -1, np.nan
    dist = stop_mult * atr
    size = size_nb(equity, close, dist, params.risk_per_trade, kelly, cap_notional, size_mult)
    lev = params.max_leverage if is_perp else min(params.max_leverage, 1.0)
    size = min(size, (lev * equity - gross) / close)
    if not size > 0.0:
        return stop, extreme, 0.0, -1, np.nan
    return stop, extreme, direction * size, REASON_ENTRY_LONG if direction > 0 else REASON_ENTRY_SHORT, dist
