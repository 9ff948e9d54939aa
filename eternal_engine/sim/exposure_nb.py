"""Exposure from the fill records, without materialising per-bar positions."""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def gross_exposure_nb(fill_bar, fill_col, fill_qty, close, equity, gross=True):
    """Mean of ``sum(|qty| * close) / equity`` over bars, and the share of bars holding any position.

    Positions are rebuilt from the fills (sorted by bar), as in ``np.abs(positions * close).sum(axis=1) /
    equity`` with ``positions = cumsum of fills``. Between two fill bars the book is constant: each such run
    of bars sums over the instruments held in it only. ``gross=False`` gives the share alone (the mean is NaN)
    without a pass over the bars: prices are positive, so a bar holds a position exactly when its gross
    exposure is above 0.
    """
    n_bars, n_cols = close.shape
    n_fills = fill_bar.shape[0]
    pos = np.zeros(n_cols)
    held_cols = np.empty(n_cols, np.int64)
    k = 0
    total = 0.0
    held = 0
    t = 0
    while t < n_bars:
        while k < n_fills and fill_bar[k] == t:
            pos[fill_col[k]] += fill_qty[k]
            k += 1
        end = max(t + 1, min(fill_bar[k], n_bars)) if k < n_fills else n_bars  # the book changes at ``end``
        m = 0
        for i in range(n_cols):
            if pos[i] != 0.0:
                held_cols[m] = i
                m += 1
        if m > 0 and not gross:
            held += end - t
        elif m > 0:
            for u in range(t, end):
                g = 0.0
                for j in range(m):
                    g += abs(pos[held_cols[j]]) * close[u, held_cols[j]]
                if g > 0.0:
                    held += 1
                    total += g / equity[u]
        t = end
    return total / n_bars if gross else np.nan, held / n_bars
