"""Capital orchestrator kernels (spec 2.3): DCA allocation, sleeve rebalancing, the rotation tilt.

Sleeves exchange cash only. A sleeve above its target gives what it has free (equity minus spot holdings minus
perp initial margin); CORE-HODL, whose capital sits in coins, is asked to *owe* the rest: its engine sells down
to ``weight x (equity - owed)`` and the cash moves on a later bar once the sales have filled. TREND, FUNDING and
TACTICAL never cut positions to rebalance: they give free cash only.
"""
import numpy as np
from numba import njit

from eternal_engine.sim.book_nb import add_event_nb, transfer_nb
from eternal_engine.sim.records import EV_CONTRIBUTION, EV_SLEEVE_REBALANCE


@njit(cache=True)
def allocate_contribution_nb(events, n, t, cash, equity, weights, amount):
    """Split a contribution: sleeves below target first (in proportion to their shortfall), the rest by
    weight. ``equity`` is the sleeves' equity before it; ``cash`` receives the split."""
    total = equity.sum() + amount
    short = 0.0
    for s in range(equity.shape[0]):
        short += max(weights[s] * total - equity[s], 0.0)
    for s in range(equity.shape[0]):
        need = max(weights[s] * total - equity[s], 0.0)
        if short >= amount:
            give = amount * need / short
        else:
            give = need + (amount - short) * weights[s]
        if give > 0.0:
            cash[s] += give
            add_event_nb(events, n, t, EV_CONTRIBUTION, s, -1, give, np.nan)


@njit(cache=True, inline="always")
def drifted_nb(equity, weights, threshold):
    total = equity.sum()
    if not total > 0.0:
        return False
    for s in range(equity.shape[0]):
        if abs(equity[s] / total - weights[s]) > threshold:
            return True
    return False


@njit(cache=True)
def pay_out_nb(events, n, t, cash, equity, weights, src, amount):
    """Move up to ``amount`` from sleeve ``src`` to the sleeves below target, in proportion to their shortfall
    (nothing moves when none is below). Returns the amount moved."""
    total = equity.sum()
    short = 0.0
    for s in range(equity.shape[0]):
        if s != src:
            short += max(weights[s] * total - equity[s], 0.0)
    if not short > 0.0 or not amount > 0.0:
        return 0.0
    amount = min(amount, short)
    for s in range(equity.shape[0]):
        if s != src:
            need = max(weights[s] * total - equity[s], 0.0)
            if need > 0.0:
                give = amount * need / short
                transfer_nb(events, n, cash, t, src, s, give)
                equity[src] -= give
                equity[s] += give
    return amount


@njit(cache=True)
def rebalance_sleeves_nb(events, n, t, cash, equity, free, weights, owed, owing_sleeve):
    """Move capital from sleeves above target to those below. ``free`` is each sleeve's free cash;
    ``owing_sleeve`` (CORE-HODL, or -1) records in ``owed`` what it must still release by selling."""
    total = equity.sum()
    moved = 0.0
    for s in range(equity.shape[0]):
        excess = equity[s] - weights[s] * total
        if excess <= 0.0:
            continue
        give = min(excess, max(free[s], 0.0))
        moved += pay_out_nb(events, n, t, cash, equity, weights, s, give)
        if s == owing_sleeve:
            owed[s] = max(equity[s] - weights[s] * total, 0.0)
    add_event_nb(events, n, t, EV_SLEEVE_REBALANCE, -1, -1, moved, np.nan)


@njit(cache=True, error_model="numpy")  # a wiped-out sleeve (NAV 0) gives inf/NaN, not ZeroDivisionError
def rotation_weights_nb(base, nav_now, nav_then, max_tilt, out):
    """Targets tilted towards the sleeves with the better trailing time-weighted return: each weight moves by
    ``clip(r_s - mean(r), -max_tilt, max_tilt)`` of itself, then all are renormalised to sum to 1. An undefined
    return (a sleeve whose NAV was 0) turns the tilt off (the base weights apply)."""
    k = base.shape[0]
    mean = 0.0
    for s in range(k):
        mean += nav_now[s] / nav_then[s] - 1.0
    mean /= k
    total = 0.0
    for s in range(k):
        r = nav_now[s] / nav_then[s] - 1.0
        tilt = r - mean
        tilt = min(max(tilt, -max_tilt), max_tilt) if np.isfinite(tilt) else 0.0
        out[s] = base[s] * (1.0 + tilt)
        total += out[s]
    for s in range(k):
        out[s] /= total
    return out
