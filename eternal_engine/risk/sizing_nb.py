"""Position sizing (spec 6.3): risk-based size capped by fractional Kelly and a notional cap."""
import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def kelly_update_nb(n_win, n_loss, sum_win, sum_loss, trade_return):
    """Add one closed trade's return to the Kelly statistics; returns ``(n_win, n_loss, sum_win, sum_loss)``.

    A return of exactly 0 counts as a loss of 0; a NaN return is ignored. ``sum_loss`` holds |losses|.
    """
    if np.isnan(trade_return):
        return n_win, n_loss, sum_win, sum_loss
    if trade_return > 0.0:
        return n_win + 1, n_loss, sum_win + trade_return, sum_loss
    return n_win, n_loss + 1, sum_win, sum_loss - trade_return


@njit(cache=True, inline="always")
def kelly_fraction_nb(n_win, n_loss, sum_win, sum_loss, min_trades, fraction):
    """Fractional Kelly ``fraction x clip(p - (1 - p) / b, 0, 1)`` with ``b`` = avg win / avg |loss|.

    NaN below ``min_trades`` trades or with none at all (no Kelly term: the caller falls back to risk sizing
    and the cap); 0 without winners; ``fraction`` without losers.
    """
    n = n_win + n_loss
    if n < min_trades or n == 0:
        return np.nan
    if n_win == 0:
        return 0.0
    p = n_win / n
    if not (sum_loss > 0.0):  # no (non-zero) losses: b is infinite, Kelly is p (1 without losers)
        return fraction * min(1.0, p)
    b = (sum_win / n_win) / (sum_loss / n_loss)
    if not (b > 0.0):
        return 0.0
    kelly = p - (1.0 - p) / b
    return fraction * min(1.0, max(0.0, kelly))


@njit(cache=True, inline="always")
def size_nb(equity, price, stop_dist, risk_per_trade, kelly_frac, cap_notional, size_mult):
    """Quantity ``min(risk x equity / stop_dist, kelly x equity / price, cap / price) x size_mult`` (>= 0).

    A non-finite ``kelly_frac`` drops the Kelly term; 0.0 for non-positive or NaN equity, price or stop
    distance, or any other NaN input.
    """
    if not (equity > 0.0) or not (price > 0.0) or not (stop_dist > 0.0):
        return 0.0
    if np.isnan(risk_per_trade) or np.isnan(cap_notional) or np.isnan(size_mult):
        return 0.0
    qty = min(risk_per_trade * equity / stop_dist, cap_notional / price)
    if np.isfinite(kelly_frac):
        qty = min(qty, kelly_frac * equity / price)
    qty *= size_mult
    if not (qty > 0.0):
        return 0.0
    return qty
