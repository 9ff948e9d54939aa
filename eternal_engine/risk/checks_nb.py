"""Pre-trade checks (spec 6.2) as one per-bar kernel; the first failing check is returned."""
from numba import njit

CHECK_OK, CHECK_BREAKER, CHECK_DAILY_LOSS, CHECK_WEEKLY_LOSS, CHECK_MAX_POSITIONS, CHECK_CONFIDENCE = range(6)
CHECK_NAMES = ("ok", "breaker", "daily_loss_limit", "weekly_loss_limit", "max_positions", "confidence")


@njit(cache=True, inline="always")
def pretrade_check_nb(level, day_halt, week_halt, n_open_positions, max_positions, confidence, min_confidence):
    """Whether a new entry may be opened: CHECK_OK or the code of the first failing check, in the order
    breaker (level >= 2), daily loss, weekly loss, max positions, confidence (a NaN confidence fails)."""
    if level >= 2:
        return CHECK_BREAKER
    if day_halt:
        return CHECK_DAILY_LOSS
    if week_halt:
        return CHECK_WEEKLY_LOSS
    if n_open_positions >= max_positions:
        return CHECK_MAX_POSITIONS
    if not (confidence >= min_confidence):
        return CHECK_CONFIDENCE
    return CHECK_OK
