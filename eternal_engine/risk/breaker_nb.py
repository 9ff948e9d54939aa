"""Drawdown circuit breaker and calendar loss limits (spec 6.1): per-bar, scalars in, scalars out.

Levels: L1 (dd >= l1) sizes x m1 and stops widened; L2 sizes x m2 and no new entries; L3 closes directional
positions; L4 liquidates everything and halts until the reset rule fires. ``nav`` is the time-weighted
portfolio value (contributions excluded: the caller's job).
"""
from collections import namedtuple

import numpy as np
from numba import njit

BreakerParams = namedtuple(
    "BreakerParams",
    ["l1", "l2", "l3", "l4", "hysteresis", "reset_mode", "cooldown_ns", "daily_limit", "weekly_limit"],
)

RESET_MANUAL, RESET_COOLDOWN = 0, 1
EV_NONE, EV_UP, EV_DOWN, EV_HALT, EV_RESET, EV_DAILY, EV_WEEKLY = 0, 1, 2, 3, 4, 5, 6

NS_PER_DAY = 86_400_000_000_000


@njit(cache=True, inline="always")
def _levels_crossed_nb(dd, p):
    """Number of thresholds l1..l4 that are <= ``dd`` (0 for NaN)."""
    n = 0
    if dd >= p.l1:
        n += 1
    if dd >= p.l2:
        n += 1
    if dd >= p.l3:
        n += 1
    if dd >= p.l4:
        n += 1
    return n


@njit(cache=True, inline="always")
def breaker_update_nb(level, peak, halted_since_ns, nav, ts_ns, p):
    """Advance the breaker by one bar; returns ``(level, peak, halted_since_ns, event)``.

    While halted (level 4) only the reset rule runs (RESET_COOLDOWN: after ``cooldown_ns``, back to L0 with
    the peak reset to ``nav``). Otherwise the peak ratchets up, ``dd = (peak - nav) / peak``, the level rises
    at once to the number of thresholds crossed, and falls only once dd is ``hysteresis`` below a threshold.
    A NaN ``nav`` leaves the state unchanged.
    """
    if level >= 4:
        if p.reset_mode == RESET_COOLDOWN and ts_ns - halted_since_ns >= p.cooldown_ns:
            return 0, nav, -1, EV_RESET
        return level, peak, halted_since_ns, EV_NONE
    if np.isnan(nav):
        return level, peak, halted_since_ns, EV_NONE
    if not (peak > 0.0) or nav > peak:  # NaN or non-positive peak: start from this bar
        peak = nav
    dd = (peak - nav) / peak  # == 1 - nav/peak, exact at round thresholds
    up = _levels_crossed_nb(dd, p)
    if up == 4:
        return 4, peak, ts_ns, EV_HALT
    if up > level:
        return up, peak, halted_since_ns, EV_UP
    down = _levels_crossed_nb(dd + p.hysteresis, p)
    if down < level:
        return down, peak, halted_since_ns, EV_DOWN
    return level, peak, halted_since_ns, EV_NONE


@njit(cache=True, inline="always")
def breaker_band_nb(level, peak, p):
    """``(lo, hi)``: for any ``lo < nav <= hi``, `breaker_update_nb` leaves ``level`` and ``peak`` as they are
    (no event), so a bar loop may skip it. Kept 1e-9 inside the exact bounds, past any rounding of ``dd``;
    empty (``lo = inf``) at L4 or without a positive peak."""
    if level >= 4 or not (peak > 0.0):
        return np.inf, -np.inf
    rise = p.l1 if level == 0 else p.l2 if level == 1 else p.l3 if level == 2 else p.l4
    lo = peak * (1.0 - rise) * (1.0 + 1e-9)  # dd below the next threshold
    hi = peak
    if level >= 1:  # dd + hysteresis still at or above this level's threshold
        here = p.l1 if level == 1 else p.l2 if level == 2 else p.l3
        hi = min(hi, peak * (1.0 - here + p.hysteresis) * (1.0 - 1e-9))
    return lo, hi


@njit(cache=True, inline="always")
def day_index_nb(ts_ns):
    """UTC day number of a nanosecond timestamp (0 = 1970-01-01)."""
    return ts_ns // NS_PER_DAY


@njit(cache=True, inline="always")
def iso_week_index_nb(ts_ns):
    """ISO week number since the epoch: increments on Mondays 00:00 UTC (1970-01-01 was a Thursday)."""
    return (ts_ns // NS_PER_DAY + 3) // 7


@njit(cache=True, inline="always")
def loss_limits_update_nb(day, week, day_anchor, week_anchor, day_halt, week_halt, prev_nav, nav, ts_ns, p):
    """Daily and weekly loss limits for one bar.

    Returns ``(day, week, day_anchor, week_anchor, day_halt, week_halt, event)``. A new UTC day (ISO week)
    re-anchors at ``prev_nav`` (the NAV at the end of the previous bar) and clears its halt; the halt trips
    when ``nav <= anchor x (1 - limit)``. Event EV_DAILY or EV_WEEKLY (EV_WEEKLY if both trip), else EV_NONE.
    Pass ``day = week = -1`` on the first bar (a NaN anchor never trips).
    """
    d = day_index_nb(ts_ns)
    if d != day:
        day = d
        day_anchor = prev_nav
        day_halt = False
    w = iso_week_index_nb(ts_ns)
    if w != week:
        week = w
        week_anchor = prev_nav
        week_halt = False
    event = EV_NONE
    # anchor - nav >= anchor x limit: the same test as nav <= anchor x (1 - limit), exact at round limits
    if not day_halt and day_anchor - nav >= day_anchor * p.daily_limit:
        day_halt = True
        event = EV_DAILY
    if not week_halt and week_anchor - nav >= week_anchor * p.weekly_limit:
        week_halt = True
        event = EV_WEEKLY
    return day, week, day_anchor, week_anchor, day_halt, week_halt, event


@njit(cache=True, inline="always")
def size_multiplier_nb(level, m1, m2):
    """Position-size multiplier for a breaker level: 1 at L0, ``m1`` at L1, ``m2`` at L2 and above."""
    if level <= 0:
        return 1.0
    if level == 1:
        return m1
    return m2
