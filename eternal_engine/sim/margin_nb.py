"""Perp margin and liquidation, per sleeve (the spec's subaccounts: one sleeve's loss never touches another's).

Initial margin is ``notional / leverage``; maintenance margin ``rate * notional`` of the sleeve's perps. Within a
bar the path is unknown, so the check evaluates two scenarios on the bar's extremes: every instrument at its
low, and every instrument at its high (prices of one underlying move together, so a hedged spot-long /
perp-short pair stays hedged in both). A sleeve whose equity falls below its maintenance margin in either
scenario is liquidated at the first point of the straight path from the open to that extreme where
``equity == maintenance``: every position of the sleeve is closed there (at the open if it gapped through),
paying the liquidation fee on the perp notional. Any negative balance left is covered by the insurance fund,
as on Bybit, and recorded.
"""
from numba import njit


@njit(cache=True, inline="always")
def sleeve_margin_nb(s, cash, pos, price, kind):
    """``(equity, perp_notional)`` of sleeve ``s`` valued at ``price`` (one price per instrument)."""
    eq = cash[s]
    notional = 0.0
    for i in range(pos.shape[1]):
        q = pos[s, i]
        if q != 0.0:
            eq += q * price[i]
            if kind[i] == 1:
                notional += abs(q) * price[i]
    return eq, notional


@njit(cache=True, inline="always")
def liquidation_point_nb(s, cash, pos, open_, extreme, kind, mmr):
    """Fraction ``lam`` in [0, 1] of the way from the open to ``extreme`` where equity first equals the
    maintenance margin, or -1 if it never falls below it on this path."""
    eq0, n0 = sleeve_margin_nb(s, cash, pos, open_, kind)
    eq1, n1 = sleeve_margin_nb(s, cash, pos, extreme, kind)
    a = eq0 - mmr * n0
    b = eq1 - mmr * n1
    if b >= 0.0 and a >= 0.0:
        return -1.0
    if a <= 0.0:
        return 0.0
    return a / (a - b)  # both sides are linear in the path fraction


@njit(cache=True, inline="always")
def available_cash_nb(s, cash, pos, close_row, kind, leverage):
    """Free cash of sleeve ``s``: equity minus spot holdings minus the perps' initial margin."""
    free = cash[s]
    for i in range(pos.shape[1]):
        q = pos[s, i]
        if q != 0.0 and kind[i] == 1:
            free += q * close_row[i] - abs(q) * close_row[i] / leverage
    return free
