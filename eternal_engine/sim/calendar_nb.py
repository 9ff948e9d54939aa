"""Per-bar calendar bits from UTC timestamps (civil dates by Howard Hinnant's days-from-civil inverse)."""
from numba import njit

NS_DAY = 86_400_000_000_000
PERIOD_NONE, PERIOD_MONTH, PERIOD_QUARTER, PERIOD_YEAR = 0, 1, 2, 3


@njit(cache=True, inline="always")
def civil_nb(days):
    """``(year, month 1-12, day 1-31)`` of a day count since 1970-01-01."""
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


@njit(cache=True, inline="always")
def _period(y, m, kind):
    if kind == PERIOD_MONTH:
        return y * 12 + m - 1
    if kind == PERIOD_QUARTER:
        return y * 4 + (m - 1) // 3
    return y


@njit(cache=True)
def calendar_nb(ts_ns, core_period, orch_period, dca_day, out):
    """Bits per bar into ``out`` (uint8): 1 first bar of a new UTC day, 2 first bar of a new CORE-HODL period,
    4 of a new orchestrator period (PERIOD_* codes, NONE = never), 8 the first bar on or after ``dca_day`` of
    each month (``dca_day`` 0: never). The first bar never carries a bit."""
    n = ts_ns.shape[0]
    prev_day = prev_core = prev_orch = paid_month = -(1 << 62)
    for t in range(n):
        day = ts_ns[t] // NS_DAY
        bits = 0
        if day != prev_day:
            y, m, d = civil_nb(day)
            month = y * 12 + m - 1
            pc = _period(y, m, core_period)
            po = _period(y, m, orch_period)
            if t > 0:
                bits |= 1
                if core_period != PERIOD_NONE and pc != prev_core:
                    bits |= 2
                if orch_period != PERIOD_NONE and po != prev_orch:
                    bits |= 4
            if dca_day > 0 and d >= dca_day and month != paid_month:
                paid_month = month
                if t > 0:
                    bits |= 8
            prev_day, prev_core, prev_orch = day, pc, po
        out[t] = bits
    return out
