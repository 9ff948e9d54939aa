"""Loaders: pandas frames, CSV and Parquet files -> validated `MarketData`.

File format (CSV or Parquet), "long": one row per bar and instrument.

=============  =========================================================================================
column         meaning
=============  =========================================================================================
timestamp      bar open time; ISO-8601 strings (UTC if no zone given) or integer epoch milliseconds
symbol         instrument name: ``BTC-SPOT``, ``BTC-PERP`` ... (kind from the suffix)
open ... close prices in the quote currency (USDT), > 0
volume         base-currency volume, >= 0
funding_rate   optional; perps only: sum of the funding rates settling in the bar (fraction), 0 elsewhere
=============  =========================================================================================

A "wide" frame per symbol is accepted by :func:`from_frames`: ``{"BTC-PERP": df, ...}`` where each ``df`` has a
DatetimeIndex and columns open, high, low, close, volume and, for perps, optionally funding_rate.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from eternal_engine._hints import did_you_mean
from eternal_engine.data.market import FIELDS, MarketData, parse_symbol
from eternal_engine.data.validate import check_index, check_same_calendar, to_utc_index
from eternal_engine.errors import DataError

REQUIRED = ("timestamp", "symbol") + FIELDS
OPTIONAL = ("funding_rate",)


def from_frames(frames: dict, *, freq=None, max_gap=None) -> MarketData:
    """Build `MarketData` from ``{symbol: DataFrame}`` (DatetimeIndex; open, high, low, close, volume[, funding_rate])."""
    if not frames:
        raise DataError("no frames given", fix="pass {'BTC-PERP': df, ...}")
    indexes, cols = {}, {}
    for sym, df in frames.items():
        parse_symbol(sym)
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"expected a DataFrame, got {type(df).__name__}", symbol=sym)
        _check_columns(df.columns, FIELDS, OPTIONAL, symbol=sym)
        indexes[sym], _ = check_index(df.index, freq=freq, max_gap=max_gap, symbol=sym)
        cols[sym] = df
    check_same_calendar(indexes)
    symbols = list(frames)
    index = indexes[symbols[0]]
    arrays = {f: np.column_stack([_values(cols[s], f, s) for s in symbols]) for f in FIELDS}
    funding = np.column_stack([
        _values(cols[s], "funding_rate", s) if "funding_rate" in cols[s] else np.zeros(len(index))
        for s in symbols
    ])
    return MarketData(index, symbols, *(arrays[f] for f in FIELDS), funding, freq=freq, max_gap=max_gap)


def from_long(df: pd.DataFrame, *, freq=None, max_gap=None, source: str = "frame") -> MarketData:
    """Build `MarketData` from the long format described in the module docstring."""
    _check_columns(df.columns, REQUIRED, OPTIONAL, symbol=None, source=source)
    ts = df["timestamp"]
    if pd.api.types.is_integer_dtype(ts):
        ts = pd.to_datetime(ts, unit="ms", utc=True)
    frames = {}
    for sym in pd.unique(df["symbol"]):
        part = df[df["symbol"] == sym]
        idx = to_utc_index(ts[part.index], symbol=str(sym))
        frames[str(sym)] = part.drop(columns=["timestamp", "symbol"]).set_axis(idx)
    return from_frames(frames, freq=freq, max_gap=max_gap)


def from_csv(path, *, freq=None, max_gap=None) -> MarketData:
    """Read a long-format CSV (see module docstring)."""
    return from_long(_read(path, pd.read_csv), freq=freq, max_gap=max_gap, source=str(path))


def from_parquet(path, *, freq=None, max_gap=None) -> MarketData:
    """Read a long-format Parquet file (see module docstring)."""
    return from_long(_read(path, pd.read_parquet), freq=freq, max_gap=max_gap, source=str(path))


def _read(path, reader) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}", fix="check the path")
    try:
        return reader(path)
    except (ValueError, OSError) as e:
        raise DataError(f"{path} could not be read: {e}", fix="give a long-format CSV or Parquet file") from e


def _values(df, col, sym) -> np.ndarray:
    s = df[col]
    if not pd.api.types.is_numeric_dtype(s):
        bad = pd.to_numeric(s, errors="coerce").isna() & s.notna()
        first = df.index[np.flatnonzero(bad.to_numpy())[0]] if bad.any() else None
        raise DataError(f"column {col!r} is not numeric", symbol=sym, timestamp=first,
                        fix="remove text values from the price/volume columns")
    return s.to_numpy(dtype=np.float64)


def _check_columns(columns, required, optional, *, symbol, source="frame") -> None:
    cols = [str(c) for c in columns]
    allowed = set(required) | set(optional)
    for c in cols:
        if c not in allowed:
            raise DataError(f"unknown column {c!r} in {source}{did_you_mean(c, allowed)}", symbol=symbol,
                            fix=f"columns must be {list(required)} plus optionally {list(optional)}")
    missing = [c for c in required if c not in cols]
    if missing:
        raise DataError(f"missing columns {missing} in {source}", symbol=symbol,
                        fix=f"columns must be {list(required)} plus optionally {list(optional)}")
