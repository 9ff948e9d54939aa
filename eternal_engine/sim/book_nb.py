"""Bookkeeping kernels of the bar loop: order, fill, trade and event records; cash and positions.

Accounting is spot-like for every instrument: a fill moves ``qty * price + fee`` of cash, so a sleeve's
equity is ``cash + sum(qty * close)``. For a linear perp this equals wallet balance plus unrealised P&L
(the wallet balance is ``cash + qty * entry_price``); margin is computed on top (see `margin_nb`).
"""
import numpy as np
from numba import njit

from eternal_engine.risk.sizing_nb import kelly_update_nb
from eternal_engine.sim.records import (
    EV_TRANSFER, ORDER_LIMIT, ORDER_MARKET, REASON_BREAKER, STATUS_CANCELLED, STATUS_UNFILLED,
)

# record counters in ``n``
_O, _F, _P, _T, _E = 0, 1, 2, 3, 4


@njit(cache=True)
def grow_nb(a, used):
    """``a`` in a buffer twice as long; only the ``used`` records are copied (the rest was never written)."""
    b = np.empty(max(1024, a.shape[0] * 2), dtype=a.dtype)
    b[:used] = a[:used]
    return b


@njit(cache=True, inline="always")
def add_order_nb(orders, n, t, s, i, qty, order_type, reason, price):
    k = n[_O]
    orders[k]["id"] = k
    orders[k]["bar"] = t
    orders[k]["sleeve"] = s
    orders[k]["col"] = i
    orders[k]["qty"] = qty
    orders[k]["order_type"] = order_type
    orders[k]["reason"] = reason
    orders[k]["status"] = STATUS_UNFILLED
    orders[k]["limit"] = price
    n[_O] = k + 1
    return k


@njit(cache=True, inline="always")
def add_event_nb(events, n, t, kind, s, other, amount, value):
    k = n[_E]
    events[k]["bar"] = t
    events[k]["kind"] = kind
    events[k]["sleeve"] = s
    events[k]["other"] = other
    events[k]["amount"] = amount
    events[k]["value"] = value
    n[_E] = k + 1


@njit(cache=True, inline="always")
def close_trade_nb(trades, n, ts, s, i, t, reason, kelly, kelly_sleeve):
    k = n[_T]
    pnl = ts.gross[s, i] - ts.fees[s, i] + ts.funding[s, i]
    trades[k]["sleeve"] = s
    trades[k]["col"] = i
    trades[k]["direction"] = ts.direction[s, i]
    trades[k]["entry_bar"] = ts.entry_bar[s, i]
    trades[k]["exit_bar"] = t
    trades[k]["qty"] = ts.max_qty[s, i]
    trades[k]["entry_price"] = ts.avg_price[s, i]
    trades[k]["exit_price"] = ts.exit_value[s, i] / ts.exit_qty[s, i] if ts.exit_qty[s, i] > 0 else np.nan
    trades[k]["gross_pnl"] = ts.gross[s, i]
    trades[k]["fees"] = ts.fees[s, i]
    trades[k]["funding"] = ts.funding[s, i]
    trades[k]["pnl"] = pnl
    trades[k]["exit_reason"] = reason
    n[_T] = k + 1
    if s == kelly_sleeve and t >= 0:  # Kelly inputs: the engine's own closed trades, as returns on notional
        kelly[0], kelly[1], kelly[2], kelly[3] = kelly_update_nb(
            kelly[0], kelly[1], kelly[2], kelly[3], pnl / (ts.avg_price[s, i] * ts.max_qty[s, i]))


@njit(cache=True, inline="always")
def _open_trade(ts, s, i, t, direction, qty, price, fee):
    ts.direction[s, i] = direction
    ts.entry_bar[s, i] = t
    ts.max_qty[s, i] = qty
    ts.avg_price[s, i] = price
    ts.exit_qty[s, i] = 0.0
    ts.exit_value[s, i] = 0.0
    ts.gross[s, i] = 0.0
    ts.fees[s, i] = fee
    ts.funding[s, i] = 0.0


@njit(cache=True, inline="always")
def fill_nb(fills, trades, n, ts, cash, pos, t, s, i, qty, price, fee, price_type, reason, order_id,
            kelly, kelly_sleeve):
    """Execute ``qty`` at ``price`` (slippage included) paying ``fee``; update cash, position, trade state."""
    k = n[_F]
    fills[k]["order_id"] = order_id
    fills[k]["bar"] = t
    fills[k]["sleeve"] = s
    fills[k]["col"] = i
    fills[k]["qty"] = qty
    fills[k]["price"] = price
    fills[k]["fee"] = fee
    fills[k]["price_type"] = price_type
    fills[k]["reason"] = reason
    n[_F] = k + 1

    p0 = pos[s, i]
    p1 = p0 + qty
    if abs(p1) < 1e-12 * abs(p0):
        p1 = 0.0  # a close computed as -qty can leave rounding dust
    cash[s] -= qty * price + fee
    pos[s, i] = p1
    if p0 == 0.0:
        _open_trade(ts, s, i, t, 1 if qty > 0 else -1, abs(qty), price, fee)
    elif (qty > 0) == (p0 > 0):
        ts.avg_price[s, i] = (ts.avg_price[s, i] * abs(p0) + price * abs(qty)) / abs(p1)
        ts.max_qty[s, i] = max(ts.max_qty[s, i], abs(p1))
        ts.fees[s, i] += fee
    else:
        closed = min(abs(qty), abs(p0))
        ts.gross[s, i] += (price - ts.avg_price[s, i]) * closed * ts.direction[s, i]
        ts.fees[s, i] += fee * closed / abs(qty)
        ts.exit_qty[s, i] += closed
        ts.exit_value[s, i] += closed * price
        if p1 == 0.0 or (p1 > 0) != (p0 > 0):
            close_trade_nb(trades, n, ts, s, i, t, reason, kelly, kelly_sleeve)
            if p1 != 0.0:
                _open_trade(ts, s, i, t, 1 if p1 > 0 else -1, abs(p1), price, fee * abs(p1) / abs(qty))


@njit(cache=True)
def transfer_nb(events, n, cash, t, src, dst, amount):
    """Move ``amount`` of cash from sleeve ``src`` to sleeve ``dst`` and record it."""
    if amount > 1e-9 and src != dst:  # splits can leave rounding dust
        cash[src] -= amount
        cash[dst] += amount
        add_event_nb(events, n, t, EV_TRANSFER, src, dst, amount, np.nan)


@njit(cache=True, inline="always")
def place_nb(orders, n, pend, t, s, i, q, reason, limit, dist):
    """Record an order and make it pending for the next bar (limit orders when ``limit`` is finite)."""
    pend_qty, pend_id, pend_reason, pend_dist, pend_limit = pend
    pend_id[s, i] = add_order_nb(orders, n, t, s, i, q, ORDER_LIMIT if np.isfinite(limit) else ORDER_MARKET,
                                 reason, limit)
    pend_qty[s, i] = q
    pend_reason[s, i] = reason
    pend_dist[s, i] = dist
    pend_limit[s, i] = limit


@njit(cache=True)
def flatten_nb(orders, n, pend, pos, t, s):
    """Market orders closing every position of sleeve ``s`` (pending orders cancelled first)."""
    pend_qty, pend_id = pend[0], pend[1]
    placed = False
    for i in range(pos.shape[1]):
        if pend_qty[s, i] != 0.0:
            orders[pend_id[s, i]]["status"] = STATUS_CANCELLED
            pend_qty[s, i] = 0.0
        if pos[s, i] != 0.0:
            place_nb(orders, n, pend, t, s, i, -pos[s, i], REASON_BREAKER, np.nan, np.nan)
            placed = True
    return placed
