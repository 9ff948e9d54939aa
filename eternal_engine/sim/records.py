"""Record dtypes written by the simulator and the codes stored in them."""
from collections import namedtuple

import numpy as np
from numba import njit

# Why an order was created.
REASON_ENTRY_LONG = 0
REASON_ENTRY_SHORT = 1
REASON_EXIT_SIGNAL = 2
REASON_TRAILING_STOP = 3
REASON_EXTERNAL = 4
REASON_REBALANCE = 5  # CORE-HODL back to its weights (drift, calendar, or cash released to other sleeves)
REASON_ACCUMULATE = 6  # CORE-HODL invests idle cash (DCA, transfers)
REASON_FUNDING_ENTRY = 7
REASON_FUNDING_EXIT = 8
REASON_TACTICAL_DEPLOY = 9
REASON_TACTICAL_EXIT = 10
REASON_BREAKER = 11  # L3 closes directional positions, L4 everything
REASON_LIQUIDATION = 12
REASON_NAMES = (
    "entry_long", "entry_short", "exit_signal", "trailing_stop", "external", "rebalance", "accumulate",
    "funding_entry", "funding_exit", "tactical_deploy", "tactical_exit", "breaker", "liquidation",
)

# How an order executes.
ORDER_MARKET = 0
ORDER_STOP = 1
ORDER_LIMIT = 2  # post-only at the decision close: fills on the next bar if its range touches the price
ORDER_LIQUIDATION = 3
ORDER_TYPE_NAMES = ("market", "stop", "limit", "liquidation")

# Order status at the end of the run.
STATUS_FILLED = 0
STATUS_UNFILLED = 1  # decided on the last bar: no later bar to fill it
STATUS_CANCELLED = 2  # a stop or liquidation closed the position before the order's fill
STATUS_EXPIRED = 3  # a limit order the next bar did not touch (the engine decides again on that bar's close)
STATUS_REJECTED = 4  # a spot buy with no cash left to pay for it
STATUS_NAMES = ("filled", "unfilled", "cancelled", "expired", "rejected")

# The price a fill took.
PRICE_OPEN = 0
PRICE_CLOSE = 1
PRICE_STOP = 2
PRICE_LIMIT = 3
PRICE_LIQUIDATION = 4
PRICE_TYPE_NAMES = ("open", "close", "stop", "limit", "liquidation")

# Portfolio events (``event_dt.kind``).
EV_BREAKER_UP = 1
EV_BREAKER_DOWN = 2
EV_HALT = 3  # L4: everything liquidated, trading halted
EV_RESET = 4  # the L4 reset rule fired
EV_DAILY_LIMIT = 5
EV_WEEKLY_LIMIT = 6
EV_LIQUIDATION = 7  # amount: insurance-fund cover of a negative sleeve balance; value: liquidation fee
EV_CORE_REBALANCE = 8
EV_SLEEVE_REBALANCE = 9  # the orchestrator moved capital between sleeves
EV_CONTRIBUTION = 10  # DCA cash into a sleeve
EV_TRANSFER = 11  # cash from ``sleeve`` to ``other``
EV_STAKING = 12  # staking yield credited to CORE-HODL
EVENT_NAMES = (
    "", "breaker_up", "breaker_down", "halt", "reset", "daily_loss_limit", "weekly_loss_limit", "liquidation",
    "core_rebalance", "sleeve_rebalance", "contribution", "transfer", "staking",
)

order_dt = np.dtype(
    [
        ("id", np.int64),
        ("bar", np.int64),  # bar whose close made the decision (stop orders: bar that triggered them)
        ("sleeve", np.int32),
        ("col", np.int32),
        ("qty", np.float64),  # signed: > 0 buys
        ("limit", np.float64),  # limit price of ORDER_LIMIT orders, NaN otherwise
        ("order_type", np.int8),
        ("reason", np.int8),
        ("status", np.int8),
    ],
    align=True,
)

fill_dt = np.dtype(
    [
        ("order_id", np.int64),
        ("bar", np.int64),  # bar in which the fill happened
        ("sleeve", np.int32),
        ("col", np.int32),
        ("qty", np.float64),  # signed
        ("price", np.float64),  # including slippage
        ("fee", np.float64),  # in quote currency, >= 0
        ("price_type", np.int8),
        ("reason", np.int8),
    ],
    align=True,
)

funding_dt = np.dtype(
    [
        ("bar", np.int64),
        ("sleeve", np.int32),
        ("col", np.int32),
        ("qty", np.float64),  # position at settlement
        ("price", np.float64),  # settlement price (the bar's open)
        ("rate", np.float64),
        ("amount", np.float64),  # received (> 0) or paid (< 0): -qty * price * rate
    ],
    align=True,
)

event_dt = np.dtype(
    [
        ("bar", np.int64),
        ("kind", np.int8),  # EV_*
        ("sleeve", np.int32),  # -1 for portfolio-wide events
        ("other", np.int32),  # receiving sleeve of a transfer, breaker level, or -1
        ("amount", np.float64),  # cash moved (contributions, transfers, staking), or as documented per kind
        ("value", np.float64),  # drawdown for breaker events; fee for liquidations
    ],
    align=True,
)

trade_dt = np.dtype(
    [
        ("sleeve", np.int32),
        ("col", np.int32),
        ("direction", np.int8),  # +1 long, -1 short
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),  # -1 while still open at the end
        ("qty", np.float64),  # largest absolute size held
        ("entry_price", np.float64),  # average
        ("exit_price", np.float64),  # average over closing fills (NaN while open)
        ("gross_pnl", np.float64),  # price P&L (open trades: marked at the last close)
        ("fees", np.float64),
        ("funding", np.float64),  # funding received (> 0) or paid (< 0)
        ("pnl", np.float64),  # gross_pnl - fees + funding
        ("exit_reason", np.int8),  # REASON_*; -1 while open
    ],
    align=True,
)


TradeState = namedtuple(
    "TradeState",
    ["direction", "entry_bar", "max_qty", "avg_price", "exit_qty", "exit_value", "gross", "fees", "funding"],
)


def new_trade_state(n_sleeves: int, n_cols: int) -> TradeState:
    """Per (sleeve, instrument) state of the open trade, used by the simulator's fill accounting."""
    shape = (n_sleeves, n_cols)
    return TradeState(
        np.zeros(shape, np.int8), np.full(shape, -1, np.int64),
        *(np.zeros(shape) for _ in range(7)),
    )


CHUNK_BARS = 1024  # the bar loop checks record capacity between chunks of this many bars


@njit(cache=True)
def chunk_room(n_sleeves, n_cols):
    """Records one chunk of bars can write at most (a few per sleeve and instrument, and per sleeve pair)."""
    return (4 * n_sleeves * n_cols + 2 * n_sleeves * n_sleeves + 16) * CHUNK_BARS


def record_capacity(n_bars: int, n_sleeves: int, n_cols: int) -> int:
    """Initial length of each record buffer but the funding payments': the bar loop's room for one chunk plus
    one record per 2 bars, so a run that trades normally never grows them."""
    return int(chunk_room(n_sleeves, n_cols)) + n_bars // 2


@njit(cache=True)
def payment_capacity(funding, n_sleeves):
    """Length of the funding-payment buffer that no run on ``funding`` (bars x instruments) outgrows: the bar
    loop's room for one chunk plus one payment per sleeve for each rate that settles (a perp held through
    every settlement pays on all of them, far more than one record per 2 bars; growing the buffer copies it)."""
    settling = 0
    for t in range(funding.shape[0]):
        for i in range(funding.shape[1]):
            settling += funding[t, i] != 0.0
    return chunk_room(n_sleeves, funding.shape[1]) + settling * n_sleeves


def new_record_buffers(n_bars: int, n_sleeves: int, n_cols: int, funding=None):
    """Empty (orders, fills, funding payments, trades, events) record arrays for the simulator; ``funding``
    (bars x instruments, the market's rates) sizes the payments' buffer (`payment_capacity`).

    Only the pages written to cost memory, and numpy backs big arrays with huge pages, so generous buffers
    are cheap while growing inside Numba is not.
    """
    cap = record_capacity(n_bars, n_sleeves, n_cols)
    # never shorter than the others: the bar loop runs as many bars per call as the shortest buffer surely holds
    pay_cap = cap if funding is None else max(cap, int(payment_capacity(funding, n_sleeves)))
    return tuple(np.empty(pay_cap if dt is funding_dt else cap, dtype=dt)
                 for dt in (order_dt, fill_dt, funding_dt, trade_dt, event_dt))
