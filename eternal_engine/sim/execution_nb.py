"""Order execution inside a bar: pending market and limit orders, resting stops, liquidations."""
import numpy as np
from numba import njit

from eternal_engine.sim.book_nb import add_event_nb, add_order_nb, fill_nb
from eternal_engine.sim.margin_nb import available_cash_nb, liquidation_point_nb
from eternal_engine.sim.records import (
    EV_LIQUIDATION, ORDER_LIQUIDATION, ORDER_STOP, PRICE_CLOSE, PRICE_LIMIT, PRICE_LIQUIDATION, PRICE_OPEN,
    PRICE_STOP, REASON_LIQUIDATION, REASON_TRAILING_STOP, STATUS_CANCELLED, STATUS_EXPIRED, STATUS_FILLED,
    STATUS_REJECTED,
)


@njit(cache=True, inline="always")
def fill_pending_nb(t, market_now, open_, high, low, close, kind, costs, guard_sleeve_max, leverage, pend, state,
                    recs, kelly, kelly_sleeve):
    """Fill the orders decided on the previous close. Limit orders always execute here (at their price if the
    bar's range touches it, maker fee; otherwise they expire); market orders only if ``market_now``, at the
    open (``fill_close`` False) or the close, with slippage and the taker fee. Spot buys of engine sleeves
    (index < ``guard_sleeve_max``) are cut to the sleeve's free cash (rejected without any); sells fill first.
    Returns True if an order is still pending (market orders waiting for the close)."""
    pend_qty, pend_id, pend_reason, pend_dist, pend_limit = pend
    cash, pos, stop, extreme, ts = state
    orders, fills, trades, n = recs
    left = False
    for buys in (False, True):  # sells first: a sleeve's buys may be paid by its sales in the same bar
        for s in range(pos.shape[0]):
            for i in range(pos.shape[1]):
                q = pend_qty[s, i]
                if q == 0.0 or (q > 0.0) != buys:
                    continue
                oid = pend_id[s, i]
                lim = pend_limit[s, i]
                if np.isfinite(lim):
                    if not (low[t, i] <= lim if q > 0 else high[t, i] >= lim):
                        orders[oid]["status"] = STATUS_EXPIRED
                        pend_qty[s, i] = 0.0
                        continue
                    px, fee_rate, ptype = lim, costs.maker[i], PRICE_LIMIT
                elif market_now:
                    ref = close[t, i] if costs.fill_close else open_[t, i]
                    px = ref * (1.0 + costs.slippage if q > 0 else 1.0 - costs.slippage)
                    fee_rate, ptype = costs.taker[i], PRICE_CLOSE if costs.fill_close else PRICE_OPEN
                else:
                    left = True
                    continue
                if q > 0.0 and kind[i] == 0 and s < guard_sleeve_max:
                    # free cash: a perp short's proceeds are not cash, and its initial margin is held
                    ref = close[t] if costs.fill_close and not np.isfinite(lim) else open_[t]
                    free = available_cash_nb(s, cash, pos, ref, kind, leverage[s])
                    afford = free / (px * (1.0 + fee_rate))
                    if afford < q:
                        q = afford
                        if not q * px > 1e-9:
                            orders[oid]["status"] = STATUS_REJECTED
                            pend_qty[s, i] = 0.0
                            continue
                was_flat = pos[s, i] == 0.0
                fill_nb(fills, trades, n, ts, cash, pos, t, s, i, q, px, abs(q) * px * fee_rate, ptype,
                        pend_reason[s, i], oid, kelly, kelly_sleeve)
                orders[oid]["status"] = STATUS_FILLED
                if was_flat and np.isfinite(pend_dist[s, i]):  # an entry with a protective stop
                    stop[s, i] = px - pend_dist[s, i] if q > 0 else px + pend_dist[s, i]
                    extreme[s, i] = px
                elif pos[s, i] == 0.0:
                    stop[s, i] = np.nan
                    extreme[s, i] = np.nan
                pend_qty[s, i] = 0.0
    return left


@njit(cache=True, inline="always")
def stops_nb(t, open_, high, low, kind, costs, pend, state, recs, kelly, kelly_sleeve):
    """Resting stops trigger on the bar's extreme and fill at the stop, or at the open on a gap through it.
    A stop is left to `liquidations_nb` when its sleeve reaches maintenance margin first (no later) on the
    straight path from the open to that extreme (see `margin_nb`): the exchange liquidates before the price gets
    to the stop. Returns True if any fired."""
    pend_qty, pend_id, pend_reason, pend_dist, pend_limit = pend
    cash, pos, stop, extreme, ts = state
    orders, fills, trades, n = recs
    fired = False
    for s in range(pos.shape[0]):
        for i in range(pos.shape[1]):
            q = pos[s, i]
            level = stop[s, i]
            if q == 0.0 or not np.isfinite(level):
                continue
            ext = low[t, i] if q > 0 else high[t, i]
            if not (ext <= level if q > 0 else ext >= level):
                continue
            at = (open_[t, i] - level) / (open_[t, i] - ext) if (open_[t, i] > level if q > 0 else
                                                                 open_[t, i] < level) else 0.0
            lam = liquidation_point_nb(s, cash, pos, open_[t], low[t] if q > 0 else high[t], kind, costs.mmr)
            if lam >= 0.0 and lam <= at:
                continue
            ref = min(open_[t, i], level) if q > 0 else max(open_[t, i], level)
            px = ref * (1.0 - costs.slippage if q > 0 else 1.0 + costs.slippage)
            oid = add_order_nb(orders, n, t, s, i, -q, ORDER_STOP, REASON_TRAILING_STOP, np.nan)
            fill_nb(fills, trades, n, ts, cash, pos, t, s, i, -q, px, abs(q) * px * costs.taker[i], PRICE_STOP,
                    REASON_TRAILING_STOP, oid, kelly, kelly_sleeve)
            orders[oid]["status"] = STATUS_FILLED
            stop[s, i] = np.nan
            extreme[s, i] = np.nan
            fired = True
            if pend_qty[s, i] != 0.0:
                orders[pend_id[s, i]]["status"] = STATUS_CANCELLED
                pend_qty[s, i] = 0.0
    return fired


@njit(cache=True)
def liquidations_nb(t, open_, high, low, kind, costs, pend, state, recs, events, kelly, kelly_sleeve):
    """Liquidate every sleeve whose equity falls below its perps' maintenance margin within the bar (see
    `margin_nb`). Returns True if any sleeve was liquidated."""
    pend_qty, pend_id, pend_reason, pend_dist, pend_limit = pend
    cash, pos, stop, extreme, ts = state
    orders, fills, trades, n = recs
    n_cols = pos.shape[1]
    hit = False
    for s in range(pos.shape[0]):
        has_perp = False
        for i in range(n_cols):
            has_perp = has_perp or (pos[s, i] != 0.0 and kind[i] == 1)
        if not has_perp:
            continue
        lam_lo = liquidation_point_nb(s, cash, pos, open_[t], low[t], kind, costs.mmr)
        lam_hi = liquidation_point_nb(s, cash, pos, open_[t], high[t], kind, costs.mmr)
        if lam_lo < 0.0 and lam_hi < 0.0:
            continue
        use_low = lam_hi < 0.0 or (lam_lo >= 0.0 and lam_lo <= lam_hi)
        lam = lam_lo if use_low else lam_hi
        hit = True
        fees = 0.0
        for i in range(n_cols):
            q = pos[s, i]
            if pend_qty[s, i] != 0.0:
                orders[pend_id[s, i]]["status"] = STATUS_CANCELLED
                pend_qty[s, i] = 0.0
            if q == 0.0:
                continue
            ext = low[t, i] if use_low else high[t, i]
            px = open_[t, i] + lam * (ext - open_[t, i])
            fee = abs(q) * px * (costs.liq_fee if kind[i] == 1 else costs.taker[i])
            fees += fee
            oid = add_order_nb(orders, n, t, s, i, -q, ORDER_LIQUIDATION, REASON_LIQUIDATION, np.nan)
            fill_nb(fills, trades, n, ts, cash, pos, t, s, i, -q, px, fee, PRICE_LIQUIDATION, REASON_LIQUIDATION,
                    oid, kelly, kelly_sleeve)
            orders[oid]["status"] = STATUS_FILLED
            stop[s, i] = np.nan
            extreme[s, i] = np.nan
        cover = max(-cash[s], 0.0)  # the insurance fund takes a negative balance
        cash[s] += cover
        add_event_nb(events, n, t, EV_LIQUIDATION, s, -1, cover, fees)
    return hit
