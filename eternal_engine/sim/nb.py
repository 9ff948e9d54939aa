"""The one bar loop: fills, funding, stops, liquidations, marking, breaker, DCA, orchestrator, engine steps.

Per bar ``t``, in this order:

1. orders decided on the close of ``t-1`` execute: limit orders if the bar touches their price, market orders
   at the open (``fill_close=False``);
2. funding settling in bar ``t`` is paid on the position then held, at the bar's open price
   (``amount = -qty * open * rate``: longs pay positive rates);
3. resting stops trigger on the bar's extreme and fill at the stop price, or at the open on a gap, unless the
   sleeve reaches its maintenance margin first on the way there (then step 4 liquidates it);
4. sleeves whose equity falls below their perps' maintenance margin within the bar are liquidated (`margin_nb`),
   on the book held during the bar;
5. with ``fill_close=True`` market orders from ``t-1`` fill at the close of ``t`` instead of step 1 (after the
   liquidation check: the bar's path came before them; a liquidated sleeve's orders are cancelled);
6. every sleeve is marked at the close; ETH staking yield accrues on the first bar of each UTC day;
7. the time-weighted portfolio value feeds the drawdown breaker and the daily/weekly loss limits; at L3 TREND
   and TACTICAL are closed, at L4 everything, and trading halts until the reset rule fires;
8. a due DCA contribution is split among the sleeves; the orchestrator moves cash between sleeves;
9. engines decide on the close of ``t`` (TREND, FUNDING, TACTICAL, CORE-HODL; orders pend for bar ``t+1``).

Bars where nothing is held or pending in a TREND-only (or external-orders) run, and no entry can happen (no
signal, L2 and up, Kelly at 0), only record their equity, level and state: a fast path of two tight loops.
TREND alone in one sleeve runs `simulate_trend_nb`, this loop compiled again with that sleeve layout as
constants (`kernel_for` picks it; the tests check it equals the general loop bit for bit).

The engines' decision glue is written out inside the loop on purpose, which makes this module long: moved into
``inline="always"`` helper functions it made the four-engine loop about 5x slower (reference counting of the
array arguments on every bar; 156 -> 1,000 ns/bar at 1-minute bars). The rules themselves live in the engines'
scalar step kernels (`engines/*_nb.py`) and the risk kernels, which the live adapter shares. The bookkeeping
kernels called only when something happens (fills, stops, orders) are inlined, and the loop runs on borrowed
views of its arrays (`sim.borrow_nb`): each array an inlined kernel takes would otherwise cost two atomic
reference-count operations per call (a fill takes ~30; that was a third of a sweep's time).
"""
import numpy as np
from numba import njit

from eternal_engine._specialize import specialize
from eternal_engine.engines.core_nb import (
    CORE_ACCUMULATING, CORE_EARN_OPTIMIZING, CORE_INITIALIZING, CORE_REBALANCING, core_drifted_nb, core_orders_nb,
)
from eternal_engine.engines.funding_nb import (
    F_ENTRY, FUNDING_ENTER, FUNDING_ENTERING, FUNDING_EXIT, FUNDING_EXITING, FUNDING_HEDGED,
    FUNDING_REHEDGE, funding_step_nb,
)
from eternal_engine.engines.tactical_nb import (
    TAC_ACCUMULATING_CASH, TAC_DEPLOY, TAC_DEPLOYING, TAC_EXIT_TARGET, TAC_HOLD, TAC_MONITORING,
    TAC_PROFIT_TARGET, TAC_RETURNING, TAC_TRIGGER, tactical_step_nb,
)
from eternal_engine.engines.trend_nb import ENTRY as _ENTRY
from eternal_engine.engines.trend_nb import LONG_ENTRY, SHORT_ENTRY
from eternal_engine.engines.trend_nb import trend_step_nb
from eternal_engine.risk.breaker_nb import (
    EV_DAILY, EV_DOWN, EV_HALT, EV_NONE, EV_UP, EV_WEEKLY, RESET_COOLDOWN, breaker_band_nb, breaker_update_nb,
    loss_limits_update_nb, size_multiplier_nb,
)
from eternal_engine.risk.checks_nb import CHECK_OK, pretrade_check_nb
from eternal_engine.risk.sizing_nb import kelly_fraction_nb, kelly_update_nb
from eternal_engine.sim.borrow_nb import borrowed
from eternal_engine.sim.book_nb import (
    _E, _F, _O, _P, _T, add_event_nb, close_trade_nb, flatten_nb, grow_nb, place_nb, transfer_nb,
)
from eternal_engine.sim.execution_nb import fill_pending_nb, liquidations_nb, stops_nb
from eternal_engine.sim.inputs import CAL_CORE, CAL_DAY, CAL_DCA, CAL_ORCH, CAL_WARMUP
from eternal_engine.sim.margin_nb import available_cash_nb
from eternal_engine.sim.orchestrator_nb import (
    allocate_contribution_nb, drifted_nb, pay_out_nb, rebalance_sleeves_nb, rotation_weights_nb,
)
from eternal_engine.sim.records import (
    CHUNK_BARS, EV_BREAKER_DOWN, EV_BREAKER_UP, EV_CORE_REBALANCE, EV_DAILY_LIMIT, EV_STAKING, EV_WEEKLY_LIMIT,
    REASON_ACCUMULATE, REASON_BREAKER, REASON_ENTRY_SHORT, REASON_EXTERNAL, REASON_FUNDING_ENTRY,
    REASON_FUNDING_EXIT, REASON_REBALANCE, REASON_TACTICAL_DEPLOY, REASON_TACTICAL_EXIT, STATUS_EXPIRED,
)
from eternal_engine.sim.records import EV_HALT as EVR_HALT
from eternal_engine.sim.records import chunk_room
from eternal_engine.sim.records import EV_RESET as EVR_RESET
from eternal_engine.sim.state import (
    G_CORE_DUE, G_CORE_STARTED, G_DAY_ANCHOR, G_DAY_HALT, G_EQ_PREV, G_LEVEL, G_NAV, G_PEAK, G_SIZE, G_TAC_ARMED,
    G_TAC_BASE, G_TAC_COST, G_TAC_FILL0, G_TAC_RETURNING, G_TAC_STAGE, G_WEEK_ANCHOR, G_WEEK_HALT, GI_CORE_NORD,
    GI_CORE_OID, GI_DAY, GI_HALTED, GI_SIZE, GI_SNAP, GI_STAKE_TS, GI_TAC_TS, GI_WEEK, HALTED, TREND_ENTERING,
    TREND_EXITING, TREND_IN_POSITION, TREND_NO_TRADE, TREND_SIGNAL_DETECTED, TREND_STOPPED_OUT,
    TREND_TRAILING_STOP,
)

NS_DAY = 86_400_000_000_000
_TREND_ONLY = False  # True in the copies compiled for TREND alone (`simulate_trend_nb`)

@njit(cache=True, inline="always")
def _shadow_step(shadow, kelly, i, open_, high, low, close, atr, flags, is_perp, stop_mult, fee, params):
    """Advance TREND's would-be trade on instrument ``i`` by one bar, as a 1-unit position: its stop triggers on
    the bar's extreme (filled at the stop, or the open on a gap), else the step trails it and may exit at the
    close. A closed one adds its return net of two taker fees to the Kelly statistics."""
    d, lv = shadow[0, i], shadow[2, i]
    exit_px = np.nan
    if (d > 0.0 and low <= lv) or (d < 0.0 and high >= lv):
        exit_px = min(open_, lv) if d > 0.0 else max(open_, lv)
    else:
        stp, ex, q, _, _ = trend_step_nb(d, lv, shadow[3, i], close, high, low, atr, flags, is_perp, 1.0, 0.0,
                                         np.inf, np.nan, 1.0, stop_mult, params)
        shadow[2, i], shadow[3, i] = stp, ex
        if q != 0.0:
            exit_px = close
    if exit_px == exit_px:
        kelly[0], kelly[1], kelly[2], kelly[3] = kelly_update_nb(
            kelly[0], kelly[1], kelly[2], kelly[3], d * (exit_px / shadow[1, i] - 1.0) - 2.0 * fee)
        shadow[0, i] = 0.0


@njit(cache=True, inline="always")
def _count_positions(pos, pend_qty, s_trend, trend_cols, s_fund, fund_spot):
    """Open (or entering) TREND positions and FUNDING pairs, for the max-concurrent-positions check."""
    k = 0
    if s_trend >= 0:
        for i in trend_cols:
            k += pos[s_trend, i] != 0.0 or pend_qty[s_trend, i] != 0.0
    if s_fund >= 0:
        for i in fund_spot:
            k += pos[s_fund, i] != 0.0 or pend_qty[s_fund, i] != 0.0
    return k


@njit(cache=True)
def _run_bars_nb(t_start, t_end, mk, costs, sl, tr, co, fu, ta, rk, orc, cal, ext_qty, g, gi, snaps, kelly,
                 shadow, pend, state, owed, eq_end, snav, sleeve_equity, level_out, state_out, recs, pays,
                 events, fast):
    open_, high, low, close, funding, kind, ts_ns = mk
    cash, pos, stop, extreme, ts = state
    ts_entry, ts_funding = ts.entry_bar, ts.funding
    # arrays out of the input tuples once: reading a field in the loop costs a reference count each time
    t_cols, t_flags, t_atr, t_conf, t_params = tr
    c_cols, c_w = co.cols, co.weights
    f_spot, f_perp, f_flags = fu.spot, fu.perp, fu.flags
    a_cols, a_w, a_dd, a_fg, a_deep, a_levels, a_fr = ta.cols, ta.weights, ta.drawdown, ta.fear_greed, ta.deep, \
        ta.levels, ta.fractions
    taker, maker, base_w, lev = costs.taker, costs.maker, sl.weights, sl.leverage
    s_core, s_trend, s_fund, s_tac, s_ext = sl.core, sl.trend, sl.funding, sl.tactical, sl.external
    mmr = costs.mmr
    pend_qty = pend[0]
    orders, fills, trades, n = recs
    n_sleeves, n_cols = pos.shape
    if _TREND_ONLY:  # a constant: in `simulate_trend_nb`'s copy the compiler drops the other engines' code
        s_core, s_trend, s_fund, s_tac, s_ext, n_sleeves = -1, 0, -1, -1, -1, 1
    guard = n_sleeves if s_ext < 0 else s_ext  # the external sleeve (last) is never cash-guarded
    weights = base_w.copy()
    free = np.empty(n_sleeves)
    eq_now = np.empty(n_sleeves)
    vals = np.empty(c_cols.shape[0])
    prices = np.empty(c_cols.shape[0])
    qtys = np.empty(c_cols.shape[0])
    fast_ok = fast and s_core < 0 and s_fund < 0 and s_tac < 0
    pending = False
    for s in range(n_sleeves):
        for i in range(n_cols):
            pending = pending or pend_qty[s, i] != 0.0
    bp = rk.breaker
    kelly_trades, kelly0 = -1.0, False
    band_lo, band_hi = np.inf, -np.inf  # `breaker_band_nb` of the current level and peak (empty: not known yet)
    t = t_start
    while t < t_end:
        # 0. fast path (TREND-only and replay runs): an empty book with nothing pending changes nothing but
        #    the equity record until an engine wants to enter or a contribution arrives
        if fast_ok and not pending:
            flat = True
            for s in range(n_sleeves):
                for i in range(n_cols):
                    flat = flat and pos[s, i] == 0.0
            for k_col in range(t_cols.shape[0]):
                i = t_cols[k_col]
                flat = flat and shadow[0, i] == 0.0  # a would-be trade is followed bar by bar
            level = int(g[G_LEVEL])
            halted = level == 4
            # entries are impossible from L2 up (the time-weighted value of an empty book cannot move, so the
            # level stays), or once TREND's Kelly estimate is 0 (it only changes when a trade closes, and none
            # can while flat, unless would-be trades feed it): those bars stay here
            if kelly[0] + kelly[1] != kelly_trades:  # the estimate changes only when a trade closes
                kelly_trades = kelly[0] + kelly[1]
                kelly0 = kelly_fraction_nb(kelly[0], kelly[1], kelly[2], kelly[3], rk.kelly_min_trades,
                                           rk.kelly_fraction) == 0.0
            blocked = level >= 2 or (s_trend >= 0 and not rk.kelly_shadow and kelly0)
            cooldown = halted and bp.reset_mode == RESET_COOLDOWN
            e = t  # the run of flat bars [t, e): found first, then recorded (two tight loops)
            stop_bits = CAL_DCA | (CAL_DAY if orc.rotation and n_sleeves > 1 else 0)
            if flat and not cooldown and (blocked or s_trend < 0) and s_ext < 0:
                run = cal[t:t_end]  # only the calendar can end the run (loops over views from 0: no negative
                k = 0  #                  index handling, so the compiler can keep them tight)
                while k < run.shape[0] and not run[k] & stop_bits:
                    k += 1
                e = t + k
                flat = False
            while flat and e < t_end:
                if cal[e] & stop_bits:
                    break
                if cooldown and ts_ns[e] - gi[GI_HALTED] >= bp.cooldown_ns:
                    break  # the L4 cooldown ends on this bar: the breaker must see it
                if s_trend >= 0 and not blocked:
                    signal = False
                    for k_col in range(t_cols.shape[0]):
                        signal = signal or (t_flags[e, t_cols[k_col]] & _ENTRY) != 0
                    if signal:
                        break
                if s_ext >= 0:
                    order = False
                    for i in range(n_cols):
                        order = order or ext_qty[e, i] != 0.0
                    if order:
                        break
                e += 1
            if e > t:
                for s in range(n_sleeves):
                    sleeve_equity[t:e, s] = cash[s]
                    state_out[t:e, s] = HALTED if halted else 0
                level_out[t:e] = level
                if s_trend >= 0 and level < 3:  # L3 and up: TREND does not run; below, the state code is 0
                    codes = state_out[t:e, s_trend]
                    for k_col in range(t_cols.shape[0]):
                        entry = t_flags[t:e, t_cols[k_col]]
                        for k in range(e - t):  # without a branch: entry signals come and go at random
                            codes[k] = max(codes[k], TREND_NO_TRADE * ((entry[k] & _ENTRY) != 0))
                t = e
            if t == t_end:
                break
        level = int(g[G_LEVEL])
        for s in range(n_sleeves):
            state_out[t, s] = 0

        # 1.-5. execution within the bar
        if pending:
            pending = fill_pending_nb(t, not costs.fill_close, open_, high, low, close, kind, costs, guard, lev, pend,
                                      state, recs, kelly, s_trend)
            if s_trend >= 0:
                for k_col in range(t_cols.shape[0]):
                    i = t_cols[k_col]
                    if ts_entry[s_trend, i] == t and pos[s_trend, i] != 0.0:
                        state_out[t, s_trend] = max(state_out[t, s_trend], TREND_ENTERING)
        for i in range(n_cols):  # 2. funding settling in this bar
            rate = funding[t, i]
            if rate == 0.0:
                continue
            for s in range(n_sleeves):
                q = pos[s, i]
                if q != 0.0:
                    amount = -q * open_[t, i] * rate
                    cash[s] += amount
                    ts_funding[s, i] += amount
                    k = n[_P]
                    pays[k]["bar"] = t
                    pays[k]["sleeve"] = s
                    pays[k]["col"] = i
                    pays[k]["qty"] = q
                    pays[k]["price"] = open_[t, i]
                    pays[k]["rate"] = rate
                    pays[k]["amount"] = amount
                    n[_P] = k + 1
        # 3. stops, called only when the bar touches one (NaN stops compare False)
        touched = False
        for s in range(n_sleeves):
            for i in range(n_cols):
                q = pos[s, i]
                if (q > 0.0 and low[t, i] <= stop[s, i]) or (q < 0.0 and high[t, i] >= stop[s, i]):
                    touched = True
        if touched and stops_nb(t, open_, high, low, kind, costs, pend, state, recs, kelly, s_trend) \
                and s_trend >= 0:
            state_out[t, s_trend] = TREND_STOPPED_OUT
        # 4. liquidations, before the close fills of step 5: the bar's path ran on the book held before them
        #    (a position bought at the close never saw the bar's low; one sold at the close did). With
        #    fill_close False nothing is left for step 5. Called only when a sleeve's equity at the open, the
        #    lows or the highs is below its maintenance margin (the conditions `liquidations_nb` acts on).
        breach = False
        for s in range(n_sleeves):
            eq_o = eq_l = eq_h = cash[s]
            mm_o = mm_l = mm_h = 0.0
            for i in range(n_cols):
                q = pos[s, i]
                if q != 0.0:
                    eq_o += q * open_[t, i]
                    eq_l += q * low[t, i]
                    eq_h += q * high[t, i]
                    if kind[i] == 1:
                        mm_o += abs(q) * open_[t, i]
                        mm_l += abs(q) * low[t, i]
                        mm_h += abs(q) * high[t, i]
            if mm_o > 0.0 and (eq_o < mmr * mm_o or eq_l < mmr * mm_l or eq_h < mmr * mm_h):
                breach = True
        if breach:
            liquidations_nb(t, open_, high, low, kind, costs, pend, state, recs, events, kelly, s_trend)
        if pending:
            pending = fill_pending_nb(t, True, open_, high, low, close, kind, costs, guard, lev, pend, state, recs,
                                      kelly, s_trend)

        # 6. mark to market, staking
        total = 0.0
        for s in range(n_sleeves):
            eq = cash[s]
            for i in range(n_cols):
                if pos[s, i] != 0.0:
                    eq += pos[s, i] * close[t, i]
            sleeve_equity[t, s] = eq
            total += eq
        staked = False
        if cal[t] & CAL_DAY and co.stake_col >= 0:
            if pos[s_core, co.stake_col] > 0.0:
                days = (ts_ns[t] - gi[GI_STAKE_TS]) / NS_DAY
                amount = pos[s_core, co.stake_col] * close[t, co.stake_col] * co.stake_rate * days
                cash[s_core] += amount
                sleeve_equity[t, s_core] += amount
                total += amount
                add_event_nb(events, n, t, EV_STAKING, s_core, -1, amount, np.nan)
                staked = True
            gi[GI_STAKE_TS] = ts_ns[t]

        # 7. time-weighted value, breaker, loss limits
        nav_prev = g[G_NAV]
        if g[G_EQ_PREV] > 0.0:
            g[G_NAV] = nav_prev * (total / g[G_EQ_PREV])  # the division off the bar-to-bar chain
        if orc.rotation:  # the sleeves' own time-weighted values feed only the rotation tilt
            for s in range(n_sleeves):
                if eq_end[s] > 0.0:
                    snav[s] *= sleeve_equity[t, s] / eq_end[s]
        old = level
        if not band_lo < g[G_NAV] <= band_hi:  # inside the band the update would change nothing
            level, g[G_PEAK], gi[GI_HALTED], ev = breaker_update_nb(level, g[G_PEAK], gi[GI_HALTED], g[G_NAV],
                                                                  ts_ns[t], bp)
            band_lo, band_hi = breaker_band_nb(level, g[G_PEAK], bp)
            if ev != EV_NONE:
                kind_ev = EV_BREAKER_UP if ev == EV_UP else EV_BREAKER_DOWN if ev == EV_DOWN else (
                    EVR_HALT if ev == EV_HALT else EVR_RESET)
                add_event_nb(events, n, t, kind_ev, -1, level, old, 1.0 - g[G_NAV] / g[G_PEAK])
        g[G_LEVEL] = level
        level_out[t] = level
        (gi[GI_DAY], gi[GI_WEEK], g[G_DAY_ANCHOR], g[G_WEEK_ANCHOR], day_halt, week_halt, ev
         ) = loss_limits_update_nb(gi[GI_DAY], gi[GI_WEEK], g[G_DAY_ANCHOR], g[G_WEEK_ANCHOR], g[G_DAY_HALT] > 0,
                                   g[G_WEEK_HALT] > 0, nav_prev, g[G_NAV], ts_ns[t], bp)
        if ev == EV_DAILY or (ev == EV_WEEKLY and day_halt and not g[G_DAY_HALT] > 0):
            add_event_nb(events, n, t, EV_DAILY_LIMIT, -1, -1, np.nan, 1.0 - g[G_NAV] / g[G_DAY_ANCHOR])
        if ev == EV_WEEKLY:
            add_event_nb(events, n, t, EV_WEEKLY_LIMIT, -1, -1, np.nan, 1.0 - g[G_NAV] / g[G_WEEK_ANCHOR])
        g[G_DAY_HALT] = 1.0 if day_halt else 0.0
        g[G_WEEK_HALT] = 1.0 if week_halt else 0.0
        if level >= 3:  # L3 closes TREND and TACTICAL (their cash stays put), L4 every sleeve
            for s in range(n_sleeves):
                if level == 4 and old < 4:
                    pending = flatten_nb(orders, n, pend, pos, t, s) or pending
                elif level == 4 or s == s_trend or s == s_tac:
                    for i in range(n_cols):
                        if pos[s, i] != 0.0 and pend_qty[s, i] == 0.0:
                            place_nb(orders, n, pend, t, s, i, -pos[s, i], REASON_BREAKER, np.nan, np.nan)
                            pending = True
            if g[G_TAC_COST] > 0.0:  # the deployment was closed: re-arm only after the market recovers
                g[G_TAC_ARMED] = 0.0
            g[G_TAC_STAGE], g[G_TAC_COST], g[G_TAC_RETURNING] = 0.0, 0.0, 0.0

        # 8. contributions and the orchestrator (sleeves exchange cash only)
        if cal[t] & CAL_DCA and orc.dca_amount > 0.0:
            allocate_contribution_nb(events, n, t, cash, sleeve_equity[t], weights, orc.dca_amount)
        if cal[t] & CAL_DAY and orc.rotation:
            snaps[gi[GI_SNAP] % snaps.shape[0]] = snav
            gi[GI_SNAP] += 1
        if n_sleeves > 1 and level < 2:
            for s in range(n_sleeves):  # equity after contributions
                eq_now[s] = cash[s]
                for i in range(n_cols):
                    if pos[s, i] != 0.0:
                        eq_now[s] += pos[s, i] * close[t, i]
            rebalance = (cal[t] & CAL_ORCH) != 0 or drifted_nb(eq_now, weights, orc.threshold)
            if s_core >= 0 and owed[s_core] > 0.0:
                amount = min(owed[s_core], available_cash_nb(s_core, cash, pos, close[t], kind, lev[s_core]))
                if amount > 0.0:  # CORE's sales have filled: pass the cash on (or forget it if no one is short)
                    paid = pay_out_nb(events, n, t, cash, eq_now, weights, s_core, amount)
                    owed[s_core] = owed[s_core] - paid if paid > 0.0 else 0.0
                    if owed[s_core] < costs.min_value:
                        owed[s_core] = 0.0
                    rebalance = (cal[t] & CAL_ORCH) != 0 or drifted_nb(eq_now, weights, orc.threshold)
            if rebalance:
                for s in range(n_sleeves):
                    free[s] = available_cash_nb(s, cash, pos, close[t], kind, lev[s])
                if orc.rotation and gi[GI_SNAP] > orc.lookback_days:
                    then = snaps[(gi[GI_SNAP] - 1 - orc.lookback_days) % snaps.shape[0]]
                    rotation_weights_nb(base_w, snav, then, orc.max_tilt, weights)
                rebalance_sleeves_nb(events, n, t, cash, eq_now, free, weights, owed, s_core)
        elif s_core >= 0:
            owed[s_core] = 0.0

        # 9. engine decisions on the close of t
        if level < 4 and not cal[t] & CAL_WARMUP:
            total = 0.0
            for s in range(n_sleeves):
                total += cash[s]
                for i in range(n_cols):
                    total += pos[s, i] * close[t, i]
            smult = size_multiplier_nb(level, rk.size_l1, rk.size_l2)
            n_open = -1
            day_halt, week_halt = g[G_DAY_HALT] > 0, g[G_WEEK_HALT] > 0
            if s_trend >= 0 and level < 3:
                s = s_trend
                eq = cash[s]
                for i in range(n_cols):
                    eq += pos[s, i] * close[t, i]
                gross = -1.0
                kel = np.nan  # set with gross, before the first entry (exits do not use it)
                smul = t_params.stop_mult * (rk.stop_widen if level >= 1 else 1.0)
                cap = min(t_params.max_position * eq, rk.max_position_pct * total)
                st = state_out[t, s]
                for k_col in range(t_cols.shape[0]):
                    i = t_cols[k_col]
                    flags = t_flags[t, i]
                    if shadow[0, i] != 0.0:
                        _shadow_step(shadow, kelly, i, open_[t, i], high[t, i], low[t, i], close[t, i], t_atr[t, i],
                                     flags, kind[i] == 1, smul, costs.taker[i], t_params)
                    if pos[s, i] == 0.0:
                        if not flags & _ENTRY:
                            continue
                        if n_open < 0:
                            n_open = _count_positions(pos, pend_qty, s_trend, t_cols, s_fund, f_spot)
                        if pretrade_check_nb(level, day_halt, week_halt, n_open, rk.max_positions,
                                             t_conf[t, i], rk.min_confidence) != CHECK_OK:
                            st = max(st, TREND_NO_TRADE)
                            continue
                        if gross < 0.0:  # first entry candidate of the bar: leverage used, Kelly estimate
                            gross = 0.0
                            for j in range(n_cols):
                                gross += abs(pos[s, j]) * close[t, j]
                            kel = kelly_fraction_nb(kelly[0], kelly[1], kelly[2], kelly[3], rk.kelly_min_trades,
                                                    rk.kelly_fraction)
                    hi, lo = high[t, i], low[t, i]
                    if costs.fill_close and ts_entry[s, i] == t:
                        hi = lo = close[t, i]  # entered at this close: the bar's extremes came before the entry
                    old_stop = stop[s, i]
                    stp, ex, q, reason, dist = trend_step_nb(
                        pos[s, i], old_stop, extreme[s, i], close[t, i], hi, lo, t_atr[t, i], flags, kind[i] == 1,
                        eq, gross, cap, kel, smult, smul, t_params)
                    stop[s, i] = stp
                    extreme[s, i] = ex
                    if pos[s, i] != 0.0:
                        st = max(st, TREND_TRAILING_STOP if stp != old_stop else TREND_IN_POSITION)
                    if q != 0.0:
                        pending = True
                        place_nb(orders, n, pend, t, s, i, q, reason, np.nan, dist)
                        if reason <= REASON_ENTRY_SHORT:
                            gross += abs(q) * close[t, i]
                            n_open += 1
                            st = max(st, TREND_SIGNAL_DETECTED)
                        else:
                            st = max(st, TREND_EXITING)
                    elif pos[s, i] == 0.0:
                        st = max(st, TREND_NO_TRADE)  # entry condition but no size (leverage room, Kelly 0)
                        if rk.kelly_shadow and kel == 0.0 and shadow[0, i] == 0.0 and t_atr[t, i] > 0.0:
                            d = 1.0 if flags & LONG_ENTRY else (
                                -1.0 if flags & SHORT_ENTRY and t_params.allow_short and kind[i] == 1 else 0.0)
                            shadow[0, i], shadow[1, i], shadow[3, i] = d, close[t, i], close[t, i]
                            shadow[2, i] = close[t, i] - d * smul * t_atr[t, i]
                state_out[t, s] = st
            if s_fund >= 0:
                s = s_fund
                eq = cash[s]
                for i in range(n_cols):
                    eq += pos[s, i] * close[t, i]
                st = 0
                have_avail, avail = False, 0.0
                for k in range(f_spot.shape[0]):
                    a, b = f_spot[k], f_perp[k]
                    prem = close[t, b] / close[t, a] - 1.0
                    held = ts_ns[t] - ts_ns[ts_entry[s, a]] if pos[s, a] != 0.0 else 0
                    may = False
                    if pos[s, a] == 0.0 and pos[s, b] == 0.0 and f_flags[t, k] & F_ENTRY:
                        if n_open < 0:
                            n_open = _count_positions(pos, pend_qty, s_trend, t_cols, s_fund, f_spot)
                        may = pretrade_check_nb(level, day_halt, week_halt, n_open, rk.max_positions, 1.0,
                                                rk.min_confidence) == CHECK_OK
                    act = funding_step_nb(pos[s, a], pos[s, b], f_flags[t, k], prem, held, fu.max_hold_ns,
                                          fu.exit_premium, may)
                    if act == FUNDING_ENTER:
                        if not have_avail:  # free cash, less what this bar's earlier entries committed
                            avail = available_cash_nb(s, cash, pos, close[t], kind, fu.leverage)
                            have_avail = True
                        slot = min(eq / f_spot.shape[0], avail) * smult
                        slot *= 1.0 - fu.buffer  # room for the move to the fill: a spot leg cut short is
                        #                          re-hedged on the next bar
                        px = close[t, a] * (1.0 + costs.slippage)
                        unit = px * (1.0 + taker[a]) + close[t, b] * (1.0 / fu.leverage + taker[b])
                        q = slot / unit
                        if q * close[t, a] >= costs.min_value:
                            place_nb(orders, n, pend, t, s, a, q, REASON_FUNDING_ENTRY, np.nan, np.nan)
                            place_nb(orders, n, pend, t, s, b, -q, REASON_FUNDING_ENTRY, np.nan, np.nan)
                            avail -= slot
                            pending = True
                            n_open += 1
                            st = max(st, FUNDING_ENTERING)
                    elif act == FUNDING_EXIT:
                        for i in (a, b):
                            if pos[s, i] != 0.0:
                                place_nb(orders, n, pend, t, s, i, -pos[s, i], REASON_FUNDING_EXIT, np.nan, np.nan)
                        pending = True
                        keep = ts_funding[s, b] * fu.compound if ts_funding[s, b] > 0.0 else ts_funding[s, b]
                        if s_tac >= 0 and ts_funding[s, b] > 0.0:
                            transfer_nb(events, n, cash, t, s, s_tac, ts_funding[s, b] - keep)
                        st = max(st, FUNDING_EXITING)
                    elif act == FUNDING_REHEDGE:
                        place_nb(orders, n, pend, t, s, b, -pos[s, a] - pos[s, b], REASON_FUNDING_ENTRY, np.nan,
                               np.nan)
                        pending = True
                        st = max(st, FUNDING_HEDGED)
                    elif pos[s, a] != 0.0:
                        st = max(st, FUNDING_HEDGED)
                state_out[t, s] = st
            if s_tac >= 0 and level < 3:
                s = s_tac
                st = TAC_ACCUMULATING_CASH
                value = 0.0
                flat = True
                for i in a_cols:
                    value += pos[s, i] * close[t, i]
                    flat = flat and pos[s, i] == 0.0 and pend_qty[s, i] == 0.0
                if g[G_TAC_RETURNING] > 0.0:
                    if flat:  # the exit has filled: its sale proceeds (only those) go to CORE-HODL
                        proceeds = 0.0
                        for k in range(int(g[G_TAC_FILL0]), n[_F]):
                            if fills[k]["sleeve"] == s and fills[k]["reason"] == REASON_TACTICAL_EXIT:
                                proceeds -= fills[k]["qty"] * fills[k]["price"] + fills[k]["fee"]
                        transfer_nb(events, n, cash, t, s, s_core if s_core >= 0 else s,
                                    max(0.0, min(proceeds, cash[s])))
                        g[G_TAC_RETURNING], g[G_TAC_STAGE], g[G_TAC_COST], g[G_TAC_ARMED] = 0.0, 0.0, 0.0, 0.0
                    st = TAC_RETURNING
                else:
                    stage0 = int(g[G_TAC_STAGE])
                    act, stage, armed = tactical_step_nb(
                        stage0, g[G_TAC_ARMED] > 0, a_dd[t], a_fg[t], a_deep[t] != 0, value,
                        g[G_TAC_COST], ts_ns[t] - gi[GI_TAC_TS], a_levels, ta.fg_below, ta.profit_target,
                        ta.time_ns, ta.rearm)
                    g[G_TAC_ARMED] = 1.0 if armed else 0.0
                    if act == TAC_DEPLOY and pretrade_check_nb(level, day_halt, week_halt, 0, 1, 1.0,
                                                               0.0) == CHECK_OK:
                        avail = cash[s]
                        if stage0 == 0:
                            g[G_TAC_BASE] = avail
                        amount = a_fr[stage - 1] * g[G_TAC_BASE] * smult
                        if ta.all_in and stage == a_levels.shape[0]:
                            amount = avail * smult
                        amount = min(amount, avail)
                        placed = False
                        for k in range(a_cols.shape[0]):
                            i = a_cols[k]
                            q = a_w[k] * amount / (close[t, i] * (1.0 + costs.slippage) * (1.0 + taker[i]))
                            if q * close[t, i] >= costs.min_value:
                                place_nb(orders, n, pend, t, s, i, q, REASON_TACTICAL_DEPLOY, np.nan, np.nan)
                                placed = pending = True
                        if placed:
                            if g[G_TAC_COST] == 0.0:
                                gi[GI_TAC_TS] = ts_ns[t]
                            g[G_TAC_COST] += amount
                            g[G_TAC_STAGE] = stage
                            st = TAC_TRIGGER
                    elif act != TAC_HOLD and act != TAC_DEPLOY:
                        for i in a_cols:
                            if pos[s, i] != 0.0:
                                place_nb(orders, n, pend, t, s, i, -pos[s, i], REASON_TACTICAL_EXIT, np.nan, np.nan)
                        pending = True
                        g[G_TAC_FILL0] = n[_F]  # the exit's fills are recorded from here on
                        g[G_TAC_RETURNING] = 1.0
                        st = TAC_PROFIT_TARGET if act == TAC_EXIT_TARGET else TAC_RETURNING
                    elif g[G_TAC_COST] > 0.0:
                        st = TAC_DEPLOYING
                    elif armed:
                        st = TAC_MONITORING
                state_out[t, s] = st
            if s_core >= 0:
                s = s_core
                m = c_cols.shape[0]
                eq = cash[s]
                for i in range(n_cols):
                    eq += pos[s, i] * close[t, i]
                for k in range(m):
                    i = c_cols[k]
                    prices[k] = close[t, i]
                    vals[k] = pos[s, i] * close[t, i]
                if cal[t] & CAL_CORE:
                    g[G_CORE_DUE] = 1.0
                if gi[GI_CORE_OID] >= 0:  # the last rebalance's limit orders: retry if one found no taker
                    for k in range(gi[GI_CORE_OID], gi[GI_CORE_OID] + gi[GI_CORE_NORD]):
                        if orders[k]["status"] == STATUS_EXPIRED:
                            g[G_CORE_DUE] = 1.0
                    gi[GI_CORE_OID] = -1
                rebalance = (g[G_CORE_DUE] > 0 or owed[s] > 0.0
                             or core_drifted_nb(vals, c_w, co.threshold))
                accumulate = cash[s] - owed[s] > co.accumulate * eq
                st = CORE_ACCUMULATING if g[G_CORE_STARTED] > 0 else CORE_INITIALIZING
                if staked:
                    st = CORE_EARN_OPTIMIZING
                if rebalance or accumulate:
                    fee = maker[c_cols[0]] if co.limit else taker[c_cols[0]] + costs.slippage
                    count = core_orders_nb(vals, prices, c_w, eq, owed[s], cash[s], fee, rebalance,
                                           costs.min_value, qtys)
                    if rebalance:
                        g[G_CORE_DUE] = 0.0
                        gi[GI_CORE_OID], gi[GI_CORE_NORD] = n[_O], count
                    turnover = 0.0
                    for k in range(m):
                        if qtys[k] != 0.0:
                            i = c_cols[k]
                            place_nb(orders, n, pend, t, s, i, qtys[k],
                                   REASON_REBALANCE if rebalance else REASON_ACCUMULATE,
                                   close[t, i] if co.limit else np.nan, np.nan)
                            pending = True
                            turnover += abs(qtys[k]) * close[t, i]
                    if count > 0:
                        g[G_CORE_STARTED] = 1.0
                        st = CORE_REBALANCING if rebalance else CORE_ACCUMULATING
                        if rebalance:
                            add_event_nb(events, n, t, EV_CORE_REBALANCE, s, -1, turnover, np.nan)
                state_out[t, s] = st
        else:
            for s in range(n_sleeves):
                state_out[t, s] = HALTED
        if s_ext >= 0:
            s = s_ext
            for i in range(n_cols):
                q = ext_qty[t, i]
                if q != 0.0 and np.isfinite(q) and level < 4:
                    pending = True
                    place_nb(orders, n, pend, t, s, i, q, REASON_EXTERNAL, np.nan, np.nan)

        # final equity of the bar (after contributions and transfers) and the base of next bar's returns
        tot = 0.0
        for s in range(n_sleeves):
            eq = cash[s]
            for i in range(n_cols):
                if pos[s, i] != 0.0:
                    eq += pos[s, i] * close[t, i]
            sleeve_equity[t, s] = eq
            eq_end[s] = eq
            tot += eq
        g[G_EQ_PREV] = tot
        t += 1


@njit(cache=True, inline="always")
def _trend_alone(sl, n_sleeves):
    return n_sleeves == 1 and sl.trend == 0 and sl.core < 0 and sl.funding < 0 and sl.tactical < 0 and sl.external < 0


@njit(cache=True, nogil=True)  # sweeps run combinations on threads
def simulate_nb(mk, costs, sl, tr, co, fu, ta, rk, orc, cal, ext_qty, init_cash, ts, sleeve_equity, level_out,
                state_out, orders, fills, pays, trades, events, fast=True):
    """Run the bar loop. ``mk`` = (open, high, low, close, funding, kind, ts_ns); the other inputs are the
    namedtuples of `sim.inputs`. ``ts`` is the per-(sleeve, instrument) trade state (see `TradeState`);
    ``sleeve_equity`` (bars x sleeves), ``level_out`` (bars) and ``state_out`` (bars x sleeves) receive each
    bar's sleeve equity, breaker level and engine state; the record buffers (see `records.new_record_buffers`)
    are grown here when full. Outputs are allocated by the caller because numpy advises huge pages for big
    arrays: Numba's allocator does not, and the page faults of its 4 KiB pages cost more than the arithmetic.

    ``fast=False`` switches off the fast path over idle bars (tests check that it changes nothing).

    Returns ``(orders, fills, funding_payments, trades, events, stops, entry_stop_dist)``; trades still open at
    the end are included with ``exit_bar = -1`` and marked at the last close. For live trading, which places
    stops on the exchange: ``stops`` (sleeves x instruments) holds the resting stop of each position after the
    last bar's decisions and ``entry_stop_dist`` the stop distance of an entry pending after the last bar (its
    stop rests at the fill price -/+ it); NaN where none.
    """
    close = mk[3]
    n_bars, n_cols = close.shape
    n_sleeves = init_cash.shape[0]
    if _TREND_ONLY and not _trend_alone(sl, n_sleeves):
        raise ValueError("simulate_trend_nb runs TREND alone in one sleeve: use simulate_nb (see kernel_for)")
    cash = init_cash.copy()
    pos = np.zeros((n_sleeves, n_cols))
    stop = np.full((n_sleeves, n_cols), np.nan)
    extreme = np.full((n_sleeves, n_cols), np.nan)
    pend = (np.zeros((n_sleeves, n_cols)), np.full((n_sleeves, n_cols), -1, dtype=np.int64),
            np.zeros((n_sleeves, n_cols), dtype=np.int8), np.full((n_sleeves, n_cols), np.nan),
            np.full((n_sleeves, n_cols), np.nan))
    owed = np.zeros(n_sleeves)
    eq_end = init_cash.copy()
    snav = np.ones(n_sleeves)
    snaps = np.ones((orc.lookback_days + 2, n_sleeves))
    kelly = np.zeros(4)
    shadow = np.zeros((4, n_cols))  # TREND's would-be trades: direction, entry, stop, extreme per instrument
    g = np.zeros(G_SIZE)
    g[G_PEAK] = 1.0
    g[G_NAV] = 1.0
    g[G_EQ_PREV] = init_cash.sum()
    g[G_TAC_ARMED] = 1.0
    gi = np.full(GI_SIZE, -1, dtype=np.int64)
    gi[GI_SNAP] = 0
    gi[GI_STAKE_TS] = mk[6][0]  # staking accrues from the first bar
    # Records grow between chunks of bars, never inside the bar loop (reassigning an array there would cost
    # reference counting on every bar). A bar writes at most `chunk_room` / CHUNK_BARS records to each buffer.
    room = chunk_room(n_sleeves, n_cols)
    per_bar = room // CHUNK_BARS
    n = np.zeros(5, dtype=np.int64)
    t0 = n_bars * 0  # an int64 from the start: a literal 0 would compile the loop twice
    while t0 < n_bars:
        while n[_O] + room > orders.shape[0]:
            orders = grow_nb(orders, n[_O])
        while n[_F] + room > fills.shape[0]:
            fills = grow_nb(fills, n[_F])
        while n[_P] + room > pays.shape[0]:
            pays = grow_nb(pays, n[_P])
        while n[_T] + room > trades.shape[0]:
            trades = grow_nb(trades, n[_T])
        while n[_E] + room > events.shape[0]:
            events = grow_nb(events, n[_E])
        # as many bars as the free records surely hold (at least CHUNK_BARS): a call costs microseconds
        free = min(orders.shape[0] - n[_O], fills.shape[0] - n[_F], pays.shape[0] - n[_P],
                   trades.shape[0] - n[_T], events.shape[0] - n[_E])
        t1 = min(t0 + max(CHUNK_BARS, free // per_bar), n_bars)
        # borrowed views: no reference counting inside the loop (all of them outlive the call)
        _run_bars_nb(t0, t1, *borrowed((mk, costs, sl, tr, co, fu, ta, rk, orc, cal, ext_qty, g, gi, snaps, kelly,
                                        shadow, pend, (cash, pos, stop, extreme, ts), owed, eq_end, snav,
                                        sleeve_equity, level_out, state_out, (orders, fills, trades, n), pays,
                                        events)), fast)
        t0 = t1

    last = n_bars - 1
    for s in range(n_sleeves):
        for i in range(n_cols):
            q = pos[s, i]
            if q != 0.0:
                ts.gross[s, i] += (close[last, i] - ts.avg_price[s, i]) * abs(q) * ts.direction[s, i]
                if n[_T] >= trades.shape[0]:
                    trades = grow_nb(trades, n[_T])
                close_trade_nb(trades, n, ts, s, i, -1, -1, kelly, -1)
    return (orders[: n[_O]], fills[: n[_F]], pays[: n[_P]], trades[: n[_T]], events[: n[_E]], stop,
            np.where(pend[0] != 0.0, pend[3], np.nan))


# TREND alone in one sleeve (most research runs): the same loop compiled with that layout as constants, which
# leaves out the other engines' code and spills fewer values to the stack (~15 % less time per sweep
# combination; the first run compiles it once more, like the general loop, then it loads from the cache)
_run_bars_trend_nb = specialize(_run_bars_nb, "_run_bars_trend_nb", _TREND_ONLY=True)
simulate_trend_nb = specialize(simulate_nb, "simulate_trend_nb", _TREND_ONLY=True, _run_bars_nb=_run_bars_trend_nb)


def trend_alone(sleeves, n_sleeves: int) -> bool:
    """Whether the sleeves are TREND alone (`simulate_trend_nb` runs them)."""
    return bool(_trend_alone.py_func(sleeves, n_sleeves))


def kernel_for(sleeves, n_sleeves: int):
    """`simulate_trend_nb` for TREND alone in one sleeve, else `simulate_nb` (identical results; looked up at
    each call, so a test or benchmark may wrap either)."""
    return simulate_trend_nb if trend_alone(sleeves, n_sleeves) else simulate_nb
