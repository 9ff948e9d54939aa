"""Numba kernels for technical indicators.

Every 2-D kernel takes float64 arrays shaped (time, column), loops over columns then time, and returns new
arrays of the same shape; NaN means missing. Each ``*_1d_nb`` helper does one column. Kernels compile lazily
on first call and are cached to disk.

``out`` (optional, every kernel): a preallocated float64 array to write into and return. The public wrappers
pass one from ``np.empty``, because numpy maps large arrays onto huge pages: for 5M bars that saves ~15 ms
of page faults per output array over allocating inside numba.

Two NaN conventions, each copied from the kernel's oracle:

- pandas-style (`sma_nb`, `rolling_max_nb`, `realized_vol_nb`): an output is NaN while any input in its
  window is NaN or +-inf (pandas' rolling treats inf as missing); `rolling_max_nb(a, 0)` and
  `drawdown_from_peak_nb` skip NaN like ``cummax()``.
- TA-Lib-style (`ema_nb`, `atr_nb`, `adx_nb`): leading NaNs are skipped, as the ``talib`` wrapper does, so the
  warm-up starts at the first bar where every input is present (a symbol listed late gets its own warm-up).
  A NaN after that start flows through the recursion exactly as in TA-Lib (see each kernel).
"""
import numpy as np
from numba import njit


@njit(cache=True)
def _first_valid3_nb(a, b, c):
    """Index of the first bar where ``a``, ``b`` and ``c`` are all non-NaN, or the length if none."""
    for i in range(a.shape[0]):
        if not (np.isnan(a[i]) or np.isnan(b[i]) or np.isnan(c[i])):
            return i
    return a.shape[0]


@njit(cache=True)
def _nan_head_nb(out, stop):
    """Set ``out[:stop]`` to NaN (``stop`` clipped to the length)."""
    for i in range(min(stop, out.shape[0])):
        out[i] = np.nan


@njit(cache=True)
def _true_range_nb(high, low, prev_close):
    """max(high - low, |prev_close - high|, |prev_close - low|), compared in TA-Lib's order (same NaN result)."""
    greatest = high - low
    v = abs(prev_close - high)
    if v > greatest:
        greatest = v
    v = abs(prev_close - low)
    if v > greatest:
        greatest = v
    return greatest


# ---------------------------------------------------------------- moving averages


@njit(cache=True)
def sma_1d_nb(a, window, out=None):
    """Numba equivalent to ``pd.Series(a).rolling(window).mean()``.

    Same algorithm as pandas' ``roll_mean``: a Kahan-compensated running sum (remove the value leaving, add
    the new one), NaN and +-inf counted as missing (pandas' rolling turns inf into NaN), and a window of
    identical values returning that value exactly. First ``window - 1`` outputs are NaN, and any window
    containing a missing value is NaN.
    """
    n = a.shape[0]
    if out is None:
        out = np.empty(n, dtype=np.float64)
    total = 0.0
    comp_add = 0.0
    comp_remove = 0.0
    nobs = 0
    neg_ct = 0
    same_ct = 0
    prev = a[0] if n > 0 else np.nan
    for i in range(n):
        if i >= window:  # remove the value leaving the window
            v = a[i - window]
            if np.isfinite(v):
                nobs -= 1
                y = -v - comp_remove
                t = total + y
                comp_remove = t - total - y
                total = t
                if np.signbit(v):
                    neg_ct -= 1
        v = a[i]
        if np.isfinite(v):
            nobs += 1
            y = v - comp_add
            t = total + y
            comp_add = t - total - y
            total = t
            if np.signbit(v):
                neg_ct += 1
            same_ct = same_ct + 1 if v == prev else 1
            prev = v
        if nobs >= window and nobs > 0:
            res = total / nobs
            if same_ct >= nobs:
                res = prev  # a flat window returns its value exactly, as pandas does
            elif neg_ct == 0 and res < 0.0:
                res = 0.0
            elif neg_ct == nobs and res > 0.0:
                res = 0.0
            out[i] = res
        else:
            out[i] = np.nan
    return out


@njit(cache=True, nogil=True)
def sma_nb(a, window, out=None):
    """Numba equivalent to ``pd.DataFrame(a).rolling(window).mean()``. Warm-up: ``window - 1`` NaNs."""
    if out is None:
        out = np.empty(a.shape, dtype=np.float64)
    for col in range(a.shape[1]):
        sma_1d_nb(a[:, col], window, out[:, col])
    return out


@njit(cache=True)
def ema_1d_nb(a, span, out=None):
    """Numba equivalent to ``talib.EMA(a, timeperiod=span)``.

    Seed: the simple mean of the first ``span`` values, output at index ``span - 1``; then
    ``ema = (x - ema) * k + ema`` with ``k = 2 / (span + 1)``. Leading NaNs are skipped as in ``talib``; a
    later NaN makes every following value NaN. ``span == 1`` returns a copy of ``a`` (TA-Lib's special case).

    This differs from ``pd.Series(a).ewm(span=span, adjust=False).mean()``, which seeds with the first value
    (``ema_0 = a[0]``): the two converge as ``(1 - k)**t`` but are never equal.
    """
    n = a.shape[0]
    if out is None:
        out = np.empty(n, dtype=np.float64)
    if span == 1:
        out[:] = a
        return out
    s = 0
    while s < n and np.isnan(a[s]):
        s += 1
    _nan_head_nb(out, s + span - 1)
    if s + span - 1 >= n:
        return out
    total = 0.0
    for i in range(s, s + span):
        total += a[i]
    prev = total / span
    out[s + span - 1] = prev
    k = 2.0 / (span + 1)
    for i in range(s + span, n):
        prev = (a[i] - prev) * k + prev
        out[i] = prev
    return out


@njit(cache=True)
def ema_nb(a, span, out=None):
    """Numba equivalent to ``talib.EMA`` on each column. Warm-up: ``span - 1`` NaNs (after leading NaNs)."""
    if out is None:
        out = np.empty(a.shape, dtype=np.float64)
    for col in range(a.shape[1]):
        ema_1d_nb(a[:, col], span, out[:, col])
    return out


# ---------------------------------------------------------------- Wilder: ATR and ADX


@njit(cache=True)
def atr_1d_nb(high, low, close, window, out=None):
    """Numba equivalent to ``talib.ATR(high, low, close, timeperiod=window)``.

    TR_t = max(H_t - L_t, |H_t - C_{t-1}|, |L_t - C_{t-1}|) from bar 1. First ATR at index ``window`` is the
    mean of TR[1..window]; then ATR_t = (ATR_{t-1} * (window - 1) + TR_t) / window. ``window == 1`` gives TR.
    A NaN high or low after the start makes every later ATR NaN (as in TA-Lib, even for ``window == 1``); a
    NaN close alone only drops its |H - C_prev| and |L - C_prev| terms from the next TR.
    """
    n = high.shape[0]
    if out is None:
        out = np.empty(n, dtype=np.float64)
    s = _first_valid3_nb(high, low, close)
    _nan_head_nb(out, s + window)
    if s + window >= n:
        return out
    total = 0.0
    for i in range(s + 1, s + window + 1):
        total += _true_range_nb(high[i], low[i], close[i - 1])
    prev = total / window
    out[s + window] = prev
    for i in range(s + window + 1, n):
        prev *= window - 1
        prev += _true_range_nb(high[i], low[i], close[i - 1])
        prev /= window
        out[i] = prev
    return out


@njit(cache=True, nogil=True)
def atr_nb(high, low, close, window, out=None):
    """Numba equivalent to ``talib.ATR`` on each column. Warm-up: ``window`` NaNs (after leading NaNs)."""
    if out is None:
        out = np.empty(close.shape, dtype=np.float64)
    for col in range(close.shape[1]):
        atr_1d_nb(high[:, col], low[:, col], close[:, col], window, out[:, col])
    return out


_TA_EPSILON = 1e-14  # TA-Lib's zero band for +DI + -DI (points, 0..200)


@njit(cache=True)
def adx_1d_nb(high, low, close, window, out=None):
    """Numba equivalent to ``(talib.ADX, talib.PLUS_DI, talib.MINUS_DI)(high, low, close, timeperiod=window)``.

    Returns ``(adx, plus_di, minus_di)``, the rows of ``out`` (shape ``(3, n)``). Follows TA-Lib step by step
    (``window >= 2``):

    - +DM_t = H_t - H_{t-1} if it is positive and larger than L_{t-1} - L_t, else 0; -DM_t likewise (equal
      moves give both 0). TR as in `atr_1d_nb`.
    - Bars 1..window-1 are summed; from bar ``window`` on each sum S is smoothed ``S = S - S/window + x_t``
      (so the first value is not the plain sum of ``window`` bars, unlike Wilder's book).
    - +DI = 100 * +DM_s / TR_s, first at index ``window``; DX = 100 * |+DI - -DI| / (+DI + -DI).
    - First ADX at index ``2 * window - 1`` = (sum of the ``window`` DX values) / window; then
      ADX_t = (ADX_{t-1} * (window - 1) + DX_t) / window.

    Degenerate bars, as TA-Lib: if smoothed TR is 0 (flat prices) both DIs are 0 and DX is not defined;
    if |+DI + -DI| < 1e-14 (TA-Lib's epsilon), DX is not defined either. An undefined DX adds 0 to the first
    ADX's sum and leaves a later ADX unchanged, so a flat series gives +DI = -DI = ADX = 0.

    NaN after the first complete bar, as TA-Lib: a NaN high or low makes smoothed TR NaN for good, which
    TA-Lib treats like TR = 0, so from then on +DI = -DI = 0 and ADX stays frozen at its last value (not NaN).
    A NaN close alone only drops its |H - C_prev| and |L - C_prev| terms from the next TR.
    """
    n = high.shape[0]
    if out is None:
        out = np.empty((3, n), dtype=np.float64)
    adx, pdi, mdi = out[0], out[1], out[2]
    s = _first_valid3_nb(high, low, close)
    _nan_head_nb(pdi, s + window)
    _nan_head_nb(mdi, s + window)
    _nan_head_nb(adx, s + 2 * window - 1)
    if s + window >= n:
        return adx, pdi, mdi
    prev_high = high[s]
    prev_low = low[s]
    prev_close = close[s]
    dm_p = 0.0
    dm_m = 0.0
    tr = 0.0
    sum_dx = 0.0
    prev_adx = 0.0
    for i in range(s + 1, n):
        diff_p = high[i] - prev_high
        diff_m = prev_low - low[i]
        prev_high = high[i]
        prev_low = low[i]
        warm = i < s + window  # still summing the first window - 1 bars
        if not warm:
            dm_m -= dm_m / window
            dm_p -= dm_p / window
        # TA-Lib's "if -DM ... else if +DM" without branches (random data mispredicts them); the two tests
        # are exclusive, and adding 0.0 changes nothing
        dm_m += diff_m if (diff_m > 0) & (diff_p < diff_m) else 0.0
        dm_p += diff_p if (diff_p > 0) & (diff_p > diff_m) else 0.0
        x = _true_range_nb(prev_high, prev_low, prev_close)
        prev_close = close[i]
        if warm:
            tr += x
            continue
        tr = tr - tr / window + x
        dx = 0.0
        defined = False
        if tr > 0.0:  # not "!= 0": TA-Lib treats a NaN TR as zero too
            minus_di = 100.0 * (dm_m / tr)
            plus_di = 100.0 * (dm_p / tr)
            pdi[i] = plus_di
            mdi[i] = minus_di
            di_sum = minus_di + plus_di
            if not (-_TA_EPSILON < di_sum < _TA_EPSILON):  # TA-Lib's !TA_IS_ZERO(di_sum)
                dx = 100.0 * (abs(minus_di - plus_di) / di_sum)
                defined = True
        else:
            pdi[i] = 0.0
            mdi[i] = 0.0
        if i < s + 2 * window - 1:
            if defined:
                sum_dx += dx
            continue
        if i == s + 2 * window - 1:
            if defined:
                sum_dx += dx
            prev_adx = sum_dx / window
        elif defined:
            prev_adx = (prev_adx * (window - 1) + dx) / window
        adx[i] = prev_adx
    return adx, pdi, mdi


@njit(cache=True, nogil=True)  # TREND computes ADX on a second thread
def adx_nb(high, low, close, window, out=None):
    """Numba equivalent to ``talib.ADX``, ``talib.PLUS_DI``, ``talib.MINUS_DI`` on each column.

    Returns ``(adx, plus_di, minus_di)``, the three slices of ``out`` (shape ``(3, time, column)``). Warm-up
    (after leading NaNs): ``2 * window - 1`` NaNs for ADX, ``window`` for the DIs.
    """
    if out is None:
        out = np.empty((3,) + close.shape, dtype=np.float64)
    for col in range(close.shape[1]):
        adx_1d_nb(high[:, col], low[:, col], close[:, col], window, out[:, :, col])
    return out[0], out[1], out[2]


# ---------------------------------------------------------------- peaks and drawdowns


@njit(cache=True)
def cummax_1d_nb(a, out=None):
    """Numba equivalent to ``pd.Series(a).cummax()``: NaN stays NaN and is skipped by the running max."""
    n = a.shape[0]
    if out is None:
        out = np.empty(n, dtype=np.float64)
    peak = np.nan
    for i in range(n):
        v = a[i]
        if np.isnan(v):
            out[i] = np.nan
            continue
        if not v <= peak:  # also true while peak is still NaN
            peak = v
        out[i] = peak
    return out


@njit(cache=True)
def rolling_max_1d_nb(a, window, out=None):
    """Numba equivalent to ``pd.Series(a).rolling(window).max()``; ``window <= 0`` gives ``cummax()``.

    O(n) monotonic deque (a ring buffer of indices whose values decrease). First ``window - 1`` outputs are
    NaN, and any window containing a NaN or +-inf (missing to pandas' rolling) is NaN.
    """
    if window <= 0:
        return cummax_1d_nb(a, out)
    n = a.shape[0]
    if out is None:
        out = np.empty(n, dtype=np.float64)
    ring = np.empty(window, dtype=np.int64)
    head = 0  # ring slot of the front (the max)
    size = 0
    nan_ct = 0
    for i in range(n):
        if size > 0 and ring[head] <= i - window:  # front fell out of the window
            head = head + 1 if head + 1 < window else 0
            size -= 1
        v = a[i]
        if not np.isfinite(v):
            nan_ct += 1
        else:
            back = head + size - 1
            if back >= window:
                back -= window
            while size > 0 and a[ring[back]] <= v:  # drop smaller values from the back
                size -= 1
                back = back - 1 if back > 0 else window - 1
            back = head + size
            if back >= window:
                back -= window
            ring[back] = i
            size += 1
        if i >= window and not np.isfinite(a[i - window]):
            nan_ct -= 1
        out[i] = a[ring[head]] if i >= window - 1 and nan_ct == 0 else np.nan
    return out


@njit(cache=True)
def rolling_max_nb(a, window, out=None):
    """Numba equivalent to ``pd.DataFrame(a).rolling(window).max()``, or ``.cummax()`` if ``window <= 0``.

    Warm-up: ``window - 1`` NaNs (none for the expanding max).
    """
    if out is None:
        out = np.empty(a.shape, dtype=np.float64)
    for col in range(a.shape[1]):
        rolling_max_1d_nb(a[:, col], window, out[:, col])
    return out


@njit(cache=True, error_model="numpy")  # x / 0 gives inf or NaN as in numpy, not ZeroDivisionError
def drawdown_from_peak_1d_nb(a, out=None):
    """Numba equivalent to ``s / s.cummax() - 1`` (<= 0 for positive prices; NaN where ``a`` is NaN)."""
    n = a.shape[0]
    if out is None:
        out = np.empty(n, dtype=np.float64)
    peak = np.nan
    for i in range(n):
        v = a[i]
        if np.isnan(v):
            out[i] = np.nan
            continue
        if not v <= peak:
            peak = v
        out[i] = v / peak - 1.0
    return out


@njit(cache=True)
def drawdown_from_peak_nb(a, out=None):
    """Numba equivalent to ``df / df.cummax() - 1``. No warm-up."""
    if out is None:
        out = np.empty(a.shape, dtype=np.float64)
    for col in range(a.shape[1]):
        drawdown_from_peak_1d_nb(a[:, col], out[:, col])
    return out


# ---------------------------------------------------------------- volatility

_INV_COND_TOL = np.finfo(np.float64).eps * 1e3  # pandas: an update leaving < 3 digits triggers a recompute


@njit(cache=True)
def _var_add_nb(v, nobs, mean, ssqdm, comp, unstable):
    """pandas' ``add_var``: Welford with a Kahan-compensated mean. Returns the updated state."""
    if not np.isfinite(v):  # pandas' rolling turns inf into NaN
        return nobs, mean, ssqdm, comp, unstable
    prev_m2 = ssqdm
    nobs += 1.0
    prev_mean = mean - comp
    y = v - comp
    t = y - mean
    comp = t + mean - y
    mean = mean + t / nobs
    ssqdm = ssqdm + (v - prev_mean) * (v - mean)
    return nobs, mean, ssqdm, comp, unstable or prev_m2 * _INV_COND_TOL > ssqdm


@njit(cache=True)
def _var_remove_nb(v, nobs, mean, ssqdm, comp, unstable):
    """pandas' ``remove_var``, the mirror of `_var_add_nb` (with its own compensation term)."""
    if not np.isfinite(v):
        return nobs, mean, ssqdm, comp, unstable
    nobs -= 1.0
    if nobs == 0.0:
        return nobs, 0.0, 0.0, comp, False
    prev_m2 = ssqdm
    prev_mean = mean - comp
    y = v - comp
    t = y - mean
    comp = t + mean - y
    mean = mean - t / nobs
    ssqdm = ssqdm - (v - prev_mean) * (v - mean)
    return nobs, mean, ssqdm, comp, unstable or prev_m2 * _INV_COND_TOL > ssqdm


@njit(cache=True)
def realized_vol_1d_nb(close, window, periods_per_year, out=None):
    """Numba equivalent to ``np.log(s).diff().rolling(window).std() * np.sqrt(periods_per_year)``.

    Rolling std (ddof=1) by pandas' ``roll_var``: Welford add/remove with a Kahan-compensated mean, and the
    window recomputed from scratch when an update cancels catastrophically. First value at index ``window``
    (``window >= 2``); a NaN (or zero) close makes every window holding one of its two returns NaN.
    Numba's ``log`` can differ from numpy's by one ulp, so results agree to ~1e-12, not bit for bit.
    """
    n = close.shape[0]
    if out is None:
        out = np.empty(n, dtype=np.float64)
    scale = np.sqrt(periods_per_year)
    ring = np.empty(window, dtype=np.float64)  # the returns in the window, r_i at slot i % window
    nobs = mean = ssqdm = comp_add = comp_remove = 0.0
    unstable = False
    log_prev = np.nan
    slot = 0
    for i in range(n):
        log_now = np.log(close[i])
        r = log_now - log_prev  # NaN at i = 0, as diff() gives
        log_prev = log_now
        if i >= window:  # ring[slot] still holds r_{i - window}, the return leaving the window
            nobs, mean, ssqdm, comp_remove, unstable = _var_remove_nb(
                ring[slot], nobs, mean, ssqdm, comp_remove, unstable)
        ring[slot] = r
        slot = slot + 1 if slot + 1 < window else 0
        nobs, mean, ssqdm, comp_add, unstable = _var_add_nb(r, nobs, mean, ssqdm, comp_add, unstable)
        if unstable:  # recompute the window from scratch, oldest first
            nobs = mean = ssqdm = comp_add = comp_remove = 0.0
            for j in range(min(i + 1, window)):
                k = slot + j if i + 1 >= window else j
                if k >= window:
                    k -= window
                nobs, mean, ssqdm, comp_add, unstable = _var_add_nb(ring[k], nobs, mean, ssqdm, comp_add, False)
            unstable = False
        if nobs >= window and nobs > 1.0:
            var = ssqdm / (nobs - 1.0)
            out[i] = (0.0 if var < 0.0 else np.sqrt(var)) * scale
        else:
            out[i] = np.nan
    return out


@njit(cache=True)
def realized_vol_nb(close, window, periods_per_year, out=None):
    """Numba equivalent to ``np.log(df).diff().rolling(window).std() * np.sqrt(periods_per_year)``.

    Warm-up: ``window`` NaNs (``window >= 2``).
    """
    if out is None:
        out = np.empty(close.shape, dtype=np.float64)
    for col in range(close.shape[1]):
        realized_vol_1d_nb(close[:, col], window, periods_per_year, out[:, col])
    return out
