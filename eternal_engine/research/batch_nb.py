"""Many configurations of one backtest in one parallel Numba loop: simulate and score each in place.

Each combination runs the one simulator (`sim.nb.simulate_nb`) on its own inputs, chosen from small lists of
distinct input variants (most combinations share all but a few), with TREND's signals built from shared
indicator tables by `trend_flags_nb`, the same kernel `engines.trend.prepare` uses. Only the statistics and
the daily returns of a combination leave the loop, so memory grows with the number of combinations, not with
combinations x bars, and no Python runs per combination.
"""
import numpy as np
from numba import njit, prange

from eternal_engine._specialize import specialize
from eternal_engine.engines.trend_nb import trend_flags_nb
from eternal_engine.research.claim_nb import fetch_add
from eternal_engine.research.sweep_nb import SWEEP_STATS, run_stats_nb, sweep_stats_nb
from eternal_engine.sim.inputs import TrendIn
from eternal_engine.sim.nb import simulate_nb, simulate_trend_nb
from eternal_engine.sim.records import (
    EV_CONTRIBUTION, TradeState, chunk_room, event_dt, fill_dt, funding_dt, order_dt, payment_capacity, trade_dt,
)

N_RETURN_STATS = len(SWEEP_STATS)  # ``stats_out[k]``: `SWEEP_STATS` then `RUN_STATS`
# columns of ``which``: the variant each combination uses from each list
W_COSTS, W_SLEEVES, W_TPARAMS, W_CORE, W_FUNDING, W_TACTICAL, W_RISK, W_ORCH, W_CAL, W_CASH, W_TCOLS = range(11)


@njit(cache=True, parallel=True)
def sweep_batch_nb(mk, costs_v, sleeves_v, tparams_v, core_v, funding_v, tactical_v, risk_v, orch_v, cal_v,
                   cash_v, tcols_v, tables, t_rows, t_threshold, which, ext_qty, day_last, periods_per_year,
                   n_workers, stats_out, daily_out):
    """Run combination ``k`` for every row of ``which``: ``stats_out[k]`` gets `sweep_stats_nb` of its
    time-weighted returns then `run_stats_nb` of its records, ``daily_out[k]`` its daily returns (compounded
    over UTC days; ``day_last[d]`` is the last bar of day ``d``, -1 for a day without bars).

    ``tables`` = `engines.trend.TrendTables` of `engines.trend.indicator_tables` (zero bars when TREND is off);
    ``t_rows[k]`` = the rows (sma_fast, sma_slow, adx, atr) of combination ``k`` in them and ``t_threshold[k]``
    its ADX threshold.
    """
    close, at, sma, adx, atr, conf = tables
    n, m = mk[3].shape
    n_t = close.shape[0]
    n_combos = which.shape[0]
    n_sleeves = cash_v[0].shape[0]  # the same sleeves in every combination
    shape = (n_sleeves, m)
    cap = chunk_room(n_sleeves, m) + n // 2  # `records.record_capacity`: no growth in a normal run
    pay_cap = max(cap, payment_capacity(mk[4], n_sleeves))  # none ever (`records.new_record_buffers`)
    # ``n_workers`` (one per thread), each with its own buffers, claim the combinations one at a time
    # (`claim_nb`): a thread on a busy core runs fewer of them, and no thread waits for another's share at the end
    next_combo = np.zeros(1, np.int64)
    for _ in prange(n_workers):
        flags = np.empty((n_t, m), dtype=np.uint8)
        ts = TradeState(np.empty(shape, np.int8), np.empty(shape, np.int64), np.empty(shape), np.empty(shape),
                        np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape))
        sleeve_eq = np.empty((n, n_sleeves))
        level = np.empty(n, np.int8)
        state = np.empty((n, n_sleeves), np.uint8)
        flows = np.zeros(n)
        rets = np.empty(n)
        bufs = (np.empty(cap, order_dt), np.empty(cap, fill_dt), np.empty(pay_cap, funding_dt),
                np.empty(cap, trade_dt), np.empty(cap, event_dt))
        k = fetch_add(next_combo, 0, 1)
        while k < n_combos:
            w = which[k]
            init_cash = cash_v[w[W_CASH]]
            rows = t_rows[k]
            cols = tcols_v[w[W_TCOLS]]
            trend_flags_nb(close, at, cols, sma[rows[0]], sma[rows[1]], adx[rows[2]], t_threshold[k], flags)
            tr = TrendIn(cols, flags, atr[rows[3]], conf[rows[2]], tparams_v[w[W_TPARAMS]])
            ts.direction[:] = 0  # `records.new_trade_state`
            ts.entry_bar[:] = -1
            for a in (ts.max_qty, ts.avg_price, ts.exit_qty, ts.exit_value, ts.gross, ts.fees, ts.funding):
                a[:] = 0.0
            out = simulate_nb(mk, costs_v[w[W_COSTS]], sleeves_v[w[W_SLEEVES]], tr, core_v[w[W_CORE]],
                              funding_v[w[W_FUNDING]], tactical_v[w[W_TACTICAL]], risk_v[w[W_RISK]],
                              orch_v[w[W_ORCH]], cal_v[w[W_CAL]], ext_qty, init_cash, ts, sleeve_eq, level, state,
                              bufs[0], bufs[1], bufs[2], bufs[3], bufs[4])
            returns_nb(sleeve_eq, init_cash.sum(), out[4], day_last, flows, rets, daily_out[k])
            sweep_stats_nb(rets, periods_per_year, stats_out[k, :N_RETURN_STATS])
            run_stats_nb(out[1], out[3], out[4], level, mk[3], stats_out[k, N_RETURN_STATS:])
            k = fetch_add(next_combo, 0, 1)


@njit(cache=True)
def returns_nb(sleeve_equity, initial, events, day_last, flows, rets, daily):
    """Per-bar time-weighted returns ``(E_t - C_t) / E_{t-1} - 1`` (`attribution.time_weighted_returns`) from
    sleeve equity and the contribution events into ``rets`` and, in the same pass, the daily returns
    (`report.daily_returns`) into ``daily``: the equity ``cumprod(1 + r)`` sampled at each day's last bar
    (``day_last[d]``, -1 for a day without bars: carried over), and its change. ``flows`` (one per bar) must
    be zero; it is left zero."""
    n, n_sleeves = sleeve_equity.shape
    for e in range(events.shape[0]):
        if events[e]["kind"] == EV_CONTRIBUTION:
            flows[events[e]["bar"]] += events[e]["amount"]
    prev = initial
    wealth = 1.0
    last = 1.0
    t = 0
    for d in range(day_last.shape[0]):
        while t <= day_last[d]:
            eq = 0.0
            for s in range(n_sleeves):
                eq += sleeve_equity[t, s]
            r = (eq - flows[t]) / prev - 1.0
            flows[t] = 0.0
            rets[t] = r
            prev = eq
            wealth *= 1.0 + r
            t += 1
        daily[d] = wealth / last - 1.0
        last = wealth
    return rets


# TREND alone in one sleeve: the batch on `sim.nb.simulate_trend_nb` (see there); `batch.run_batch` picks it
sweep_batch_trend_nb = specialize(sweep_batch_nb, "sweep_batch_trend_nb", simulate_nb=simulate_trend_nb)
