"""Validation of market data. Every check raises `DataError` naming the symbol, the first bad bar and the fix.

Nothing here repairs data: sorting, de-duplicating, filling gaps or clipping prices are decisions the user
makes deliberately before loading.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from eternal_engine.errors import DataError

MIN_FREQ = pd.Timedelta("1min")
MAX_FREQ = pd.Timedelta("1D")


def to_utc_index(index, *, symbol=None) -> pd.DatetimeIndex:
    """Read ``index`` as UTC bar open times: tz-naive values are taken as UTC, other zones converted."""
    try:
        idx = pd.DatetimeIndex(index)
    except (TypeError, ValueError) as e:
        raise DataError(
            f"timestamps could not be parsed: {e}", symbol=symbol,
            fix="give ISO-8601 strings, datetimes or integer epoch nanoseconds",
        ) from e
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return idx.as_unit("ns")


def check_symbols(symbols) -> None:
    seen = set()
    for s in symbols:
        if s in seen:
            raise DataError("instrument listed twice", symbol=s, fix="give each instrument once")
        seen.add(s)
    if not symbols:
        raise DataError("no instruments given", fix="pass at least one symbol")


def check_order(idx: pd.DatetimeIndex, *, symbol=None) -> None:
    """Strictly increasing timestamps, else `DataError` at the first duplicate or step back."""
    d = np.diff(idx.asi8)
    bad = np.flatnonzero(d <= 0)
    if bad.size:
        i = bad[0] + 1
        if d[bad[0]] == 0:
            raise DataError("duplicate timestamp", symbol=symbol, timestamp=idx[i],
                            fix="drop or aggregate the duplicate bars before loading")
        raise DataError("timestamps are not sorted", symbol=symbol, timestamp=idx[i],
                        fix="sort the rows by timestamp before loading (e.g. df.sort_index())")


def infer_freq(idx: pd.DatetimeIndex) -> pd.Timedelta:
    """The most common spacing between bars."""
    d = np.diff(idx.asi8)
    vals, counts = np.unique(d, return_counts=True)
    return pd.Timedelta(int(vals[np.argmax(counts)]))


def check_index(index, *, freq=None, max_gap=None, symbol=None) -> tuple[pd.DatetimeIndex, pd.Timedelta]:
    """Validate a bar index; return it as UTC with its bar size."""
    idx = to_utc_index(index, symbol=symbol)
    if len(idx) < 2 and freq is None:
        raise DataError("need at least two bars to know the bar size", symbol=symbol,
                        fix="pass more bars or freq=")
    check_order(idx, symbol=symbol)
    freq = infer_freq(idx) if freq is None else pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    if not MIN_FREQ <= freq <= MAX_FREQ:
        raise DataError(f"bar size {freq} is outside 1 minute .. 1 day", symbol=symbol,
                        fix="resample the data to a bar size between 1min and 1D")
    if len(idx) and idx.asi8[0] % freq.value and freq <= MAX_FREQ and (MAX_FREQ.value % freq.value == 0):
        raise DataError(f"bars are not aligned to the {freq} grid (epoch-aligned, UTC)", symbol=symbol,
                        timestamp=idx[0], fix="bar open times must be multiples of the bar size since 1970-01-01 UTC")
    max_gap = freq if max_gap is None else pd.Timedelta(max_gap)
    d = np.diff(idx.asi8)
    off = np.flatnonzero(d % freq.value != 0)
    if off.size:
        i = off[0] + 1
        raise DataError(f"bar spacing {pd.Timedelta(int(d[off[0]]))} is not a multiple of the bar size {freq}",
                        symbol=symbol, timestamp=idx[i], fix="resample the source to one regular bar size")
    gaps = np.flatnonzero(d > max_gap.value)
    if gaps.size:
        i = gaps[0]
        raise DataError(f"gap of {pd.Timedelta(int(d[i]))} after {idx[i]} exceeds max_gap={max_gap}",
                        symbol=symbol, timestamp=idx[i + 1],
                        fix="pass a larger max_gap= to accept it, or fill the gap deliberately before loading")
    return idx, freq


def check_arrays(idx, symbols, open, high, low, close, volume, funding, kind) -> None:
    """Values: finite, positive prices, high >= low, open/close inside [low, high], volume >= 0, funding only on perps."""
    named = (("open", open), ("high", high), ("low", low), ("close", close), ("volume", volume),
             ("funding", funding))
    for name, arr in named:
        _first_bad(~np.isfinite(arr), idx, symbols, f"{name} has NaN or infinite values",
                   "remove or fill those bars before loading (the library never fills them for you)")
    for name, arr in named[:4]:
        _first_bad(arr <= 0, idx, symbols, f"non-positive {name} price",
                   "prices must be > 0; drop the bad rows or fix the source")
    _first_bad(volume < 0, idx, symbols, "negative volume", "volume must be >= 0")
    _first_bad(high < low, idx, symbols, "high < low", "check the column order (open, high, low, close)")
    for name, arr in (("close", close), ("open", open)):
        _first_bad((arr > high) | (arr < low), idx, symbols, f"{name} outside [low, high]",
                   "check the column order and the source for bad ticks")
    spot_funding = (funding != 0) & (kind == 0)[None, :]
    _first_bad(spot_funding, idx, symbols, "funding rate given for a spot instrument",
               "funding belongs to '-PERP' instruments only")


def _first_bad(mask, idx, symbols, problem, fix) -> None:
    if not mask.any():
        return
    rows = np.flatnonzero(mask.any(axis=1))
    t = rows[0]
    col = int(np.flatnonzero(mask[t])[0])
    raise DataError(problem, symbol=symbols[col], timestamp=idx[t], fix=fix)


def check_same_calendar(frames: dict[str, pd.DatetimeIndex]) -> None:
    """All symbols must share one bar index; name the first timestamp present in one but not the other."""
    items = list(frames.items())
    ref_sym, ref = items[0]
    for sym, idx in items[1:]:
        if idx.equals(ref):
            continue
        only_other = idx.difference(ref)
        only_ref = ref.difference(idx)
        first = min(x for x in (only_other[:1].tolist() + only_ref[:1].tolist()))
        where = ref_sym if first in only_ref else sym
        raise DataError(
            f"calendars differ: {sym!r} and {ref_sym!r} do not share the same bars "
            f"({len(only_other)} bars only in {sym!r}, {len(only_ref)} only in {ref_sym!r}); "
            f"the first mismatch is a bar only {where!r} has",
            symbol=sym, timestamp=first,
            fix="load the same date range and bar size for every symbol (trim with .loc, never ffill silently)",
        )
