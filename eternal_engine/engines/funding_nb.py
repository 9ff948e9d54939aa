"""FUNDING kernels (spec): vectorised funding-rate conditions, as bit flags per bar and perp.

Rules the flags encode (thresholds come from the caller):

* entry: the funding rate exceeded ``entry_rate`` (0.01 % per 8h in the spec) for at least ``min_periods``
  (2 in the spec) consecutive settlements;
* exit: the latest settled funding rate is negative;
* TACTICAL trigger: funding has stayed below ``deep_rate`` (-0.05 % in the spec) for ``deep_ns`` (3 days).

Data model (see :mod:`eternal_engine.data.market`): ``funding[t, i]`` is the sum of the rates of perp ``i``
settling in bar ``t`` and ``0.0`` on bars without a settlement. A *settlement* is therefore a bar with a
non-zero value; a rate that settled at exactly ``0.0`` cannot be told apart from "no settlement" and is
ignored (it neither extends nor breaks a streak and does not update the latest rate).

Rates are compared raw, as settled. The spec states thresholds per 8h; if the data's funding interval differs
(e.g. 1h or 4h settlements, or bars long enough to hold several settlements, whose rates are summed), the
caller must normalise the thresholds (or the rates) before calling.
"""
import numpy as np
from numba import njit

# Bits of the flags array (one byte per bar and perp).
F_ENTRY = 1  # the last ``min_periods`` consecutive settlements all had rate > entry_rate
F_NEGATIVE = 2  # the latest settled rate is < 0
F_DEEP_NEGATIVE = 4  # rates < deep_rate at every settlement for at least deep_ns


@njit(cache=True)
def funding_flags_nb(ts_ns, funding, entry_rate, min_periods, deep_rate, deep_ns, out):
    """Funding conditions on the close of each bar as bit flags in ``out`` (uint8, shape of ``funding``).

    Parameters
    ----------
    ts_ns : int64 (T,) bar open times, strictly increasing.
    funding : float64 (T, k) settled funding rates, perp columns only (the caller slices); 0.0 = no settlement.
    entry_rate : a settlement counts towards the entry streak when its rate is > entry_rate.
    min_periods : F_ENTRY needs at least this many consecutive such settlements (values < 1 act as 1).
    deep_rate : a settlement counts towards the deep-negative streak when its rate is < deep_rate.
    deep_ns : F_DEEP_NEGATIVE needs ``ts_ns[t] - ts_ns[s0] >= deep_ns``, ``s0`` the bar of the first
        settlement of the current deep streak.
    out : uint8 (T, k), filled and returned.

    At bar ``t`` only settlements at bars ``<= t`` are used: the rate settling in bar ``t`` is known at its
    close, so the flags of bar ``t`` are decisions on that close. Bars without a settlement carry the state
    of the latest settlement forward; before a column's first settlement its flags are 0. NaN values are
    skipped like non-settlements (`MarketData` rejects NaN funding).
    """
    n, m = funding.shape
    need = min_periods if min_periods > 1 else 1
    for j in range(m):
        settled = False
        streak = 0  # consecutive settlements with rate > entry_rate
        last = 0.0  # latest settled rate
        deep_start = -1  # bar of the first settlement of the current rate < deep_rate streak, -1 if none
        for t in range(n):
            r = funding[t, j]
            if r != 0.0 and not np.isnan(r):
                settled = True
                last = r
                if r > entry_rate:
                    streak += 1
                else:
                    streak = 0
                if r < deep_rate:
                    if deep_start < 0:
                        deep_start = t
                else:
                    deep_start = -1
            bits = 0
            if settled:
                if streak >= need:
                    bits |= F_ENTRY
                if last < 0.0:
                    bits |= F_NEGATIVE
                if deep_start >= 0 and ts_ns[t] - ts_ns[deep_start] >= deep_ns:
                    bits |= F_DEEP_NEGATIVE
            out[t, j] = bits
    return out


@njit(cache=True, inline="always", error_model="numpy")  # spot 0 gives inf/NaN as in numpy, no exception
def premium_nb(perp_close, spot_close):
    """Perp premium over spot as a fraction: ``perp_close / spot_close - 1``."""
    return perp_close / spot_close - 1.0


FUNDING_SCANNING, FUNDING_ENTERING, FUNDING_HEDGED, FUNDING_EXITING = 0, 1, 2, 3
FUNDING_STATE_NAMES = ("SCANNING", "ENTERING", "HEDGED", "EXITING")  # the spec names none for FUNDING
FUNDING_HOLD, FUNDING_ENTER, FUNDING_EXIT, FUNDING_REHEDGE = 0, 1, 2, 3


@njit(cache=True, inline="always")
def funding_step_nb(spot_qty, perp_qty, flags, premium, held_ns, max_hold_ns, exit_premium, may_enter):
    """FUNDING's decision for one underlying on a bar's close: FUNDING_HOLD, _ENTER, _EXIT or _REHEDGE.

    Flat: enter (spot long + perp short, 1:1) on F_ENTRY unless the latest rate is negative or the premium
    already exceeds ``exit_premium``, and only if ``may_enter`` (pre-trade checks). Hedged: exit when the
    latest rate is negative, the premium exceeds ``exit_premium`` or the pair was held ``max_hold_ns``;
    re-hedge when the legs differ (a spot buy cut short by cash), so the net delta stays ~0.
    """
    if spot_qty == 0.0 and perp_qty == 0.0:
        if may_enter and flags & F_ENTRY and not flags & F_NEGATIVE and premium < exit_premium:
            return FUNDING_ENTER
        return FUNDING_HOLD
    if flags & F_NEGATIVE or premium > exit_premium or held_ns >= max_hold_ns or spot_qty <= 0.0:
        return FUNDING_EXIT
    if abs(spot_qty + perp_qty) > 1e-9 * spot_qty:
        return FUNDING_REHEDGE
    return FUNDING_HOLD
