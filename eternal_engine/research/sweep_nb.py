"""Statistics of one run's returns for sweeps, on `metrics_nb`'s passes (definitions of `eternal_engine.metrics`)."""
import math

import numpy as np
from numba import njit

from eternal_engine.metrics_nb import (
    N_FIELDS, S_DOWN_SQ, S_HI, S_LO, S_M2, S_MEAN, S_MIN_RATIO, S_N_NEG, S_N_POS, S_WEALTH, stats_passes_nb,
)

SWEEP_STATS = ("total_return", "cagr", "volatility_ann", "sharpe", "sortino", "max_drawdown", "calmar",
               "win_rate")


@njit(cache=True, nogil=True)
def sweep_stats_nb(returns, periods_per_year, out):
    """``out[:] = SWEEP_STATS`` of ``returns`` (per-bar simple returns), NaN where `metrics.stats` gives NaN."""
    f = np.empty(N_FIELDS)
    stats_passes_nb(returns, np.empty(0, np.int64), 0, f)  # `metrics.stats`' own passes (no times: no duration)
    n = returns.shape[0]
    wealth, mean, lo, hi = f[S_WEALTH], f[S_MEAN], f[S_LO], f[S_HI]
    max_dd = f[S_MIN_RATIO] - 1.0
    down, n_pos, n_neg = f[S_DOWN_SQ], f[S_N_POS], f[S_N_NEG]
    std = 0.0 if lo == hi else (math.sqrt(f[S_M2] / (n - 1)) if n > 1 else np.nan)
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
