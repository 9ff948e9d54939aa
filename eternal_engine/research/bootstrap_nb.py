"""Numba kernels of the stationary block bootstrap (Politis & Romano 1994).

Randomness stays outside: the callers draw the uniforms with numpy's seeded generators and pass them in, so
the kernels are pure functions of their inputs (reproducible, and the same on every numba version).
"""
from numba import njit


@njit(cache=True)
def stationary_indices_nb(u, start_u, p, out):
    """Fill ``out`` (k x n int64) with stationary-bootstrap indices into a series of length n.

    Path ``i`` starts a new block at bar ``t`` when ``t == 0`` or ``u[i, t] < p``; a block starts at
    ``floor(s * n)`` with ``s`` the next unused value of ``start_u`` (consumed in path order, bar order), and
    otherwise continues with the next index, wrapping from ``n - 1`` to 0 (the circular version of the
    paper). Block lengths are therefore geometric with mean ``1 / p``. Returns the number of ``start_u``
    values used.
    """
    k, n = u.shape
    c = 0
    for i in range(k):
        j = 0
        for t in range(n):
            if t == 0 or u[i, t] < p:
                j = int(start_u[c] * n)
                if j >= n:  # start_u < 1, so only on rounding at huge n
                    j = n - 1
                c += 1
            else:
                j += 1
                if j == n:
                    j = 0
            out[i, t] = j
    return c


@njit(cache=True)
def path_growth_nb(values, idx, total_return, max_drawdown):
    """Per path ``i``: compound ``values[idx[i]]`` from equity 1 and record the total return and the max
    drawdown ``min(equity / running_peak) - 1`` (a fraction <= 0; the starting equity 1 is the first peak,
    so a loss on the first step counts, as in ``eternal_engine.metrics``)."""
    k, n = idx.shape
    for i in range(k):
        eq = 1.0
        peak = 1.0
        mdd = 0.0
        for t in range(n):
            eq *= 1.0 + values[idx[i, t]]
            if eq > peak:
                peak = eq
            dd = eq / peak - 1.0
            if dd < mdd:
                mdd = dd
        total_return[i] = eq - 1.0
        max_drawdown[i] = mdd

