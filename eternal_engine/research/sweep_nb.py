"""Statistics of one run for sweeps: of its returns, on `metrics_nb`'s passes (definitions of
`eternal_engine.metrics`), and of its records (definitions of `Result.stats`)."""
import math

import numpy as np
from numba import njit

from eternal_engine.metrics_nb import (
    N_FIELDS, S_DOWN_SQ, S_HI, S_LO, S_M2, S_MEAN, S_MIN_RATIO, S_N_NEG, S_N_POS, S_WEALTH, stats_passes_nb,
)
from eternal_engine.sim.exposure_nb import gross_exposure_nb
from eternal_engine.sim.records import EV_LIQUIDATION

SWEEP_STATS = ("total_return", "cagr", "volatility_ann", "sharpe", "sortino", "max_drawdown", "calmar",
               "win_rate")
# what a row of returns cannot tell: how much trading made them, and under which governance
RUN_STATS = ("n_trades", "trade_win_rate", "max_breaker_level", "liquidations", "fees_paid", "funding_net",
             "time_in_market")  # not exposure_avg: a pass over the bars, ~5 % of a TREND combination's time


@njit(cache=True, nogil=True)
def sweep_stats_nb(returns, periods_per_year, out):
    """``out[:] = SWEEP_STATS`` of ``returns`` (per-bar simple returns), NaN where `metrics.stats` gives NaN."""
    f = np.empty(N_FIELDS)
    stats_passes_nb(returns, np.empty(0, np.int64), 0, f)  # `metrics.stats`' own passes (no times: no duration)
    n = returns.shape[0]
    wealth, mean, lo, hi = f[S_WEALTH], f[S_MEAN], f[S_LO], f[S_HI]
    max_dd = f[S_MIN_RATIO] - 1.0
    down, n_pos, n_neg = f[S_DOWN_SQ], f[S_N_POS], f[S_N_NEG]
    std = 0.0 if lo == hi else (math.sqrt(f[S_M2] / (n - 1)) if n > 1 else np.nan)
    if n == 1 and lo == hi:
        std = np.nan
    root = math.sqrt(periods_per_year)
    total = wealth - 1.0
    cagr = wealth ** (periods_per_year / n) - 1.0 if wealth >= 0.0 else np.nan
    downside = math.sqrt(down / n)
    out[0] = total
    out[1] = cagr
    out[2] = std * root
    out[3] = mean / std * root if std > 0.0 else np.nan
    out[4] = mean / downside * root if downside > 0.0 else np.nan
    out[5] = max_dd
    out[6] = cagr / abs(max_dd) if max_dd != 0.0 and cagr == cagr else np.nan
    out[7] = n_pos / (n_pos + n_neg) if n_pos + n_neg > 0 else np.nan
    return out


@njit(cache=True, nogil=True)
def run_stats_nb(fills, trades, events, level, close, out):
    """``out[:] = RUN_STATS`` of one run's records (`sim.nb.simulate_nb`'s outputs, open trades included as
    marked at the end) and breaker ``level`` per bar, as `Result.stats` defines them. ``funding_net`` sums the
    trades' funding: every payment is booked on the trade holding the position (one record per trade, not
    one per bar held)."""
    n_won = 0
    funding = 0.0
    for k in range(trades.shape[0]):
        n_won += trades[k]["pnl"] > 0.0
        funding += trades[k]["funding"]
    n_liq = 0
    for k in range(events.shape[0]):
        n_liq += events[k]["kind"] == EV_LIQUIDATION
    fees = 0.0
    for k in range(fills.shape[0]):
        fees += fills[k]["fee"]
    # the share of bars in the market only: the equity argument (here a stand-in) is not read
    _, in_market = gross_exposure_nb(fills["bar"], fills["col"], fills["qty"], close, close[:, 0], False)
    out[0] = trades.shape[0]
    out[1] = n_won / trades.shape[0] if trades.shape[0] > 0 else np.nan
    out[2] = level.max() if level.shape[0] > 0 else 0
    out[3] = n_liq
    out[4] = fees
    out[5] = funding
    out[6] = in_market
    return out
