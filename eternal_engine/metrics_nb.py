"""The passes over the returns behind `metrics.stats`, fused into one Numba kernel (two passes instead of a
dozen numpy ones: at millions of bars the statistics cost more than the simulation otherwise)."""
import numpy as np
from numba import njit

# fields of `stats_passes_nb`'s output
(S_WEALTH, S_MIN_RATIO, S_MEAN, S_LO, S_HI, S_M2, S_M3, S_M4, S_NEG_SUM, S_DOWN_SQ, S_POS_SUM, S_N_NEG, S_N_POS,
 S_UNDER) = range(14)
N_FIELDS = 14


@njit(cache=True, nogil=True)
def stats_passes_nb(a, ts, first_peak, out):
    """Sums and extremes of the returns ``a`` into ``out`` (fields ``S_*``); returns the longest time under
    water, ``ts[last bar under water] - ts[peak bar]`` (``first_peak`` for the baseline before bar 0), in the
    units of ``ts`` (0 when ``ts`` is empty: no times known).

    Equity starts at 1 before the first bar; its ratio to the running peak gives the worst ratio and the time
    under water (``S_UNDER`` 1 if any bar is under water). Central moments ``m2..m4`` are sums
    of powers of ``r - mean``; ``S_DOWN_SQ`` is the sum of squared negative returns.
    """
    n = a.shape[0]
    wealth = peak = 1.0
    min_ratio = 1.0
    s = neg_sum = pos_sum = down_sq = 0.0
    lo, hi = np.inf, -np.inf
    n_neg = n_pos = 0
    under = False
    any_under = False
    peak_ts = first_peak
    duration = 0
    timed = ts.shape[0] > 0
    trough = 1.0  # lowest wealth since the peak: the worst ratio of a drawdown is trough / peak, divided once
    #               per new peak, not per bar (equal to the per-bar minimum: division by a positive peak is monotonic)
    for t in range(n):
        r = a[t]
        wealth *= 1.0 + r
        if wealth > peak:
            worst = trough / peak
            min_ratio = worst if worst < min_ratio else min_ratio
            peak = trough = wealth
        # selects, not branches or Numba's min/max (those compile to calls here)
        trough = wealth if wealth < trough else trough
        if wealth < peak:  # exactly when wealth / peak < 1 (a ratio 1 ulp below 1 cannot round up to it)
            if not under:
                under = True
                any_under = True
                if timed:
                    peak_ts = ts[t - 1] if t > 0 else first_peak
            if timed:
                duration = max(duration, ts[t] - peak_ts)
        else:
            under = False
        s += r
        lo = r if r < lo else lo
        hi = r if r > hi else hi
        neg = r if r < 0.0 else 0.0  # signs come at random: no branches
        neg_sum += neg
        down_sq += neg * neg
        n_neg += r < 0.0
        pos_sum += r if r > 0.0 else 0.0
        n_pos += r > 0.0
    worst = trough / peak
    min_ratio = worst if worst < min_ratio else min_ratio
    mean = s / n
    m2 = m3 = m4 = 0.0
    for t in range(n):
        d = a[t] - mean
        d2 = d * d
        m2 += d2
        m3 += d2 * d
        m4 += d2 * d2
    out[S_WEALTH], out[S_MIN_RATIO], out[S_MEAN], out[S_LO], out[S_HI] = wealth, min_ratio, mean, lo, hi
    out[S_M2], out[S_M3], out[S_M4] = m2, m3, m4
    out[S_NEG_SUM], out[S_DOWN_SQ], out[S_POS_SUM], out[S_N_NEG], out[S_N_POS] = neg_sum, down_sq, pos_sum, n_neg, \
        n_pos
    out[S_UNDER] = 1.0 if any_under else 0.0
    return duration
