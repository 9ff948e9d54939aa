"""Technical indicators: Numba kernels (`eternal_engine.indicators.nb`) under a pandas-aware API.

Every function takes a pandas Series, a DataFrame (time x symbol) or a 1-D/2-D numpy array of real numbers
and returns the same kind: a Series keeps its index and name, a DataFrame its index and columns, an array
its ndim (always float64). NaN means missing. Windows count bars.

=========================================  ===========================================  ======================
function                                   oracle (tested: same NaN, 1e-9 relative)     NaN warm-up (bars)
=========================================  ===========================================  ======================
``sma(a, window)``                         ``a.rolling(window).mean()``                 window - 1
``ema(a, span)``                           ``talib.EMA(a, span)`` (SMA seed)            span - 1
``atr(high, low, close, window)``          ``talib.ATR``                                window
``adx(high, low, close, window)``          ``talib.ADX``, ``PLUS_DI``, ``MINUS_DI``     2*window - 1 (ADX),
                                                                                        window (+DI, -DI)
``rolling_max(a, window)``                 ``a.rolling(window).max()``                  window - 1
``rolling_max(a)`` (window None or 0)      ``a.cummax()``                               0
``drawdown_from_peak(a)``                  ``a / a.cummax() - 1``                       0
``realized_vol(close, window,              ``np.log(close).diff().rolling(window)       window
periods_per_year=...)``                    .std() * np.sqrt(periods_per_year)``
=========================================  ===========================================  ======================

NaN inside the data follows the oracle. pandas-style indicators (sma, rolling_max, realized_vol) are NaN while
any value in the window is NaN or +-inf. TA-Lib-style ones (ema, atr, adx) skip leading NaNs, so a symbol
listed late starts its own warm-up at its first complete bar; after that TA-Lib's arithmetic is copied as is:
a NaN makes every later EMA and ATR value NaN, while ADX reports +DI = -DI = 0 and freezes (TA-Lib reads the
NaN range as zero). Fill or drop gaps first if that matters.

``ema`` is TA-Lib's EMA, not ``a.ewm(span=span, adjust=False).mean()``: pandas seeds with the first value,
TA-Lib with the mean of the first ``span`` values, and the two never become equal.

Importing this package compiles nothing: each kernel compiles on its first call and is cached on disk.
Outputs are allocated here with numpy (huge pages for big arrays) and filled by the kernels.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from eternal_engine.errors import ConfigError, DataError
from eternal_engine.indicators import nb

__all__ = ["ADX", "adx", "atr", "drawdown_from_peak", "ema", "realized_vol", "rolling_max", "sma"]


class ADX(NamedTuple):
    """Result of `adx`: three values of the same kind as the inputs."""

    adx: Any
    plus_di: Any
    minus_di: Any


# ---------------------------------------------------------------- validation and wrapping


def _check_window(value, name: str, *, minimum: int = 1, why: str = "") -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        example = int(value) if isinstance(value, float) and value.is_integer() else max(minimum, 14)
        raise ConfigError(
            f"{name} must be a whole number of bars, got {value!r}. Fix: pass an int, e.g. {name}={example}"
        )
    if value < minimum:
        raise ConfigError(
            f"{name} must be >= {minimum}{why}, got {value}. Fix: pass e.g. {name}={max(minimum, 14)}"
        )
    return int(value)


def _kind(x, name: str) -> str:
    if isinstance(x, pd.Series):
        return "Series"
    if isinstance(x, pd.DataFrame):
        return "DataFrame"
    if isinstance(x, np.ndarray):
        if x.ndim not in (1, 2):
            raise DataError(f"{name} is a {x.ndim}-D array", fix="pass shape (time,) or (time, symbols)")
        return "ndarray"
    raise DataError(
        f"{name} is a {type(x).__name__}, not a pandas Series, DataFrame or numpy array",
        fix="convert it first, e.g. np.asarray(x, dtype=float)",
    )


def _is_real(dtype) -> bool:
    return (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            and not pd.api.types.is_complex_dtype(dtype))


def _values(x, name: str) -> np.ndarray:
    """``x`` as a C-contiguous float64 (time, column) array."""
    _kind(x, name)
    dtypes = list(x.dtypes) if isinstance(x, pd.DataFrame) else [x.dtype]
    bad = [d for d in dtypes if not _is_real(d)]
    if bad:
        raise DataError(f"{name} has dtype {bad[0]}, not a real number type", fix="convert with .astype(float)")
    if isinstance(x, (pd.Series, pd.DataFrame)):
        arr = x.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = x.astype(np.float64, copy=False)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    return np.ascontiguousarray(arr)


def _wrap(out: np.ndarray, like, name=None):
    """Give the kernel output ``out`` (time, column) the kind, index and columns of ``like``."""
    if isinstance(like, pd.Series):
        return pd.Series(out[:, 0], index=like.index, name=name)
    if isinstance(like, pd.DataFrame):
        return pd.DataFrame(out, index=like.index, columns=like.columns)
    return out[:, 0] if like.ndim == 1 else out


def _check_hlc(high, low, close) -> None:
    """Same kind, shape, index (and columns) for high, low and close, else `DataError`."""
    given = {"high": high, "low": low, "close": close}
    kinds = {k: _kind(v, k) for k, v in given.items()}
    if len(set(kinds.values())) > 1:
        raise DataError(f"high, low and close are of different kinds {kinds}",
                        fix="pass three Series, three DataFrames or three arrays")
    shapes = {k: np.shape(v) for k, v in given.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(f"high, low and close have different shapes {shapes}",
                        fix="take all three from the same bars and symbols")
    if kinds["close"] == "ndarray":
        return
    for k in ("high", "low"):
        other = given[k]
        if not other.index.equals(close.index):
            diff = np.flatnonzero(np.asarray(other.index != close.index))
            raise DataError(f"{k} and close have different indexes",
                            timestamp=close.index[diff[0]] if diff.size else None,
                            fix=f"reindex first, e.g. {k} = {k}.reindex(close.index)")
        if kinds["close"] == "DataFrame" and not other.columns.equals(close.columns):
            raise DataError(f"{k} and close have different columns",
                            fix=f"select the same symbols, e.g. {k}[close.columns]")


def _hlc_name(high, low, close):
    """The Series name shared by high, low and close, else None (an ATR of 'high', 'low', 'close' has none)."""
    names = {getattr(x, "name", None) for x in (high, low, close)}
    return names.pop() if len(names) == 1 else None


# ---------------------------------------------------------------- indicators


def sma(a, window: int):
    """Simple moving average over ``window`` bars, equal to ``a.rolling(window).mean()``.

    The first ``window - 1`` values are NaN, as is any window holding a NaN.
    """
    window = _check_window(window, "window")
    x = _values(a, "a")
    return _wrap(nb.sma_nb(x, window, np.empty_like(x)), a, getattr(a, "name", None))


def ema(a, span: int):
    """Exponential moving average equal to ``talib.EMA(a, span)``: alpha = 2 / (span + 1).

    Seeded with the mean of the first ``span`` values, so the first ``span - 1`` values (after any leading
    NaNs) are NaN. Not ``a.ewm(span=span, adjust=False).mean()``, which seeds with the first value.
    """
    span = _check_window(span, "span")
    x = _values(a, "a")
    return _wrap(nb.ema_nb(x, span, np.empty_like(x)), a, getattr(a, "name", None))


def atr(high, low, close, window: int):
    """Wilder's average true range, equal to ``talib.ATR(high, low, close, window)``.

    First value at bar ``window`` (after leading NaNs): the mean of the true ranges of bars 1..window, then
    ``atr = (atr_prev * (window - 1) + tr) / window``. ``window=1`` gives the true range itself.
    """
    window = _check_window(window, "window")
    _check_hlc(high, low, close)
    c = _values(close, "close")
    out = nb.atr_nb(_values(high, "high"), _values(low, "low"), c, window, np.empty_like(c))
    return _wrap(out, close, _hlc_name(high, low, close))


def adx(high, low, close, window: int) -> ADX:
    """Wilder's ADX with +DI and -DI, equal to ``talib.ADX``, ``talib.PLUS_DI`` and ``talib.MINUS_DI``.

    Returns ``ADX(adx, plus_di, minus_di)``, each of the inputs' kind, in points from 0 to 100. The DIs start
    at bar ``window`` and ADX at bar ``2 * window - 1`` (after leading NaNs). Flat prices (zero true range)
    give +DI = -DI = 0 and leave ADX unchanged (0 for a flat series), as TA-Lib does. ``window >= 2``.
    """
    window = _check_window(window, "window", minimum=2, why=" (TA-Lib's ADX is undefined for 1)")
    _check_hlc(high, low, close)
    c = _values(close, "close")
    outs = nb.adx_nb(_values(high, "high"), _values(low, "low"), c, window, np.empty((3,) + c.shape))
    name = _hlc_name(high, low, close)
    return ADX(*(_wrap(o, close, name) for o in outs))


def rolling_max(a, window: int | None = None):
    """Highest value of the last ``window`` bars, equal to ``a.rolling(window).max()``.

    ``window=None`` (or 0) gives the running maximum since the first bar, equal to ``a.cummax()``.
    """
    if window is not None:
        window = _check_window(window, "window", minimum=0, why=" (0 or None: since the start)")
    x = _values(a, "a")
    return _wrap(nb.rolling_max_nb(x, window or 0, np.empty_like(x)), a, getattr(a, "name", None))


def drawdown_from_peak(a):
    """Fall from the running peak as a fraction, ``a / a.cummax() - 1`` (0 at a new high, -0.25 = 25 % down)."""
    x = _values(a, "a")
    return _wrap(nb.drawdown_from_peak_nb(x, np.empty_like(x)), a, getattr(a, "name", None))


def realized_vol(close, window: int, *, periods_per_year: float):
    """Annualised volatility: rolling std (ddof=1) of log returns over ``window`` returns x sqrt(periods_per_year).

    Equal to ``np.log(close).diff().rolling(window).std() * np.sqrt(periods_per_year)``; the first value is at
    bar ``window``. Prices must be positive (log). ``periods_per_year`` is e.g. 365 for daily bars of a 24/7
    market, 8760 for hourly.
    """
    window = _check_window(window, "window", minimum=2, why=" (a sample std needs two returns)")
    ppy = periods_per_year
    if isinstance(ppy, (bool, np.bool_)) or not isinstance(ppy, (int, float, np.integer, np.floating)) \
            or not math.isfinite(ppy) or ppy <= 0:
        raise ConfigError(f"periods_per_year must be a positive number, got {ppy!r}. "
                          "Fix: e.g. periods_per_year=365 for daily bars, 8760 for hourly")
    c = _values(close, "close")
    out = nb.realized_vol_nb(c, window, float(ppy), np.empty_like(c))
    return _wrap(out, close, getattr(close, "name", None))
