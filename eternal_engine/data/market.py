"""`MarketData`: the one market model: aligned OHLCV per instrument plus perp funding, on a UTC bar index.

Conventions (every kernel relies on them):

* ``index`` is a strictly increasing, tz-aware UTC ``DatetimeIndex`` of bar **open** times, regularly spaced
  by ``freq`` (1 minute to 1 day). A daily bar covers 00:00-24:00 UTC.
* Instruments are named ``"<UNDERLYING>-SPOT"`` or ``"<UNDERLYING>-PERP"`` (linear, USDT-margined),
  e.g. ``"BTC-SPOT"``, ``"BTC-PERP"``.
* Arrays are float64, shape (bars, instruments), C-contiguous.
* ``funding[t, i]`` is the sum of the funding rates (fractions, ``0.0001`` = 0.01 %) of perp ``i`` that settle
  in ``[index[t], index[t] + freq)``; it is ``0.0`` at bars without a settlement and always ``0.0`` for spot.
  Longs pay positive rates.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from eternal_engine.data.validate import check_arrays, check_index, check_symbols
from eternal_engine.errors import DataError

FIELDS = ("open", "high", "low", "close", "volume")
SPOT, PERP = 0, 1
KIND_NAMES = {SPOT: "spot", PERP: "perp"}


class MarketArrays(NamedTuple):
    """Plain arrays handed to kernels. ``ts_ns`` is int64 nanoseconds since the epoch (bar open)."""

    ts_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    funding: np.ndarray
    kind: np.ndarray


def parse_symbol(symbol: str) -> tuple[str, int]:
    """``"BTC-PERP"`` -> ``("BTC", PERP)``. Raises `DataError` for names without a known kind suffix."""
    underlying, sep, kind = symbol.rpartition("-")
    if not sep or not underlying or kind.upper() not in ("SPOT", "PERP"):
        raise DataError(
            f"instrument name {symbol!r} has no kind suffix",
            symbol=symbol,
            fix="name spot instruments '<UNDERLYING>-SPOT' and linear perps '<UNDERLYING>-PERP', e.g. 'BTC-PERP'",
        )
    return underlying.upper(), PERP if kind.upper() == "PERP" else SPOT


def _as_2d(values, shape, name) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.shape != shape:
        raise DataError(f"{name} has shape {arr.shape}, expected {shape}", fix="pass one column per symbol")
    return arr


class MarketData:
    """Aligned OHLCV for spot and perp instruments plus perp funding rates.

    Construct with :func:`eternal_engine.data.from_frames`, ``from_csv``, ``from_parquet``, ``synthetic`` or
    ``load_sample``; the constructor validates everything and never repairs data (see :mod:`.validate`).

    Parameters
    ----------
    index : DatetimeIndex of bar open times (tz-naive is read as UTC).
    symbols : instrument names, e.g. ``["BTC-SPOT", "BTC-PERP"]``.
    open, high, low, close, volume : arrays of shape (bars, instruments).
    funding : array of the same shape (see the module docstring); ``None`` means no funding data (all zero).
    freq : bar size; inferred from the index when omitted.
    max_gap : the largest allowed distance between consecutive bars; defaults to ``freq`` (no missing bar).
    """

    __slots__ = ("index", "symbols", "freq", "_arrays", "_underlyings")

    def __init__(self, index, symbols, open, high, low, close, volume, funding=None, *, freq=None, max_gap=None):
        self.symbols = tuple(str(s) for s in symbols)
        check_symbols(self.symbols)
        parsed = [parse_symbol(s) for s in self.symbols]
        self._underlyings = tuple(u for u, _ in parsed)
        kind = np.array([k for _, k in parsed], dtype=np.int8)
        self.index, self.freq = check_index(index, freq=freq, max_gap=max_gap, symbol=None)
        shape = (len(self.index), len(self.symbols))
        ohlcv = [_as_2d(v, shape, name) for v, name in zip((open, high, low, close, volume), FIELDS)]
        fund = np.zeros(shape) if funding is None else _as_2d(funding, shape, "funding")
        check_arrays(self.index, self.symbols, *ohlcv, fund, kind)
        ts = self.index.as_unit("ns").asi8.copy()
        self._arrays = MarketArrays(ts, *ohlcv, fund, kind)

    # ------------------------------------------------------------------ views
    @property
    def arrays(self) -> MarketArrays:
        """The raw arrays for kernels (do not mutate them)."""
        return self._arrays

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(KIND_NAMES[int(k)] for k in self._arrays.kind)

    @property
    def underlyings(self) -> tuple[str, ...]:
        return self._underlyings

    @property
    def perps(self) -> tuple[str, ...]:
        return tuple(s for s, k in zip(self.symbols, self._arrays.kind) if k == PERP)

    @property
    def spots(self) -> tuple[str, ...]:
        return tuple(s for s, k in zip(self.symbols, self._arrays.kind) if k == SPOT)

    def _frame(self, arr) -> pd.DataFrame:
        return pd.DataFrame(arr, index=self.index, columns=pd.Index(self.symbols, name="symbol"), copy=False)

    open = property(lambda self: self._frame(self._arrays.open), doc="Open prices (DataFrame).")
    high = property(lambda self: self._frame(self._arrays.high), doc="High prices (DataFrame).")
    low = property(lambda self: self._frame(self._arrays.low), doc="Low prices (DataFrame).")
    close = property(lambda self: self._frame(self._arrays.close), doc="Close prices (DataFrame).")
    volume = property(lambda self: self._frame(self._arrays.volume), doc="Volumes (DataFrame).")

    @property
    def funding(self) -> pd.DataFrame:
        """Funding rates settling in each bar, perps only (DataFrame)."""
        return self._frame(self._arrays.funding)[list(self.perps)]

    def ohlcv(self, symbol: str) -> pd.DataFrame:
        """One instrument's bars as a DataFrame with columns open, high, low, close, volume (+ funding_rate)."""
        j = self.column(symbol)
        a = self._arrays
        cols = {f: getattr(a, f)[:, j] for f in FIELDS}
        if a.kind[j] == PERP:
            cols["funding_rate"] = a.funding[:, j]
        return pd.DataFrame(cols, index=self.index)

    def column(self, symbol: str) -> int:
        try:
            return self.symbols.index(symbol)
        except ValueError:
            from eternal_engine._hints import did_you_mean

            raise DataError(
                f"unknown instrument {symbol!r}{did_you_mean(symbol, self.symbols)}",
                fix=f"use one of {list(self.symbols)}",
            ) from None

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        if len(self.index) == 0:
            return f"MarketData(empty, symbols={list(self.symbols)})"
        return (
            f"MarketData({len(self.index)} bars of {_freq_str(self.freq)}, {self.index[0]} .. {self.index[-1]}, "
            f"symbols={list(self.symbols)})"
        )

    def __eq__(self, other) -> bool:
        if not isinstance(other, MarketData):
            return NotImplemented
        return (
            self.symbols == other.symbols
            and self.index.equals(other.index)
            and all(np.array_equal(a, b) for a, b in zip(self._arrays, other._arrays))
        )

    __hash__ = None

    # ------------------------------------------------------------ transforms
    def select(self, symbols) -> "MarketData":
        """A new `MarketData` with only ``symbols`` (in that order)."""
        cols = [self.column(s) for s in symbols]
        a = self._arrays
        return self._derive(self.index, cols,
                            *(np.ascontiguousarray(x[:, cols]) for x in (a.open, a.high, a.low, a.close,
                                                                           a.volume, a.funding)))

    def slice(self, start=None, end=None) -> "MarketData":
        """Bars with ``start <= open time <= end`` (both optional, inclusive; strings are read as UTC)."""
        lo = 0 if start is None else int(self.index.searchsorted(_utc(start), side="left"))
        hi = len(self.index) if end is None else int(self.index.searchsorted(_utc(end), side="right"))
        if hi - lo < 1:
            raise DataError(
                f"no bars between start={start} and end={end}",
                fix=f"choose dates within {self.index[0]} .. {self.index[-1]}",
            )
        a = self._arrays
        return self._derive(self.index[lo:hi], list(range(len(self.symbols))),
                            *(x[lo:hi] for x in (a.open, a.high, a.low, a.close, a.volume, a.funding)))

    def _derive(self, index, cols, open, high, low, close, volume, funding) -> "MarketData":
        """A subset (rows ``index``, columns ``cols``) of already validated data: nothing to check again."""
        out = object.__new__(MarketData)
        out.index, out.freq = index, self.freq
        out.symbols = tuple(self.symbols[c] for c in cols)
        out._underlyings = tuple(self._underlyings[c] for c in cols)
        ts = index.as_unit("ns").asi8.copy()
        out._arrays = MarketArrays(ts, open, high, low, close, volume, funding, self._arrays.kind[cols])
        return out

    def resample(self, rule, *, drop_partial: bool = True) -> "MarketData":
        """Aggregate to a coarser bar: open first, high max, low min, close last, volume and funding summed.

        Bins are aligned to the Unix epoch, so daily bars run 00:00-24:00 UTC and 4h bars start at
        00, 04, 08 ... UTC. ``rule`` must be a whole multiple of the current bar size, at most one day.
        With ``drop_partial`` (default) bins not fully covered by the data at either end are dropped, so no
        bar pretends to be complete when it is not.
        """
        new = pd.Timedelta(pd.tseries.frequencies.to_offset(rule))
        if new < self.freq or new % self.freq != pd.Timedelta(0):
            raise DataError(
                f"cannot resample {_freq_str(self.freq)} bars to {rule!r}",
                fix=f"choose a whole multiple of {_freq_str(self.freq)}",
            )
        a = self._arrays
        step = new.value
        bins = a.ts_ns // step
        starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
        counts = np.diff(np.r_[starts, len(bins)])
        full = counts == step // self.freq.value
        keep = full if drop_partial else np.ones(len(starts), dtype=bool)
        if not keep.any():
            raise DataError(
                f"resampling to {rule!r} leaves no complete bar",
                fix="pass more data or drop_partial=False",
            )
        ends = np.r_[starts[1:], len(bins)] - 1
        agg = dict(
            open=a.open[starts],
            high=np.maximum.reduceat(a.high, starts, axis=0),
            low=np.minimum.reduceat(a.low, starts, axis=0),
            close=a.close[ends],
            volume=np.add.reduceat(a.volume, starts, axis=0),
            funding=np.add.reduceat(a.funding, starts, axis=0),
        )
        idx = pd.DatetimeIndex(bins[starts] * step, tz="UTC")[keep]
        # The source was validated with its own gap allowance; carry over exactly the gaps it had.
        widest = pd.Timedelta(np.diff(idx.asi8).max()) if len(idx) > 1 else new
        return MarketData(
            idx, self.symbols, *(agg[f][keep] for f in FIELDS), agg["funding"][keep], freq=new,
            max_gap=max(widest, new),
        )

    # ------------------------------------------------------------------ I/O
    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (timestamp, symbol) with open, high, low, close, volume, funding_rate."""
        n, m = self._arrays.close.shape
        cols = {"timestamp": np.repeat(self.index, m), "symbol": np.tile(np.array(self.symbols, dtype=object), n)}
        for f in FIELDS:
            cols[f] = getattr(self._arrays, f).reshape(-1)
        cols["funding_rate"] = self._arrays.funding.reshape(-1)
        return pd.DataFrame(cols)

    def to_parquet(self, path) -> None:
        """Write the long format read back by :func:`eternal_engine.data.from_parquet`."""
        self.to_frame().to_parquet(path, index=False)

    def to_csv(self, path) -> None:
        """Write the long format read back by :func:`eternal_engine.data.from_csv`."""
        self.to_frame().to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")


def _utc(ts) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(ts)
    except (TypeError, ValueError) as e:
        raise DataError(f"{ts!r} is not a date or time", fix="use ISO format, e.g. '2021-01-01' or "
                        "'2021-01-01 08:00' (UTC)") from e
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _freq_str(td: pd.Timedelta) -> str:
    return pd.tseries.frequencies.to_offset(td).freqstr
