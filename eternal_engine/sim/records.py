"""Record dtypes written by the simulator and the codes stored in them."""
from collections import namedtuple

import numpy as np

# Why an order was created.
REASON_ENTRY_LONG = 0
REASON_ENTRY_SHORT = 1
REASON_EXIT_SIGNAL = 2
REASON_TRAILING_STOP = 3
REASON_EXTERNAL = 4
REASON_NAMES = ("entry_long", "entry_short", "exit_signal", "trailing_stop", "external")

# How an order executes.
ORDER_MARKET = 0
ORDER_STOP = 1
ORDER_TYPE_NAMES = ("market", "stop")

# Order status at the end of the run.
STATUS_FILLED = 0
STATUS_UNFILLED = 1  # decided on the last bar: no later bar to fill it
STATUS_CANCELLED = 2  # a stop closed the position before the order's fill (next_close mode)
STATUS_NAMES = ("filled", "unfilled", "cancelled")

# The price a fill took.
PRICE_OPEN = 0
PRICE_CLOSE = 1
PRICE_STOP = 2
PRICE_TYPE_NAMES = ("open", "close", "stop")

order_dt = np.dtype(
    [
        ("id", np.int64),
        ("bar", np.int64),  # bar whose close made the decision (stop orders: bar that triggered them)
        ("sleeve", np.int32),
        ("col", np.int32),
        ("qty", np.float64),  # signed: > 0 buys
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


def new_record_buffers(n_bars: int, n_sleeves: int, n_cols: int):
    """Empty (orders, fills, funding payments, trades) record arrays for the simulator.

    Room for one chunk of the busiest possible bars (3 records per sleeve and instrument) plus one record
    per 2 bars; the loop grows them when a run trades more. Only the pages written to cost memory, and numpy
    backs big arrays with huge pages, so generous buffers are cheap while growing inside Numba is not.
    """
    cap = 3 * n_sleeves * n_cols * CHUNK_BARS + n_bars // 2
    return tuple(np.empty(cap, dtype=dt) for dt in (order_dt, fill_dt, funding_dt, trade_dt))
