"""Statistics of one run's returns in a single pass, for sweeps (same definitions as `eternal_engine.metrics`)."""
import math

import numpy as np
from numba import njit

SWEEP_STATS = ("total_return", "cagr", "volatility_ann", "sharpe", "sortino", "max_drawdown", "calmar",
               "win_rate")


@njit(cache=True, nogil=True)
def sweep_stats_nb(returns, periods_per_year, out):
    """``out[:] = SWEEP_STATS`` of ``returns`` (per-bar simple returns), NaN where `metrics.stats` gives NaN."""
    n = returns.shape[0]
    wealth = 1.0
    peak = 1.0
    max_dd = 0.0
    s = 0.0
    down = 0.0
    n_pos = 0
    n_neg = 0
    lo = np.inf
    hi = -np.inf
    for t in range(n):
        r = returns[t]
        wealth *= 1.0 + r
        if wealth > peak:
            peak = wealth
        dd = wealth / peak - 1.0
        if dd < max_dd:
            max_dd = dd
        s += r
        if r < 0.0:
            down += r * r
            n_neg += 1
        elif r > 0.0:
            n_pos += 1
        lo = min(lo, r)
        hi = max(hi, r)
    mean = s / n
    var = 0.0
    for t in range(n):
        d = returns[t] - mean
        var += d * d
    std = 0.0 if lo == hi else (math.sqrt(var / (n - 1)) if n > 1 else np.nan)
    if n == 1 and lo == hi:
        std = np.nan
    root = math.sqrt(periods_per_year)
    total = wealth - 1.0
    cagr = wealth ** (periods_per_year / n) - 1.0 if wealth >= 0.0 else np.nan
    downside = math.sqrt(down / n)
    out[0] = total
    out[1] = cagr
    out[2] = std * root
    out[3] = mean / std * root if std > 0.0 else np.nan
    out[4] = mean / downside * root if downside > 0.0 else np.nan
    out[5] = max_dd
    out[6] = cagr / abs(max_dd) if max_dd != 0.0 and cagr == cagr else np.nan
    out[7] = n_pos / (n_pos + n_neg) if n_pos + n_neg > 0 else np.nan
    return out
