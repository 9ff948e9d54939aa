"""CORE-HODL kernels (spec 3.1): BTC/ETH spot at target weights.

On a bar's close the engine either *rebalances* (an asset's share of the invested value drifted more than the
threshold, the calendar fallback is due, or the orchestrator asked the sleeve to release cash) to
``weight x (equity - owed)`` per asset, or *accumulates*: idle cash above ``accumulate_threshold`` of the sleeve
buys the assets furthest below target (never selling). Buys are sized net of the fee so cash stays >= 0.
"""
from numba import njit

CORE_INITIALIZING, CORE_ACCUMULATING, CORE_REBALANCING, CORE_EARN_OPTIMIZING = 0, 1, 2, 3
CORE_STATE_NAMES = ("INITIALIZING", "ACCUMULATING", "REBALANCING", "EARN_OPTIMIZING")


@njit(cache=True, inline="always")
def core_drifted_nb(values, weights, threshold):
    """True when an asset's share of the invested value is more than ``threshold`` from its weight."""
    total = values.sum()
    if not total > 0.0:
        return False
    for k in range(values.shape[0]):
        if abs(values[k] / total - weights[k]) > threshold:
            return True
    return False


@njit(cache=True)
def core_orders_nb(values, prices, weights, equity, owed, cash, fee, rebalance, min_value, out):
    """Quantities to trade per asset into ``out`` (0: no order); returns the number of orders.

    ``values``/``prices``: holdings value and price per asset at the close; ``owed``: cash the sleeve must
    release to other sleeves; ``cash``: its cash. ``rebalance`` False = accumulate only.
    """
    n = values.shape[0]
    invest = max(equity - owed, 0.0) * (1.0 - fee)
    count = 0
    if rebalance:
        for k in range(n):
            q = (weights[k] * invest - values[k]) / prices[k]
            out[k] = q if abs(q) * prices[k] >= min_value and q * prices[k] != 0.0 else 0.0
            count += out[k] != 0.0
        return count
    deficit = 0.0
    for k in range(n):
        deficit += max(weights[k] * invest - values[k], 0.0)
    budget = (cash - owed) / (1.0 + fee)
    scale = min(1.0, budget / deficit) if deficit > 0.0 else 0.0
    for k in range(n):
        q = max(weights[k] * invest - values[k], 0.0) * scale / prices[k]
        out[k] = q if q * prices[k] >= min_value else 0.0
        count += out[k] != 0.0
    return count
