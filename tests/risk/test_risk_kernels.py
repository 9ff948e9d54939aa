"""Risk kernels (spec 6): breaker levels, loss limits, pre-trade checks, Kelly and sizing, by hand."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eternal_engine.risk.breaker_nb import (
    EV_DAILY, EV_DOWN, EV_HALT, EV_NONE, EV_RESET, EV_UP, EV_WEEKLY, NS_PER_DAY, RESET_COOLDOWN, RESET_MANUAL,
    BreakerParams, breaker_band_nb, breaker_update_nb, day_index_nb, iso_week_index_nb, loss_limits_update_nb,
    size_multiplier_nb,
)
from eternal_engine.risk.checks_nb import (
    CHECK_BREAKER, CHECK_CONFIDENCE, CHECK_DAILY_LOSS, CHECK_MAX_POSITIONS, CHECK_NAMES, CHECK_OK,
    CHECK_WEEKLY_LOSS, pretrade_check_nb,
)
from eternal_engine.risk.sizing_nb import kelly_fraction_nb, kelly_update_nb, size_nb

HOUR = 3_600_000_000_000
COOLDOWN = 7 * NS_PER_DAY


def params(reset_mode=RESET_MANUAL, hysteresis=0.025, daily=0.02, weekly=0.05):
    return BreakerParams(0.10, 0.15, 0.20, 0.25, hysteresis, reset_mode, COOLDOWN, daily, weekly)


def step(state, nav, ts=0, p=None):
    level, peak, halted = state
    level, peak, halted, ev = breaker_update_nb(level, peak, halted, nav, ts, p or params())
    return (level, peak, halted), ev


# --- breaker ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level, nav", [(1, 90.0), (2, 85.0), (3, 80.0)])
def test_level_up_exactly_at_threshold_and_not_just_below(level, nav):
    (lv, peak, halted), ev = step((0, 100.0, -1), nav)
    assert (lv, peak, halted, ev) == (level, 100.0, -1, EV_UP)
    (lv, _, _), ev = step((0, 100.0, -1), nav + 1e-6)
    assert (lv, ev) == (level - 1, EV_UP if level > 1 else EV_NONE)


def test_l4_exactly_at_threshold_halts_and_just_below_is_l3():
    assert breaker_update_nb(0, 100.0, -1, 75.0, 123, params()) == (4, 100.0, 123, EV_HALT)
    assert breaker_update_nb(0, 100.0, -1, 75.0 + 1e-6, 123, params()) == (3, 100.0, -1, EV_UP)


def test_peak_ratchets_and_nan_peak_initialises():
    assert breaker_update_nb(0, np.nan, -1, 50.0, 0, params()) == (0, 50.0, -1, EV_NONE)
    assert breaker_update_nb(0, 0.0, -1, 50.0, 0, params()) == (0, 50.0, -1, EV_NONE)
    assert breaker_update_nb(0, 100.0, -1, 120.0, 0, params()) == (0, 120.0, -1, EV_NONE)
    # NaN nav changes nothing (in particular, does not de-escalate)
    assert breaker_update_nb(2, 100.0, -1, np.nan, 0, params()) == (2, 100.0, -1, EV_NONE)


def test_jump_from_zero_straight_to_l3():
    assert breaker_update_nb(0, 100.0, -1, 79.0, 0, params()) == (3, 100.0, -1, EV_UP)


def test_deescalation_with_hysteresis():
    s = (0, 100.0, -1)
    s, ev = step(s, 84.0)          # dd 0.16
    assert (s[0], ev) == (2, EV_UP)
    s, ev = step(s, 86.0)          # dd 0.14: 0.14 + 0.025 >= 0.15, stays L2
    assert (s[0], ev) == (2, EV_NONE)
    s, ev = step(s, 88.0)          # dd 0.12: 0.145 < 0.15 -> L1
    assert (s[0], ev) == (1, EV_DOWN)
    s, ev = step(s, 91.0)          # dd 0.09: 0.115 >= 0.10, stays L1
    assert (s[0], ev) == (1, EV_NONE)
    s, ev = step(s, 93.0)          # dd 0.07: 0.095 < 0.10 -> L0
    assert (s[0], ev) == (0, EV_DOWN)
    assert s[1] == 100.0


def test_deescalation_never_below_current_level_count():
    # L3 -> a big recovery to dd 0.11 drops straight to L1 (not L0: dd still >= l1)
    assert breaker_update_nb(3, 100.0, -1, 89.0, 0, params()) == (1, 100.0, -1, EV_DOWN)
    # without hysteresis a level falls as soon as dd is below its threshold
    p0 = params(hysteresis=0.0)
    assert breaker_update_nb(2, 100.0, -1, 85.5, 0, p0) == (1, 100.0, -1, EV_DOWN)


def test_l4_manual_reset_is_absorbing_even_when_nav_recovers():
    s, ev = step((0, 100.0, -1), 70.0, ts=5)
    assert s == (4, 100.0, 5) and ev == EV_HALT
    for k, nav in enumerate([80.0, 100.0, 150.0, 60.0]):
        s2, ev = step(s, nav, ts=5 + (k + 1) * 10 * COOLDOWN)
        assert s2 == s and ev == EV_NONE


def test_cooldown_reset_exactly_at_cooldown_and_peak_resets():
    p = params(reset_mode=RESET_COOLDOWN)
    t0 = 1_000 * NS_PER_DAY
    s, ev = step((0, 100.0, -1), 74.0, ts=t0, p=p)
    assert s == (4, 100.0, t0) and ev == EV_HALT
    s1, ev = step(s, 120.0, ts=t0 + COOLDOWN - 1, p=p)
    assert s1 == s and ev == EV_NONE  # peak not updated while halted
    s, ev = step(s, 60.0, ts=t0 + COOLDOWN, p=p)
    assert s == (0, 60.0, -1) and ev == EV_RESET
    # drawdown now measured from the reset NAV: 60 -> 54 is 10%
    s, ev = step(s, 54.0, ts=t0 + COOLDOWN + HOUR, p=p)
    assert s == (1, 60.0, -1) and ev == EV_UP


def test_size_multiplier():
    assert [size_multiplier_nb(lv, 0.75, 0.5) for lv in range(5)] == [1.0, 0.75, 0.5, 0.5, 0.5]


THRESHOLDS = (0.10, 0.15, 0.20, 0.25)


@settings(max_examples=60)
@given(
    rets=st.lists(st.floats(-0.08, 0.08, allow_nan=False), min_size=1, max_size=200),
    hysteresis=st.floats(0.0, 0.05),
)
def test_property_level_bounds_and_l4_absorbing(rets, hysteresis):
    p = params(hysteresis=hysteresis)
    level, peak, halted = 0, 100.0, -1
    nav, my_peak = 100.0, 100.0
    for i, r in enumerate(rets):
        nav *= 1.0 + r
        was_halted = level == 4
        prev = (level, peak, halted)
        level, peak, halted, ev = breaker_update_nb(level, peak, halted, nav, i, p)
        if was_halted:
            assert (level, peak, halted) == prev and ev == EV_NONE
            continue
        my_peak = max(my_peak, nav)
        dd = (my_peak - nav) / my_peak
        up = sum(t <= dd for t in THRESHOLDS)
        down = sum(t <= dd + hysteresis for t in THRESHOLDS)
        assert peak == my_peak
        assert up <= level <= down
        assert (level == 4) == (up == 4) and (ev == EV_HALT) == (up == 4)
        if level == 4:
            assert halted == i


# --- calendar -------------------------------------------------------------------------------------------

@settings(max_examples=300)
@given(level=st.integers(0, 4), peak=st.floats(1e-3, 1e3), hysteresis=st.sampled_from([0.0, 0.025, 0.05]),
       threshold=st.integers(0, 4), offset=st.floats(-1e-6, 1e-6) | st.floats(-0.3, 0.3) | st.just(0.0))
def test_breaker_band_holds_only_navs_the_update_leaves_alone(level, peak, hysteresis, threshold, offset):
    """Inside `breaker_band_nb`'s band the update changes nothing; NAVs right at a threshold are outside it."""
    p = params(hysteresis=hysteresis)
    # NAVs on and around every boundary: each threshold, each threshold less the hysteresis, the peak
    edge = (0.0,) + THRESHOLDS
    nav = peak * (1.0 - edge[threshold] + (hysteresis if threshold and offset > 0 else 0.0)) * (1.0 + offset)
    lo, hi = breaker_band_nb(level, peak, p)
    out = breaker_update_nb(level, peak, -1, nav, 0, p)
    if lo < nav <= hi:
        assert out == (level, peak, -1, EV_NONE)
    if level < 4:  # the band is not empty, and its lower end is the next threshold (1e-9 inside)
        assert lo < hi
        assert lo == pytest.approx(peak * (1.0 - THRESHOLDS[level]), rel=1e-8)
        crossing = peak * (1.0 - THRESHOLDS[level]) * (1.0 - 1e-12)  # just past the next threshold
        assert breaker_update_nb(level, peak, -1, crossing, 0, p)[0] > level and not lo < crossing <= hi


def test_day_and_iso_week_index_match_pandas():
    idx = pd.date_range("2019-12-20", "2023-01-10", freq="h", tz="UTC").as_unit("ns")
    ts = idx.asi8
    days = np.array([day_index_nb(t) for t in ts])
    weeks = np.array([iso_week_index_nb(t) for t in ts])
    assert np.array_equal(days, (idx.normalize() - pd.Timestamp("1970-01-01", tz="UTC")).days)
    assert np.array_equal(np.diff(days) != 0, (np.diff(idx.day) != 0))
    iso = idx.isocalendar()
    pd_change = (iso["year"].diff().ne(0) | iso["week"].diff().ne(0)).to_numpy()[1:]
    assert np.array_equal(np.diff(weeks) != 0, pd_change)
    assert np.all(np.diff(weeks) >= 0)
    assert set(idx[1:][np.diff(weeks) != 0].day_of_week) == {0}
    assert set(idx[1:][np.diff(weeks) != 0].hour) == {0}
    # before the epoch too (floor division)
    assert day_index_nb(-1) == -1 and iso_week_index_nb(pd.Timestamp("1969-12-29").value) == 0
    assert iso_week_index_nb(pd.Timestamp("1969-12-28 23:00").value) == -1


def limits(state, prev_nav, nav, ts, p=None):
    out = loss_limits_update_nb(*state, prev_nav, nav, ts, p or params())
    return out[:6], out[6]


def test_daily_limit_trips_exactly_at_2pct_and_resets_next_utc_day():
    p = params(weekly=0.5)  # weekly limit out of the way
    t0 = pd.Timestamp("2024-03-05 00:00", tz="UTC").value  # a Tuesday
    s = (-1, -1, np.nan, np.nan, False, False)
    s, ev = limits(s, 100.0, 100.0, t0, p)
    assert s == (day_index_nb(t0), iso_week_index_nb(t0), 100.0, 100.0, False, False) and ev == EV_NONE
    s, ev = limits(s, 100.0, 98.0 + 1e-9, t0 + HOUR, p)
    assert ev == EV_NONE and not s[4]
    s, ev = limits(s, 98.0 + 1e-9, 98.0, t0 + 2 * HOUR, p)
    assert ev == EV_DAILY and s[4] and not s[5]
    s, ev = limits(s, 98.0, 97.0, t0 + 3 * HOUR, p)  # already halted: no new event
    assert ev == EV_NONE and s[4]
    s, ev = limits(s, 97.0, 96.0, t0 + 23 * HOUR, p)
    assert ev == EV_NONE and s[4] and s[2] == 100.0
    s, ev = limits(s, 96.0, 95.5, t0 + 24 * HOUR, p)  # next UTC day: anchor 96 (prev bar close)
    assert ev == EV_NONE and not s[4] and s[2] == 96.0 and s[3] == 100.0
    s, ev = limits(s, 95.5, 96.0 * 0.98, t0 + 25 * HOUR, p)
    assert ev == EV_DAILY and s[4]


def test_weekly_limit_across_sunday_monday_boundary():
    p = params(daily=0.5)  # daily limit out of the way
    sun = pd.Timestamp("2024-03-10 22:00", tz="UTC").value  # Sunday
    s = (-1, -1, np.nan, np.nan, False, False)
    s, ev = limits(s, 100.0, 100.0, sun, p)
    s, ev = limits(s, 100.0, 95.0, sun + HOUR, p)  # Sunday 23:00: -5% on the week's anchor
    assert ev == EV_WEEKLY and s[5]
    mon = sun + 2 * HOUR
    s, ev = limits(s, 95.0, 94.0, mon, p)  # Monday 00:00: new week anchored at 95, cleared
    assert ev == EV_NONE and not s[5] and s[3] == 95.0 and s[1] == iso_week_index_nb(sun) + 1
    s, ev = limits(s, 94.0, 95.0 * 0.95, mon + HOUR, p)
    assert ev == EV_WEEKLY and s[5]


def test_both_limits_on_same_bar_report_weekly():
    t0 = pd.Timestamp("2024-03-06 00:00", tz="UTC").value
    s = (-1, -1, np.nan, np.nan, False, False)
    s, _ = limits(s, 100.0, 100.0, t0)
    s, ev = limits(s, 100.0, 94.0, t0 + HOUR)
    assert ev == EV_WEEKLY and s[4] and s[5]


# --- pre-trade checks -----------------------------------------------------------------------------------

def test_pretrade_check_order():
    assert CHECK_NAMES[CHECK_OK] == "ok" and CHECK_NAMES[CHECK_CONFIDENCE] == "confidence"
    assert pretrade_check_nb(4, True, True, 9, 3, 0.0, 0.5) == CHECK_BREAKER
    assert pretrade_check_nb(2, True, True, 9, 3, 0.0, 0.5) == CHECK_BREAKER
    assert pretrade_check_nb(1, True, True, 9, 3, 0.0, 0.5) == CHECK_DAILY_LOSS
    assert pretrade_check_nb(1, False, True, 9, 3, 0.0, 0.5) == CHECK_WEEKLY_LOSS
    assert pretrade_check_nb(0, False, False, 3, 3, 0.0, 0.5) == CHECK_MAX_POSITIONS
    assert pretrade_check_nb(0, False, False, 2, 3, 0.49, 0.5) == CHECK_CONFIDENCE
    assert pretrade_check_nb(0, False, False, 2, 3, np.nan, 0.5) == CHECK_CONFIDENCE
    assert pretrade_check_nb(1, False, False, 2, 3, 0.5, 0.5) == CHECK_OK


# --- sizing ---------------------------------------------------------------------------------------------

def test_kelly_worked_example_via_updates():
    stats = (0, 0, 0.0, 0.0)
    for r in [0.10] * 6 + [-0.05] * 4:
        stats = kelly_update_nb(*stats, r)
    assert stats[:2] == (6, 4)
    assert stats[2] == pytest.approx(0.6) and stats[3] == pytest.approx(0.2)
    # p = 0.6, b = 0.10 / 0.05 = 2, kelly = 0.6 - 0.4 / 2 = 0.4; 1/8 Kelly -> 0.05
    assert kelly_fraction_nb(*stats, 10, 0.125) == pytest.approx(0.05)
    assert math.isnan(kelly_fraction_nb(*stats, 11, 0.125))  # below min_trades: no Kelly term


def test_kelly_edge_cases():
    assert kelly_update_nb(1, 2, 0.1, 0.2, 0.0) == (1, 3, 0.1, 0.2)  # zero return: a loss of 0
    assert kelly_fraction_nb(0, 5, 0.0, 0.3, 5, 0.25) == 0.0
    assert kelly_fraction_nb(5, 0, 0.3, 0.0, 5, 0.25) == 0.25
    # negative edge: p = 0.3, b = 1 -> kelly < 0 -> 0
    assert kelly_fraction_nb(3, 7, 0.3, 0.7, 5, 0.25) == 0.0


def test_size_each_term_binding():
    # risk term: 0.01 x 10_000 / 50 = 2; kelly: 0.5 x 10_000 / 1000 = 5; cap: 8000 / 1000 = 8
    assert size_nb(10_000.0, 1000.0, 50.0, 0.01, 0.5, 8000.0, 1.0) == pytest.approx(2.0)
    # kelly term: 0.1 x 10_000 / 1000 = 1 < risk 2 < cap 8
    assert size_nb(10_000.0, 1000.0, 50.0, 0.01, 0.1, 8000.0, 1.0) == pytest.approx(1.0)
    # cap: 1500 / 1000 = 1.5 < risk 2 < kelly 5
    assert size_nb(10_000.0, 1000.0, 50.0, 0.01, 0.5, 1500.0, 1.0) == pytest.approx(1.5)
    # NaN kelly: no Kelly term -> risk binds; size_mult applied
    assert size_nb(10_000.0, 1000.0, 50.0, 0.01, np.nan, 8000.0, 0.75) == pytest.approx(1.5)
    assert size_nb(10_000.0, 1000.0, 50.0, 0.01, 0.1, 8000.0, 0.5) == pytest.approx(0.5)


@pytest.mark.parametrize("args", [
    (0.0, 1000.0, 50.0, 0.01, 0.5, 8000.0, 1.0),
    (10_000.0, 0.0, 50.0, 0.01, 0.5, 8000.0, 1.0),
    (10_000.0, 1000.0, 0.0, 0.01, 0.5, 8000.0, 1.0),
    (10_000.0, 1000.0, np.nan, 0.01, 0.5, 8000.0, 1.0),
    (np.nan, 1000.0, 50.0, 0.01, 0.5, 8000.0, 1.0),
    (10_000.0, 1000.0, 50.0, np.nan, 0.5, 8000.0, 1.0),
    (10_000.0, 1000.0, 50.0, 0.01, 0.5, np.nan, 1.0),
    (10_000.0, 1000.0, 50.0, 0.01, 0.5, 8000.0, np.nan),
    (10_000.0, 1000.0, 50.0, 0.01, 0.0, 8000.0, 1.0),
])
def test_size_zero_cases(args):
    assert size_nb(*args) == 0.0
