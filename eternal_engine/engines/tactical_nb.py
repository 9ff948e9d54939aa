"""TACTICAL kernels: aligning externally supplied series (e.g. a daily fear-&-greed index) to the bars.

The drawdown from the all-time high is :func:`eternal_engine.indicators.nb.drawdown_from_peak_1d_nb`.
"""
import numpy as np
from numba import njit


@njit(cache=True)
def asof_values_nb(target_ts, source_ts, source_values, out):
    """For each ``target_ts[i]``, the latest ``source_values[s]`` with ``source_ts[s] <= target_ts[i]``.

    ``target_ts`` and ``source_ts`` are int64 nanoseconds, both sorted ascending; ``out`` is float64 with the
    length of ``target_ts`` and is filled and returned. Targets before the first source time get NaN. With
    equal source times the last one wins (as ``pd.merge_asof``). A value stamped exactly at a bar's open time
    is usable from that bar on: the stamp must be the time the value became known, or this looks ahead.
    Linear in ``len(target_ts) + len(source_ts)``.
    """
    n = target_ts.shape[0]
    m = source_ts.shape[0]
    s = 0
    for i in range(n):
        t = target_ts[i]
        while s < m and source_ts[s] <= t:
            s += 1
        out[i] = source_values[s - 1] if s > 0 else np.nan
    return out


TAC_ACCUMULATING_CASH, TAC_MONITORING, TAC_TRIGGER, TAC_DEPLOYING, TAC_PROFIT_TARGET, TAC_RETURNING = range(6)
TACTICAL_STATE_NAMES = ("ACCUMULATING_CASH", "MONITORING_MARKETS", "TRIGGER_DETECTED", "DEPLOYING",
                        "PROFIT_TARGET_HIT", "RETURNING_TO_CORE")
TAC_HOLD, TAC_DEPLOY, TAC_EXIT_TARGET, TAC_EXIT_TIME = 0, 1, 2, 3


@njit(cache=True, inline="always")
def tactical_step_nb(stage, armed, drawdown, fear_greed, deep_negative, value, cost, held_ns, levels, fg_below,
                     profit_target, time_limit_ns, rearm_drawdown):
    """TACTICAL's decision on a bar's close; returns ``(action, stage, armed)``.

    ``stage`` counts the drawdown levels already deployed (``levels`` ascending, e.g. 0.5 and 0.7 of BTC below
    its all-time high); ``drawdown`` is positive (0.5 = 50 % below). Stage k+1 deploys when the drawdown
    reaches ``levels[k]``; the first stage may also fire on fear & greed below ``fg_below`` or on deeply
    negative funding. A deployment (``value`` now, ``cost`` paid) exits at ``profit_target`` (1.0 = +100 %) or
    after ``time_limit_ns``. After an exit the triggers re-arm once the drawdown is back below
    ``rearm_drawdown``.
    """
    if cost > 0.0:
        if value >= (1.0 + profit_target) * cost:
            return TAC_EXIT_TARGET, stage, armed
        if held_ns >= time_limit_ns:
            return TAC_EXIT_TIME, stage, armed
    if not armed:
        if drawdown < rearm_drawdown:
            armed = True
        return TAC_HOLD, stage, armed
    if stage < levels.shape[0] and drawdown >= levels[stage]:
        return TAC_DEPLOY, stage + 1, armed
    if stage == 0 and (fear_greed < fg_below or deep_negative):
        return TAC_DEPLOY, 1, armed
    return TAC_HOLD, stage, armed
