"""TACTICAL engine helpers: bringing user-supplied series (e.g. the daily fear-&-greed index) onto the bars.

Look-ahead is the caller's responsibility in one place only: the timestamps. A value stamped at ``T`` is
used from the bar opening at ``T`` on (a fear-&-greed value stamped at a day's 00:00 UTC drives that day's
bar). Stamp each value with the time it became known (publication time), not the period it describes;
otherwise the backtest trades on information it did not have yet.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from eternal_engine.data.validate import to_utc_index
from eternal_engine.engines.tactical_nb import asof_values_nb
from eternal_engine.errors import DataError


def _utc_ns(index, what: str, symbol) -> np.ndarray:
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"{what} is not a DatetimeIndex (got {type(index).__name__})", symbol=symbol,
                        fix="index the values by timestamp, e.g. s.index = pd.to_datetime(s.index, utc=True)")
    nat = np.flatnonzero(index.isna())
    if nat.size:
        raise DataError(f"{what} has a missing timestamp (NaT) at position {int(nat[0])}", symbol=symbol,
                        fix="drop the rows without a timestamp before aligning")
    idx = to_utc_index(index, symbol=symbol)
    ts = idx.asi8
    d = np.diff(ts)
    bad = np.flatnonzero(d <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        if d[bad[0]] == 0:
            raise DataError(f"{what} has a duplicate timestamp", symbol=symbol, timestamp=idx[i],
                            fix="keep one value per timestamp (drop or aggregate duplicates deliberately)")
        raise DataError(f"{what} is not sorted", symbol=symbol, timestamp=idx[i],
                        fix="sort by timestamp first, e.g. s.sort_index()")
    return np.ascontiguousarray(ts, dtype=np.int64), idx


def align_asof(series: pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    """The value of ``series`` known at each bar of ``index``, without look-ahead.

    For every bar open time ``t`` in ``index``, the latest value of ``series`` stamped ``<= t``; NaN for bars
    before the first value. Both indexes are read as UTC (tz-naive timestamps are taken as UTC, other zones
    converted). Users must stamp values at the time they became known (see the module docstring).

    Raises `DataError` (naming the first bad timestamp and the fix) when ``series`` is not numeric, has NaN or
    infinite values, or its index is not a sorted, duplicate-free DatetimeIndex; and when ``index`` is not a
    strictly increasing DatetimeIndex. Nothing is repaired.

    Returns a float64 array of ``len(index)``.
    """
    if not isinstance(series, pd.Series):
        raise DataError(f"expected a pandas Series, got {type(series).__name__}",
                        fix="pass a Series indexed by timestamp, e.g. df['value']")
    name = None if series.name is None else str(series.name)
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        raise DataError(f"series has non-numeric dtype {series.dtype}", symbol=name,
                        fix="convert the values to numbers first, e.g. pd.to_numeric(s)")
    src_ts, src_idx = _utc_ns(series.index, "series index", name)
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataError("series has NaN or infinite values", symbol=name, timestamp=src_idx[int(bad[0])],
                        fix="drop or fill those values deliberately before aligning (the library never fills them)")
    tgt_ts, _ = _utc_ns(index, "bar index", None)
    return asof_values_nb(tgt_ts, src_ts, np.ascontiguousarray(values), np.empty(len(tgt_ts), dtype=np.float64))
