"""Build the bar loop's inputs (`sim.inputs`) from a MarketData and a Config: columns, signals, calendars."""
from __future__ import annotations

import numpy as np
import pandas as pd

from eternal_engine._hints import did_you_mean
from eternal_engine.errors import ConfigError
from eternal_engine.sim.inputs import (
    CoreIn, Costs, FundingIn, OrchIn, RiskIn, Sleeves, TacticalIn, TrendIn,
)

NS_DAY = 86_400_000_000_000


def column(market, symbol: str, key: str) -> int:
    if symbol not in market.symbols:
        raise ConfigError(f"{key} needs {symbol!r}, which the data does not have{did_you_mean(symbol, market.symbols)};"
                          f" available: {list(market.symbols)}")
    return market.symbols.index(symbol)


def spot_columns(market, underlyings, key: str) -> np.ndarray:
    return np.array([column(market, f"{u}-SPOT", key) for u in underlyings], dtype=np.int64)


def calendar(index: pd.DatetimeIndex, config, engines) -> np.ndarray:
    """Per-bar bits (`sim.inputs.CAL_*`): new UTC day, CORE-HODL's and the orchestrator's calendar rebalances,
    DCA payment days (the first bar on or after ``dca_day`` of each month; never the first bar, whose money is
    the initial capital)."""
    from eternal_engine.sim.calendar_nb import calendar_nb

    code = {"none": 0, "monthly": 1, "quarterly": 2, "yearly": 3}
    core = code[config.core_hodl.rebalance_calendar] if "core_hodl" in engines else 0
    orch = code[config.orchestrator.rebalance_calendar] if len(engines) > 1 else 0
    p = config.portfolio
    dca = p.dca_day if p.dca_amount > 0 and engines else 0
    ts = index.as_unit("ns").asi8
    return calendar_nb(ts, core, orch, dca, np.empty(len(ts), dtype=np.uint8))


def warm_up(cal: np.ndarray, first: int) -> np.ndarray:
    """``cal`` with the bars before ``first`` marked `CAL_WARMUP` and their payment and rebalancing bits cleared;
    no contribution on bar ``first`` either (the first bar's money is the initial capital, as in any run)."""
    from eternal_engine.sim.inputs import CAL_CORE, CAL_DCA, CAL_ORCH, CAL_WARMUP

    cal = cal.copy()
    cal[:first] &= np.uint8(~(CAL_DCA | CAL_CORE | CAL_ORCH) & 0xFF)
    cal[first] &= np.uint8(~CAL_DCA & 0xFF)
    cal[:first] |= np.uint8(CAL_WARMUP)
    return cal


def costs(market, config) -> Costs:
    a, ex = market.arrays, config.execution
    perp = a.kind == 1
    return Costs(
        np.where(perp, ex.perp_taker_fee, ex.spot_taker_fee).astype(np.float64),
        np.where(perp, ex.perp_maker_fee, ex.spot_maker_fee).astype(np.float64),
        float(ex.slippage), ex.fill == "next_close", float(config.perp.maintenance_margin_rate),
        float(config.perp.liquidation_fee), float(config.core_hodl.min_order_value),
    )


def sleeves(names, config) -> Sleeves:
    idx = {e: (names.index(e) if e in names else -1) for e in ("core_hodl", "trend", "funding", "tactical", "external")}
    w = np.array([config.portfolio.allocation.get(s, 0.0) if s != "external" else 1.0 for s in names])
    lev = np.array([config.trend.max_leverage if s == "trend" else config.funding.perp_leverage if s == "funding"
                    else 1.0 for s in names])
    return Sleeves(idx["core_hodl"], idx["trend"], idx["funding"], idx["tactical"], idx["external"], w / w.sum(), lev)


def trend_inputs(market, config, on: bool) -> TrendIn:
    from eternal_engine.engines import trend as trend_engine

    m = market.arrays.close.shape[1]
    if not on:
        return TrendIn(np.zeros(0, np.int64), np.zeros((0, m), np.uint8), np.zeros((0, m)),
                       np.zeros((0, m), np.float32), trend_engine.params(config.trend))
    sig = trend_engine.prepare(market, config.trend)
    return TrendIn(trend_engine.trend_columns(market, config.trend), sig.flags, sig.atr, sig.confidence,
                   trend_engine.params(config.trend))


def core_inputs(market, config, on: bool) -> CoreIn:
    c = config.core_hodl
    names = list(c.weights)
    cols = spot_columns(market, names, "core_hodl.weights") if on else np.zeros(0, np.int64)
    stake = -1
    if on and c.eth_staking and c.staking_apr >= c.minimum_yield_threshold and "ETH" in names:
        stake = int(cols[names.index("ETH")])
    return CoreIn(cols, np.array([c.weights[k] for k in names]) if on else np.zeros(0), float(c.rebalance_threshold),
                  float(c.accumulate_threshold), c.order_type == "limit_maker", stake, float(c.staking_apr) / 365.0)


def _flags(market, perp_cols, entry, periods, deep, deep_days):
    """Funding flags with the per-8h thresholds scaled to the bar: a bar longer than 8 hours holds the sum of
    several 8-hourly settlements (e.g. 3 in a daily bar), so it is compared with 3x the threshold. Funding is
    assumed 8-hourly (Bybit's default); symbols on 4h or 1h funding need their thresholds set accordingly."""
    from eternal_engine.engines.funding_nb import funding_flags_nb

    a = market.arrays
    bar_ns = int(np.median(np.diff(a.ts_ns))) if len(a.ts_ns) > 1 else 8 * 3_600_000_000_000
    scale = max(1.0, bar_ns / (8 * 3_600_000_000_000))
    rates = np.ascontiguousarray(a.funding[:, perp_cols])
    out = np.empty(rates.shape, dtype=np.uint8)
    return funding_flags_nb(a.ts_ns, rates, float(entry) * scale, int(periods), float(deep) * scale,
                            int(deep_days * NS_DAY), out)


def funding_inputs(market, config, on: bool) -> FundingIn:
    f = config.funding
    if not on:
        z = np.zeros(0, np.int64)
        return FundingIn(z, z, np.zeros((0, 0), np.uint8), 0, 0.0, 1.0, 1.0, 0.0)
    spot = spot_columns(market, f.underlyings, "funding.underlyings")
    perp = np.array([column(market, f"{u}-PERP", "funding.underlyings") for u in f.underlyings], dtype=np.int64)
    flags = _flags(market, perp, f.entry_rate_8h, f.consecutive_positive_periods, -np.inf, 1.0)
    return FundingIn(spot, perp, flags, int(f.max_hold_days * NS_DAY), float(f.exit_premium),
                     float(f.perp_leverage), float(f.compound_ratio), float(f.cash_buffer))


def tactical_inputs(market, config, on: bool, fear_greed=None) -> TacticalIn:
    from eternal_engine.engines.funding_nb import F_DEEP_NEGATIVE
    from eternal_engine.indicators.nb import drawdown_from_peak_1d_nb

    tc = config.tactical
    n = len(market.index)
    if not on:
        return TacticalIn(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.uint8),
                          np.zeros(1), np.zeros(1), 0.0, 1.0, 1, 0.5, True)
    names = list(tc.weights)
    cols = spot_columns(market, names, "tactical.weights")
    sig = column(market, tc.signal_symbol, "tactical.signal_symbol")
    dd = -drawdown_from_peak_1d_nb(market.arrays.close[:, sig].copy(), np.empty(n))
    if fear_greed is None:
        fg = np.full(n, np.nan)
    else:
        from eternal_engine.engines.tactical import align_asof

        fg = align_asof(fear_greed, market.index)
    if not tc.funding_symbol:  # "" turns the funding trigger off
        deep = np.zeros(n, dtype=np.uint8)
    elif tc.funding_symbol in market.symbols:
        perp = np.array([market.symbols.index(tc.funding_symbol)], dtype=np.int64)
        deep = _flags(market, perp, np.inf, 1, tc.funding_below_8h, tc.funding_days)[:, 0] & F_DEEP_NEGATIVE
    else:
        raise ConfigError(f"tactical.funding_symbol needs {tc.funding_symbol!r}, which the data does not have; "
                          f"available perps: {list(market.perps)} (set it to '' to turn the funding trigger off)")
    return TacticalIn(cols, np.array([tc.weights[k] for k in names]), dd, fg, np.ascontiguousarray(deep),
                      np.array(tc.drawdown_levels), np.array(tc.deploy_fractions), float(tc.fear_greed_below),
                      float(tc.profit_target), int(tc.time_limit_days * NS_DAY), float(tc.rearm_drawdown),
                      abs(sum(tc.deploy_fractions) - 1.0) < 1e-9)


def risk_inputs(config, on: bool) -> RiskIn:
    from eternal_engine.risk.breaker_nb import RESET_COOLDOWN, RESET_MANUAL, BreakerParams

    r = config.risk
    lv = r.breaker_levels if on else (2.0, 3.0, 4.0, 5.0)  # replays run ungoverned: a drawdown never reaches 2
    bp = BreakerParams(*(float(x) for x in lv), float(r.recovery_hysteresis),
                       RESET_COOLDOWN if r.l4_reset == "cooldown" else RESET_MANUAL, int(r.l4_cooldown_days * NS_DAY),
                       float(r.daily_loss_limit) if on else 2.0, float(r.weekly_loss_limit) if on else 2.0)
    return RiskIn(bp, float(r.size_multipliers[0]), float(r.size_multipliers[1]), float(r.l1_stop_widen),
                  int(r.max_concurrent_positions), float(r.min_confidence), float(r.kelly_fraction),
                  int(r.kelly_min_trades), float(r.max_position_pct), bool(r.kelly_shadow))


def orch_inputs(config, on: bool) -> OrchIn:
    o = config.orchestrator
    return OrchIn(float(o.rebalance_threshold), float(config.portfolio.dca_amount) if on else 0.0, bool(o.rotation),
                  int(o.rotation_lookback_days), float(o.rotation_max_tilt))


# The bar loop's inputs by group (the initial cash first: it checks the allocation), and the config keys each is
# built from: a sweep builds one variant per distinct value of those keys and shares it.
GROUPS = {
    "cash": ("portfolio.initial_capital", "portfolio.allocation"),
    "costs": ("execution", "perp", "core_hodl.min_order_value"),
    "sleeves": ("portfolio.allocation", "trend.max_leverage", "funding.perp_leverage"),
    "trend": ("trend",),
    "core": ("core_hodl",),
    "funding": ("funding",),
    "tactical": ("tactical",),
    "risk": ("risk",),
    "orch": ("orchestrator", "portfolio.dca_amount"),
    "calendar": ("core_hodl.rebalance_calendar", "orchestrator.rebalance_calendar", "portfolio.dca_day",
                 "portfolio.dca_amount"),
}


def group(name: str, market, config, names: tuple, fear_greed=None):
    """Input group ``name`` of `GROUPS` for sleeves ``names`` (engines, or ``("external",)`` for a replay)."""
    on = set(names)
    governed = "external" not in on
    engines = tuple(x for x in names if x != "external")
    if name == "costs":
        return costs(market, config)
    if name == "sleeves":
        return sleeves(list(names), config)
    if name == "trend":
        return trend_inputs(market, config, "trend" in on)
    if name == "core":
        return core_inputs(market, config, "core_hodl" in on)
    if name == "funding":
        return funding_inputs(market, config, "funding" in on)
    if name == "tactical":
        return tactical_inputs(market, config, "tactical" in on, fear_greed)
    if name == "risk":
        return risk_inputs(config, governed)
    if name == "orch":
        return orch_inputs(config, governed)
    if name == "calendar":
        return calendar(market.index, config, engines)
    if name == "cash":
        weights = np.array([config.portfolio.allocation.get(s, 0.0) for s in engines]) if engines else np.ones(1)
        if weights.sum() <= 0:
            raise ConfigError(f"portfolio.allocation gives no capital to {list(names)}: give them a positive weight")
        return config.portfolio.initial_capital * weights / weights.sum()
    raise KeyError(name)
