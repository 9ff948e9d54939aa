"""Inputs of the bar loop, grouped: plain arrays and scalars in namedtuples (Numba passes them as structs)."""
from collections import namedtuple

# fees per instrument (arrays), slippage, fill mode, perp margin, the smallest order worth sending
Costs = namedtuple("Costs", ["taker", "maker", "slippage", "fill_close", "mmr", "liq_fee", "min_value"])
# sleeve index of each engine (-1: not running), target weights and perp leverage per sleeve
Sleeves = namedtuple("Sleeves", ["core", "trend", "funding", "tactical", "external", "weights", "leverage"])
TrendIn = namedtuple("TrendIn", ["cols", "flags", "atr", "confidence", "params"])
CoreIn = namedtuple("CoreIn", ["cols", "weights", "threshold", "accumulate", "limit", "stake_col", "stake_rate"])
FundingIn = namedtuple("FundingIn", ["spot", "perp", "flags", "max_hold_ns", "exit_premium", "leverage",
                                     "compound", "buffer"])
TacticalIn = namedtuple("TacticalIn", ["cols", "weights", "drawdown", "fear_greed", "deep", "levels",
                                       "fractions", "fg_below", "profit_target", "time_ns", "rearm", "all_in"])
RiskIn = namedtuple("RiskIn", ["breaker", "size_l1", "size_l2", "stop_widen", "max_positions", "min_confidence",
                               "kelly_fraction", "kelly_min_trades", "max_position_pct", "kelly_shadow"])
OrchIn = namedtuple("OrchIn", ["threshold", "dca_amount", "rotation", "lookback_days", "max_tilt"])

# bits of the per-bar calendar array
CAL_DAY = 1  # first bar of a new UTC day
CAL_CORE = 2  # first bar of CORE-HODL's rebalancing period
CAL_ORCH = 4  # first bar of the orchestrator's rebalancing period
CAL_DCA = 8  # the monthly contribution is paid on this bar
CAL_WARMUP = 16  # before `simulate`'s ``trade_from``: indicators warm up, no engine decides, nothing is paid in
