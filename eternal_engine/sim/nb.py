"""The one bar loop: fills, funding, stops, mark-to-market, engine steps, records.

Per bar ``t``, in this order (bars with nothing held, nothing pending and no engine wanting to enter only
record their equity, which is then their cash):

1. market orders decided on the close of ``t-1`` fill at the open of ``t`` (``fill_close=False``);
2. funding settling in bar ``t`` is paid on the position then held, at the bar's open price
   (``amount = -qty * open * rate``: longs pay positive rates);
3. resting stops trigger on the bar's extreme (low for long stops, high for short stops) and fill at the
   stop price, or at the open if the bar gapped through it;
4. with ``fill_close=True`` market orders from ``t-1`` fill at the close of ``t`` instead of step 1
   (a stop that fired in step 3 cancels the pending order of that position);
5. every sleeve is marked to market at the close: ``equity = cash + sum(qty * close)``;
6. engines decide on the close of ``t`` (orders become pending for bar ``t+1``).

Accounting is spot-like for every instrument (cash moves by ``qty * price`` on a fill), which for linear perps
equals wallet balance plus unrealised P&L. Taker fee and slippage apply to market and stop fills.
"""
import numpy as np
from numba import njit

from eternal_engine.engines.trend_nb import ENTRY as _ENTRY
from eternal_engine.engines.trend_nb import trend_step_nb
from eternal_engine.sim.records import (
    CHUNK_BARS, ORDER_MARKET, ORDER_STOP, PRICE_CLOSE, PRICE_OPEN, PRICE_STOP, REASON_ENTRY_SHORT,
    REASON_EXTERNAL, REASON_TRAILING_STOP, STATUS_CANCELLED, STATUS_FILLED, STATUS_UNFILLED,
)

_O, _F, _P, _T, _FB = 0, 1, 2, 3, 4  # record counters; _FB: next entry of fund_bars


@njit(cache=True)
def _grow(a):
    b = np.empty(max(1024, a.shape[0] * 2), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _add_order(orders, n, t, s, i, qty, order_type, reason):
    k = n[_O]
    orders[k]["id"] = k
    orders[k]["bar"] = t
    orders[k]["sleeve"] = s
    orders[k]["col"] = i
    orders[k]["qty"] = qty
    orders[k]["order_type"] = order_type
    orders[k]["reason"] = reason
    orders[k]["status"] = STATUS_UNFILLED
    n[_O] = k + 1
    return k


@njit(cache=True)
def _close_trade(trades, n, ts, s, i, t, reason):
    k = n[_T]
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
    trades[k]["pnl"] = ts.gross[s, i] - ts.fees[s, i] + ts.funding[s, i]
    trades[k]["exit_reason"] = reason
    n[_T] = k + 1


@njit(cache=True)
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


@njit(cache=True)
def _fill(fills, trades, n, ts, cash, pos, t, s, i, qty, price, fee_rate, price_type, reason, order_id):
    """Execute ``qty`` at ``price`` (slippage included) and update cash, position, trade state, records."""
    fee = abs(qty) * price * fee_rate
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
            _close_trade(trades, n, ts, s, i, t, reason)
            if p1 != 0.0:
                _open_trade(ts, s, i, t, 1 if p1 > 0 else -1, abs(p1), price, fee * abs(p1) / abs(qty))


@njit(cache=True)
def _run_bars_nb(t_start, t_end, open_, high, low, close, funding, kind, taker_fee, slippage, fill_close,
                 trend_sleeve, trend_cols, t_flags, t_atr, trend_params, ext_sleeve, ext_qty, ts,
                 cash, pos, pend_qty, pend_id, pend_reason, pend_dist, stop, extreme,
                 sleeve_equity, fund_bars, orders, fills, pays, trades, n):
    """Bars ``t_start .. t_end-1`` of the loop described in the module docstring (state arrays mutated)."""
    n_sleeves, n_cols = pos.shape
    pending = False  # any market order waiting for its fill (most bars have none)
    for s in range(n_sleeves):
        for i in range(n_cols):
            pending = pending or pend_qty[s, i] != 0.0
    fb = n[_FB]
    maybe_flat = True
    t = t_start
    while t < t_end:
        # 0. fast path: with nothing held and nothing pending, a bar changes nothing but the equity record
        #    (no fill, funding, stop or mark applies to an empty book) until an engine wants to enter
        flat = not pending and maybe_flat
        if flat:
            for s in range(n_sleeves):
                for i in range(n_cols):
                    if pos[s, i] != 0.0:
                        flat = maybe_flat = False  # positions change only on fills: stop scanning till one
        while flat and t < t_end:
            if trend_sleeve >= 0:
                for k in range(trend_cols.shape[0]):
                    if t_flags[t, trend_cols[k]] & _ENTRY:
                        flat = False
            if ext_sleeve >= 0:
                for i in range(n_cols):
                    if ext_qty[t, i] != 0.0:
                        flat = False
            if flat:
                for s in range(n_sleeves):
                    sleeve_equity[t, s] = cash[s]
                t += 1
        if t == t_end:
            break

        # 1. market orders fill at the open
        if pending and not fill_close:
            pending = False
            maybe_flat = True
            for s in range(n_sleeves):
                for i in range(n_cols):
                    q = pend_qty[s, i]
                    if q != 0.0:
                        px = open_[t, i] * (1.0 + slippage if q > 0 else 1.0 - slippage)
                        was_flat = pos[s, i] == 0.0
                        _fill(fills, trades, n, ts, cash, pos, t, s, i, q, px, taker_fee[i], PRICE_OPEN,
                              pend_reason[s, i], pend_id[s, i])
                        orders[pend_id[s, i]]["status"] = STATUS_FILLED
                        _arm_stop(s, i, was_flat, q, px, pos, pend_dist, stop, extreme)
                        pend_qty[s, i] = 0.0

        # 2. funding on the position held at the settlement (the bar's open); fund_bars lists the bars
        #    with any settlement, so the other bars cost one comparison
        while fb < fund_bars.shape[0] and fund_bars[fb] < t:
            fb += 1  # settlements skipped by the fast path found an empty book
        if fb < fund_bars.shape[0] and fund_bars[fb] == t:
            fb += 1
            for i in range(n_cols):
                rate = funding[t, i]
                if rate == 0.0:
                    continue
                for s in range(n_sleeves):
                    q = pos[s, i]
                    if q != 0.0:
                        amount = -q * open_[t, i] * rate
                        cash[s] += amount
                        ts.funding[s, i] += amount
                        k = n[_P]
                        pays[k]["bar"] = t
                        pays[k]["sleeve"] = s
                        pays[k]["col"] = i
                        pays[k]["qty"] = q
                        pays[k]["price"] = open_[t, i]
                        pays[k]["rate"] = rate
                        pays[k]["amount"] = amount
                        n[_P] = k + 1

        # 3. resting stops trigger on the bar's extreme
        for s in range(n_sleeves):
            for i in range(n_cols):
                q = pos[s, i]
                level = stop[s, i]
                if q == 0.0 or not np.isfinite(level):
                    continue
                hit = low[t, i] <= level if q > 0 else high[t, i] >= level
                if not hit:
                    continue
                ref = min(open_[t, i], level) if q > 0 else max(open_[t, i], level)
                px = ref * (1.0 - slippage if q > 0 else 1.0 + slippage)
                oid = _add_order(orders, n, t, s, i, -q, ORDER_STOP, REASON_TRAILING_STOP)
                _fill(fills, trades, n, ts, cash, pos, t, s, i, -q, px, taker_fee[i], PRICE_STOP,
                      REASON_TRAILING_STOP, oid)
                orders[oid]["status"] = STATUS_FILLED
                stop[s, i] = np.nan
                maybe_flat = True
                if pend_qty[s, i] != 0.0:
                    orders[pend_id[s, i]]["status"] = STATUS_CANCELLED
                    pend_qty[s, i] = 0.0

        # 4. market orders fill at the close (fill_close mode). Same body as step 1 on purpose: factored into a
        #    helper taking the state arrays, Numba keeps their reference counting and the loop slows by a third.
        if pending and fill_close:
            pending = False
            maybe_flat = True
            for s in range(n_sleeves):
                for i in range(n_cols):
                    q = pend_qty[s, i]
                    if q != 0.0:
                        px = close[t, i] * (1.0 + slippage if q > 0 else 1.0 - slippage)
                        was_flat = pos[s, i] == 0.0
                        _fill(fills, trades, n, ts, cash, pos, t, s, i, q, px, taker_fee[i], PRICE_CLOSE,
                              pend_reason[s, i], pend_id[s, i])
                        orders[pend_id[s, i]]["status"] = STATUS_FILLED
                        _arm_stop(s, i, was_flat, q, px, pos, pend_dist, stop, extreme)
                        pend_qty[s, i] = 0.0

        # 5. mark to market (cash and positions per bar are rebuilt from the records by the result)
        for s in range(n_sleeves):
            eq = cash[s]
            for i in range(n_cols):
                if pos[s, i] != 0.0:
                    eq += pos[s, i] * close[t, i]
            sleeve_equity[t, s] = eq

        # 6. decisions on the close of t
        if trend_sleeve >= 0:
            s = trend_sleeve
            eq = sleeve_equity[t, s]
            gross = -1.0  # the sleeve's gross notional, computed only when an entry is possible
            for k in range(trend_cols.shape[0]):
                i = trend_cols[k]
                flags = t_flags[t, i]
                if pos[s, i] == 0.0 and not flags & _ENTRY:
                    continue  # flat and no entry condition: the step would change nothing
                if gross < 0.0 and pos[s, i] == 0.0:
                    gross = 0.0
                    for j in range(n_cols):
                        gross += abs(pos[s, j]) * close[t, j]
                hi, lo = high[t, i], low[t, i]
                if fill_close and ts.entry_bar[s, i] == t:
                    hi = lo = close[t, i]  # entered at this close: the bar's extremes came before the entry
                st, ex, q, reason, dist = trend_step_nb(
                    pos[s, i], stop[s, i], extreme[s, i], close[t, i], hi, lo, t_atr[t, i],
                    flags, kind[i] == 1, eq, gross, trend_params)
                stop[s, i] = st
                extreme[s, i] = ex
                if q != 0.0:
                    pending = True
                    pend_id[s, i] = _add_order(orders, n, t, s, i, q, ORDER_MARKET, reason)
                    pend_qty[s, i] = q
                    pend_reason[s, i] = reason
                    pend_dist[s, i] = dist
                    if reason <= REASON_ENTRY_SHORT:  # an entry adds to the gross notional
                        gross += abs(q) * close[t, i]
        if ext_sleeve >= 0:
            s = ext_sleeve
            for i in range(n_cols):
                q = ext_qty[t, i]
                if q != 0.0 and np.isfinite(q):
                    pending = True
                    pend_id[s, i] = _add_order(orders, n, t, s, i, q, ORDER_MARKET, REASON_EXTERNAL)
                    pend_qty[s, i] = q
                    pend_reason[s, i] = REASON_EXTERNAL
                    pend_dist[s, i] = np.nan
        t += 1
    n[_FB] = fb


@njit(cache=True)
def simulate_nb(open_, high, low, close, funding, kind, taker_fee, slippage, fill_close, init_cash,
                trend_sleeve, trend_cols, trend_sig, trend_params, ext_sleeve, ext_qty, ts, sleeve_equity,
                orders, fills, pays, trades):
    """Run the bar loop. ``ts`` is the per-(sleeve, instrument) trade state (see `TradeState`);
    ``sleeve_equity`` (bars x sleeves) receives each sleeve's equity at each close; ``orders``, ``fills``,
    ``pays`` and ``trades`` are record buffers (see `records.new_record_buffers`), grown here when full.
    Outputs are allocated by the caller because numpy advises huge pages for big arrays: Numba's allocator
    does not, and the page faults of its 4 KiB pages cost more than the records' arithmetic.

    Returns ``(sleeve_equity (T, S), orders, fills, funding_payments, trades)``
    where open trades at the end are included with ``exit_bar = -1`` and marked at the last close.
    """
    n_bars, n_cols = close.shape
    n_sleeves = init_cash.shape[0]
    cash = init_cash.copy()
    pos = np.zeros((n_sleeves, n_cols))
    pend_qty = np.zeros((n_sleeves, n_cols))
    pend_id = np.full((n_sleeves, n_cols), -1, dtype=np.int64)
    pend_reason = np.zeros((n_sleeves, n_cols), dtype=np.int8)
    pend_dist = np.full((n_sleeves, n_cols), np.nan)
    stop = np.full((n_sleeves, n_cols), np.nan)
    extreme = np.full((n_sleeves, n_cols), np.nan)
    t_flags, t_atr = trend_sig  # unpacked once: tuple access in the loop costs refcounts

    fund_bars = np.flatnonzero((funding != 0.0).sum(axis=1))
    # Records grow between chunks of bars, never inside the bar loop (reassigning an array there would
    # cost reference counting on every bar). A bar writes at most 3 records per sleeve and instrument.
    chunk = CHUNK_BARS
    room = 3 * n_sleeves * n_cols * chunk
    n = np.zeros(5, dtype=np.int64)

    for t0 in range(0, n_bars, chunk):
        while n[_O] + room > orders.shape[0]:
            orders = _grow(orders)
        while n[_F] + room > fills.shape[0]:
            fills = _grow(fills)
        while n[_P] + room > pays.shape[0]:
            pays = _grow(pays)
        while n[_T] + room > trades.shape[0]:
            trades = _grow(trades)
        _run_bars_nb(t0, min(t0 + chunk, n_bars), open_, high, low, close, funding, kind, taker_fee, slippage,
                     fill_close, trend_sleeve, trend_cols, t_flags, t_atr, trend_params,
                     ext_sleeve, ext_qty, ts, cash, pos, pend_qty, pend_id, pend_reason, pend_dist, stop, extreme,
                     sleeve_equity, fund_bars, orders, fills, pays, trades, n)


    # open trades at the end, marked at the last close
    last = n_bars - 1
    for s in range(n_sleeves):
        for i in range(n_cols):
            q = pos[s, i]
            if q != 0.0:
                ts.gross[s, i] += (close[last, i] - ts.avg_price[s, i]) * abs(q) * ts.direction[s, i]
                if n[_T] >= trades.shape[0]:
                    trades = _grow(trades)
                _close_trade(trades, n, ts, s, i, -1, -1)
    return sleeve_equity, orders[: n[_O]], fills[: n[_F]], pays[: n[_P]], trades[: n[_T]]


@njit(cache=True)
def _arm_stop(s, i, was_flat, q, px, pos, pend_dist, stop, extreme):
    """After an entry fill, place the protective stop ``dist`` away from the fill price."""
    if was_flat and np.isfinite(pend_dist[s, i]):
        stop[s, i] = px - pend_dist[s, i] if q > 0 else px + pend_dist[s, i]
        extreme[s, i] = px
    elif pos[s, i] == 0.0:
        stop[s, i] = np.nan
        extreme[s, i] = np.nan
