"""Indexes of the bar loop's scalar state and the engine-state codes it records (plain constants)."""

# scalar state carried across chunks of bars: float64 array ``g``, timestamps and ids in the int64 array ``gi``
(G_LEVEL, G_PEAK, G_DAY_ANCHOR, G_WEEK_ANCHOR, G_DAY_HALT, G_WEEK_HALT, G_NAV, G_EQ_PREV, G_CORE_DUE,
 G_TAC_STAGE, G_TAC_COST, G_TAC_BASE, G_TAC_ARMED, G_TAC_FILL0, G_TAC_RETURNING, G_CORE_STARTED) = range(16)
G_SIZE = 16
GI_HALTED, GI_DAY, GI_WEEK, GI_TAC_TS, GI_STAKE_TS, GI_SNAP, GI_CORE_OID, GI_CORE_NORD = range(8)
GI_SIZE = 8

# TREND states, in rising priority (the bar's state is the highest over its instruments)
TREND_SCANNING, TREND_IN_POSITION, TREND_TRAILING_STOP, TREND_SIGNAL_DETECTED, TREND_NO_TRADE = 0, 1, 2, 3, 4
TREND_ENTERING, TREND_EXITING, TREND_STOPPED_OUT = 5, 6, 7
TREND_STATE_NAMES = ("SCANNING", "IN_POSITION", "TRAILING_STOP", "SIGNAL_DETECTED", "NO_TRADE", "ENTERING",
                     "EXITING", "STOPPED_OUT")
HALTED = 255  # every engine's state while L4 halts trading
