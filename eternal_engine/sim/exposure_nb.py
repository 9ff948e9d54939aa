"""Exposure from the fill records, without materialising per-bar positions."""
import numpy as np
from numba import njit


@njit(cache=True)
def gross_exposure_nb(fill_bar, fill_col, fill_qty, close, equity):
    """Mean of ``sum(|qty| * close) / equity`` over bars, and the share of bars holding any position.

    Positions are rebuilt bar by bar from the fills (sorted by bar), as in
    ``np.abs(positions * close).sum(axis=1) / equity`` with ``positions = cumsum of fills``.
    """
    n_bars, n_cols = close.shape
    pos = np.zeros(n_cols)
    k = 0
    total = 0.0
    held = 0
    for t in range(n_bars):
        while k < fill_bar.shape[0] and fill_bar[k] == t:
            pos[fill_col[k]] += fill_qty[k]
            k += 1
        gross = 0.0
        for i in range(n_cols):
            if pos[i] != 0.0:
                gross += abs(pos[i]) * close[t, i]
        if gross > 0.0:
            held += 1
            total += gross / equity[t]
    return total / n_bars, held / n_bars
