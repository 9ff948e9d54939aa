"""Performance statistics of a return series (numpy, and one fused Numba kernel for the passes over the returns),
agreeing with quantstats.

Every metric in :func:`stats` reproduces the quantstats 0.0.86 function of the same meaning, called on the
same returns with ``periods=periods_per_year`` and ``rf=0`` (the tests check this to 1e-9 relative). The
definitions, so nobody has to read quantstats to know what a number means (``r`` = the per-bar returns,
``n`` = their count, ``P`` = ``periods_per_year``):

=========================  ===================================================================================
``total_return``           ``prod(1 + r) - 1``                                   (``qs.stats.comp``)
``cagr``                   ``(1 + total_return) ** (P / n) - 1``: years are counted as ``n / P``, the number
                           of *bars* over bars per year, not calendar days / 365 (``qs.stats.cagr``). With the
                           inferred ``P`` this is the time the bars cover (``n`` × bar length / 365 days);
                           missing bars shorten it. ``NaN`` if terminal wealth is negative (leverage).
``volatility_ann``         ``std(r, ddof=1) * sqrt(P)``                          (``qs.stats.volatility``)
``sharpe``                 ``mean(r) / std(r, ddof=1) * sqrt(P)``, risk-free rate 0  (``qs.stats.sharpe``)
``sortino``                ``mean(r) / sqrt(sum(r[r < 0] ** 2) / n) * sqrt(P)``: the downside deviation
                           divides by *all* ``n`` bars, target 0                 (``qs.stats.sortino``)
``max_drawdown``           ``min(equity / running_peak) - 1`` with equity ``cumprod(1 + r)`` and a starting
                           equity of 1 before the first bar, so a first-bar loss counts
                           (``qs.stats.max_drawdown``); a fraction <= 0.
``max_drawdown_duration``  longest time under water, a ``pd.Timedelta``: from the peak bar (the bar before
                           the first bar under water; before the first bar, one bar spacing earlier) to the
                           last bar still under water. For daily bars this equals quantstats'
                           ``drawdown_details(...)["days"].max()`` days. ``NaT`` without a DatetimeIndex.
``calmar``                 ``cagr / abs(max_drawdown)``                          (``qs.stats.calmar``)
``win_rate``               ``count(r > 0) / count(r != 0)``: bars with a zero return are ignored
                           (``qs.stats.win_rate``)
``best_period``            ``max(r)``; ``worst_period`` ``min(r)``               (``qs.stats.best/worst``)
``skew``                   bias-corrected sample skewness G1, as ``pd.Series.skew`` (``qs.stats.skew``)
``kurtosis``               bias-corrected *excess* kurtosis G2, as ``pd.Series.kurt`` (``qs.stats.kurtosis``)
``avg_win``, ``avg_loss``  mean of the positive / negative returns           (``qs.stats.avg_win/avg_loss``)
``profit_factor``          ``sum(r[r > 0]) / abs(sum(r[r < 0]))``                (``qs.stats.profit_factor``)
=========================  ===================================================================================

Per-bar statistics (``win_rate``, ``avg_win``, ``profit_factor``, ``best_period``) count bars, not trades: see
:func:`trade_stats` for the trade-level ones.

Degenerate cases differ from quantstats on purpose: **no metric is ever ±inf**. Where quantstats would divide by
zero we return ``NaN``: ``sharpe`` when every return is equal (zero volatility, including a single bar);
``sortino`` when no return is negative (zero downside deviation; quantstats agrees); ``calmar`` with no drawdown;
``profit_factor`` with no losing bar (quantstats: ``inf``, or ``0.0`` when also no winning bar); ``win_rate``
when every return is zero (quantstats: ``0.0``); ``skew`` / ``kurtosis`` with fewer than 3 / 4 bars or zero
variance (as pandas). A constant *negative* return has zero volatility (``sharpe`` NaN) but a non-zero downside
deviation, so its ``sortino`` is finite (``-sqrt(P)``), as in quantstats.

``periods_per_year`` left as ``None`` is inferred from the index spacing for 24/7 crypto markets: a year is 365
days of bars, so 365 for daily bars, 8760 for hourly, 525600 for 1-minute bars (:func:`periods_per_year_for`).

Input returns are never repaired: NaN or infinite values, an unsorted or duplicated DatetimeIndex raise
:class:`~eternal_engine.errors.DataError` naming the first bad timestamp.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from eternal_engine._hints import did_you_mean
from eternal_engine.errors import ConfigError, DataError

__all__ = ["stats", "periods_per_year_for", "drawdown_series", "trade_stats", "STAT_KEYS", "TRADE_STAT_KEYS"]

SECONDS_PER_YEAR = 365 * 86400
"""A crypto year: 365 days of 24/7 trading."""

STAT_KEYS = (
    "start", "end", "n_periods", "periods_per_year", "total_return", "cagr", "volatility_ann", "sharpe",
    "sortino", "max_drawdown", "max_drawdown_duration", "calmar", "win_rate", "best_period", "worst_period",
    "skew", "kurtosis", "avg_win", "avg_loss", "profit_factor",
)
"""The keys of :func:`stats`, in order."""

TRADE_STAT_KEYS = ("n_trades", "win_rate", "avg_return", "profit_factor", "expectancy", "avg_bars_held")
"""The keys of :func:`trade_stats`, in order."""

_TRADE_COLUMNS = ("pnl", "return", "bars_held")
_PPY_FIX = "pass periods_per_year= (365 for daily bars, 8760 for hourly, 525600 for 1-minute)"


# --------------------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------------------

def _returns_array(returns) -> np.ndarray:
    """``returns`` as a float64 array, or `DataError` if it is not a non-empty all-finite Series."""
    if not isinstance(returns, pd.Series):
        raise DataError(
            f"returns must be a pandas Series, got {type(returns).__name__}",
            fix="pass one column of per-bar returns, e.g. df['strategy']",
        )
    if len(returns) == 0:
        raise DataError("returns is empty", fix="pass at least one bar of returns")
    try:
        a = returns.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as e:
        raise DataError(f"returns are not numeric ({returns.dtype})",
                        fix="pass float returns (fractions, 0.01 = 1%)") from e
    if not np.isfinite(a).all():
        i = int(np.flatnonzero(~np.isfinite(a))[0])
        what = "NaN" if np.isnan(a[i]) else "infinite"
        raise DataError(
            f"returns contain {what} values", timestamp=returns.index[i],
            fix="fill or drop the missing bars deliberately before computing statistics "
                "(e.g. returns.fillna(0.0) if the strategy was flat)",
        )
    return a


def _spacing(index: pd.DatetimeIndex) -> float:
    """Typical bar spacing in nanoseconds, checking on the way that the index is strictly increasing.

    The index's fixed frequency if it has a positive one (which implies increasing timestamps), else the
    median spacing (so occasional gaps do not change it); `DataError` at the first duplicate or step back.
    """
    freq = index.freq
    if freq is not None:
        try:
            nanos = pd.Timedelta(freq).value
        except (TypeError, ValueError):  # calendar offsets (month ends) have no fixed length
            nanos = 0
        if nanos > 0:
            return float(nanos)
    d = np.diff(index.asi8)
    if d.size == 0:
        return math.nan
    step = d[0]
    if step > 0 and (d == step).all():  # the usual case: regular bars, no need to sort for a median
        med = float(step)
    else:
        bad = np.flatnonzero(d <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            problem = "duplicate timestamp in returns" if d[bad[0]] == 0 else "returns are not sorted by time"
            raise DataError(problem, timestamp=index[i],
                            fix="sort the returns (returns.sort_index()) and drop duplicate timestamps")
        med = float(np.median(d))
    return med * _unit_ns(index)


def _unit_ns(index: pd.DatetimeIndex) -> float:
    return float(np.timedelta64(1, index.unit) / np.timedelta64(1, "ns"))


def periods_per_year_for(index) -> float:
    """Bars per year implied by a DatetimeIndex, for markets trading 24/7: ``365 * 86400 / bar_seconds``.

    The bar length is the index's fixed frequency if set, else the median spacing between timestamps, so
    occasional gaps do not change it. Daily → 365.0, hourly → 8760.0, 1-minute → 525600.0. For calendar
    bars of uneven length (months) pass ``periods_per_year`` explicitly instead (12).

    Raises `DataError` if the index is not a DatetimeIndex, is a single timestamp without a fixed ``freq``, or
    is not strictly increasing (naming the first duplicate or step back).
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"cannot infer periods_per_year from a {type(index).__name__}: it needs a DatetimeIndex",
            fix=_PPY_FIX,
        )
    spacing = _spacing(index)
    if not spacing > 0:
        raise DataError("cannot infer periods_per_year from a single timestamp without a fixed freq",
                        fix=_PPY_FIX)
    return SECONDS_PER_YEAR * 1e9 / spacing


def _resolve_ppy(periods_per_year, index) -> float:
    if periods_per_year is None:
        return periods_per_year_for(index)
    try:
        ppy = float(periods_per_year)
    except (TypeError, ValueError):
        ppy = math.nan
    if not (math.isfinite(ppy) and ppy > 0):
        raise ConfigError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    if isinstance(index, pd.DatetimeIndex):
        _spacing(index)  # order check
    return ppy


# --------------------------------------------------------------------------------------------------------------
# Kernels (numpy, one pass each where possible)
# --------------------------------------------------------------------------------------------------------------

def _equity_and_peak(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equity ``cumprod(1 + a)`` and its running peak, both with a leading baseline bar of equity 1.

    The baseline is quantstats' phantom bar (``qs.stats.to_drawdown_series``): a loss on the first bar is a
    drawdown from the starting equity. Both arrays have ``a.size + 1`` elements. (Work happens in place in
    two buffers: at millions of bars, fresh allocations cost as much as the arithmetic.)
    """
    eq = np.empty(a.size + 1)
    eq[0] = 1.0
    np.add(a, 1.0, out=eq[1:])
    np.cumprod(eq, out=eq)
    peak = np.empty_like(eq)
    np.maximum.accumulate(eq, out=peak)
    return eq, peak


def _first_peak(index: pd.DatetimeIndex, ppy: float) -> int:
    """Time of the baseline bar before the first (one bar spacing earlier; for a single bar, a year / P), in
    the index's units: the peak of a drawdown that starts on the first bar."""
    ts = index.asi8
    if ts.size > 1:
        return int(ts[0] - (ts[1] - ts[0]))
    return int(ts[0] - int(round(SECONDS_PER_YEAR / ppy * 1e9 / _unit_ns(index))))


def _nan_div(num: float, den: float) -> float:
    return num / den if den != 0 else math.nan


# --------------------------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------------------------

def stats(returns: pd.Series, periods_per_year: float | None = None) -> pd.Series:
    """Performance statistics of per-bar returns (fractions: 0.01 = +1%), keyed by :data:`STAT_KEYS`.

    Args:
        returns: simple returns per bar, no NaN. A DatetimeIndex (bar open times, UTC) is needed to infer
            ``periods_per_year`` and for ``max_drawdown_duration``.
        periods_per_year: bars per year used to annualise; ``None`` infers it from the index spacing
            (:func:`periods_per_year_for`: 365 for daily, 8760 for hourly bars).

    Returns:
        An object-dtype Series: ``start``/``end`` are index labels, ``n_periods`` an int,
        ``max_drawdown_duration`` a ``pd.Timedelta``, everything else a float (fractions, not percent).
        Definitions and the degenerate cases (NaN, never inf) are in the module docstring.

    Raises:
        DataError: empty returns, NaN/inf inside them (naming the first timestamp), an unsorted index, or no
            DatetimeIndex when ``periods_per_year`` is None.
        ConfigError: ``periods_per_year`` not a positive number.
    """
    a = _returns_array(returns)
    index = returns.index
    ppy = _resolve_ppy(periods_per_year, index)
    n = a.size

    from eternal_engine import metrics_nb as k

    f = np.empty(k.N_FIELDS)
    timed = isinstance(index, pd.DatetimeIndex)
    ts = index.asi8 if timed else np.empty(0, dtype=np.int64)
    duration = k.stats_passes_nb(a, ts, _first_peak(index, ppy) if timed else 0, f)
    duration = (pd.Timedelta(int(duration), unit=index.unit) if f[k.S_UNDER] else pd.Timedelta(0)) if timed \
        else pd.NaT
    total = float(f[k.S_WEALTH]) - 1.0
    max_dd = float(f[k.S_MIN_RATIO]) - 1.0  # <= 0: the baseline bar has ratio 1
    lo, hi, mean = float(f[k.S_LO]), float(f[k.S_HI]), float(f[k.S_MEAN])
    if lo == hi:  # constant returns: exactly zero variance (a two-pass std would leave rounding dust)
        std = 0.0 if n > 1 else math.nan
        skew = kurt = math.nan
    else:
        m2, m3, m4 = float(f[k.S_M2]), float(f[k.S_M3]), float(f[k.S_M4])
        std = math.sqrt(m2 / (n - 1))
        skew = n * math.sqrt(n - 1) / (n - 2) * m3 / m2 ** 1.5 if n >= 3 else math.nan
        kurt = ((n - 1) / ((n - 2) * (n - 3)) * (n * (n + 1) * m4 / (m2 * m2) - 3.0 * (n - 1))
                if n >= 4 else math.nan)
    neg_sum, down_sq, pos_sum = float(f[k.S_NEG_SUM]), float(f[k.S_DOWN_SQ]), float(f[k.S_POS_SUM])
    n_neg, n_pos = int(f[k.S_N_NEG]), int(f[k.S_N_POS])

    sqrt_ppy = math.sqrt(ppy)
    years = n / ppy
    wealth = 1.0 + total
    cagr = wealth ** (1.0 / years) - 1.0 if wealth >= 0 else math.nan
    downside = math.sqrt(down_sq / n)
    sharpe = mean / std * sqrt_ppy if std > 0 else math.nan
    sortino = mean / downside * sqrt_ppy if downside > 0 else math.nan

    values = {
        "start": index[0],
        "end": index[-1],
        "n_periods": n,
        "periods_per_year": ppy,
        "total_return": total,
        "cagr": cagr,
        "volatility_ann": std * sqrt_ppy,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": max_dd,
        "max_drawdown_duration": duration,
        "calmar": _nan_div(cagr, abs(max_dd)),
        "win_rate": _nan_div(n_pos, n_pos + n_neg),
        "best_period": hi,
        "worst_period": lo,
        "skew": skew,
        "kurtosis": kurt,
        "avg_win": _nan_div(pos_sum, n_pos),
        "avg_loss": _nan_div(neg_sum, n_neg),
        "profit_factor": _nan_div(pos_sum, abs(neg_sum)),
    }
    return pd.Series(values, index=list(STAT_KEYS), dtype=object, name=returns.name)


def drawdown_series(returns: pd.Series) -> pd.Series:
    """Drawdown per bar, ``equity / running_peak - 1`` (a fraction <= 0), on the returns' own index.

    Equity starts at 1 before the first bar, so a loss on the first bar is a drawdown. Equal to
    ``qs.stats.to_drawdown_series(returns)`` (which also strips the index's timezone; this keeps it).
    Raises `DataError` for empty returns or NaN/inf in them.
    """
    a = _returns_array(returns)
    eq, peak = _equity_and_peak(a)
    dd = np.divide(eq[1:], peak[1:], out=eq[1:])
    dd -= 1.0
    dd[dd == 0] = 0.0  # no -0.0
    return pd.Series(dd, index=returns.index, name="drawdown")


def trade_stats(trades: pd.DataFrame) -> pd.Series:
    """Trade-level statistics from a trades frame with columns ``pnl`` (net of fees and funding, quote
    currency), ``return`` (fraction) and ``bars_held``.

    ``n_trades``; ``win_rate`` = share of trades with ``pnl > 0`` among *all* trades (a zero-pnl trade counts
    as not won, unlike the per-bar ``stats()['win_rate']`` that ignores zero bars); ``avg_return`` = mean
    ``return``; ``profit_factor`` = gross profit / gross loss of ``pnl`` (NaN without a losing trade, never
    inf); ``expectancy`` = mean ``pnl`` per trade; ``avg_bars_held`` = mean ``bars_held``.
    An empty frame (with or without columns) gives ``n_trades`` 0 and NaN elsewhere.
    """
    if not isinstance(trades, pd.DataFrame):
        raise DataError(f"trades must be a pandas DataFrame, got {type(trades).__name__}",
                        fix="pass the trades frame of a backtest result")
    out = dict.fromkeys(TRADE_STAT_KEYS, math.nan)
    out["n_trades"] = len(trades)
    if len(trades) == 0:
        return pd.Series(out, index=list(TRADE_STAT_KEYS), dtype=object, name="trades")
    for col in _TRADE_COLUMNS:
        if col not in trades.columns:
            raise DataError(
                f"trades frame has no column {col!r}{did_you_mean(col, trades.columns)}",
                fix=f"give columns {', '.join(_TRADE_COLUMNS)}",
            )
    cols = {}
    for col in _TRADE_COLUMNS:
        try:
            v = trades[col].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as e:
            raise DataError(f"trades column {col!r} is not numeric", fix="pass numbers") from e
        if not np.isfinite(v).all():
            i = int(np.flatnonzero(~np.isfinite(v))[0])
            raise DataError(f"trades column {col!r} contains NaN or inf (row {trades.index[i]!r})",
                            fix="drop or complete the trade before computing statistics")
        cols[col] = v
    pnl = cols["pnl"]
    gross_profit = float(pnl[pnl > 0].sum())
    gross_loss = float(-pnl[pnl < 0].sum())
    out.update(
        win_rate=float(np.count_nonzero(pnl > 0)) / pnl.size,
        avg_return=float(cols["return"].mean()),
        profit_factor=_nan_div(gross_profit, gross_loss),
        expectancy=float(pnl.mean()),
        avg_bars_held=float(cols["bars_held"].mean()),
    )
    return pd.Series(out, index=list(TRADE_STAT_KEYS), dtype=object, name="trades")
