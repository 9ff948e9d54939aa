"""Four-engine portfolio: hypothesis properties on random synthetic markets and random config perturbations.

Every property rebuilds what it checks from the raw records (fills, funding payments, events) or from an
independent oracle, so it checks the simulator rather than repeat it."""
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eternal_engine.config import ENGINES, Config
from eternal_engine.data.market import MarketData
from eternal_engine.sim import simulate
from eternal_engine.sim.records import (
    EV_BREAKER_DOWN, EV_BREAKER_UP, EV_CONTRIBUTION, EV_DAILY_LIMIT, EV_HALT, EV_LIQUIDATION, EV_RESET, EV_STAKING,
    EV_TRANSFER, EV_WEEKLY_LIMIT, ORDER_LIQUIDATION, ORDER_STOP, PRICE_CLOSE, PRICE_LIQUIDATION,
)

CAPITAL = 100_000.0
FEW = settings(max_examples=15)


@functools.lru_cache(maxsize=64)
def synth(seed: int, freq: str) -> MarketData:
    from eternal_engine.data import synthetic

    return synthetic(years=0.4 if freq == "8h" else 0.9, freq=freq, seed=seed)


@st.composite
def scenarios(draw, *, engines=None, levered=None, tight_breaker=None, reset=None, dca=None, rotation=None,
              must=()):
    """(market, config overrides, engines): a random synthetic market and a random perturbation of the config."""
    seed = draw(st.integers(0, 30))
    freq = draw(st.sampled_from(["8h", "1D"]))
    m = synth(seed, freq)
    if engines is None:
        engines = draw(st.one_of(st.just(ENGINES), st.sets(st.sampled_from(ENGINES), min_size=1).map(tuple)))
        engines = tuple(e for e in ENGINES if e in engines or e in must)
    levered = draw(st.booleans()) if levered is None else levered
    tight = draw(st.booleans()) if tight_breaker is None else tight_breaker
    lev = draw(st.sampled_from([5.0, 10.0])) if levered else draw(st.sampled_from([1.0, 2.0]))
    levels = draw(st.sampled_from([(0.03, 0.05, 0.07, 0.09), (0.05, 0.1, 0.15, 0.2)])) if tight else \
        draw(st.sampled_from([(0.1, 0.15, 0.2, 0.25), (0.3, 0.4, 0.5, 0.6)]))
    tac = draw(st.sampled_from([((0.1, 0.2), (0.5, 0.5)), ((0.5, 0.7), (0.5, 0.5)), ((0.15,), (0.6,))]))
    ov = {
        "portfolio.initial_capital": CAPITAL,
        "portfolio.dca_amount": draw(st.sampled_from([0.0, 1_000.0, 30_000.0])) if dca is None else dca,
        "portfolio.dca_day": draw(st.integers(1, 28)),
        "execution.fill": draw(st.sampled_from(["next_open", "next_close"])),
        "execution.slippage": draw(st.sampled_from([0.0, 0.0005, 0.002])),
        "execution.perp_taker_fee": draw(st.sampled_from([0.0, 0.00055])),
        "execution.spot_maker_fee": draw(st.sampled_from([0.0, 0.001])),
        "trend.symbols": list(draw(st.sampled_from([("BTC-PERP", "ETH-PERP"), ("BTC-PERP", "SOL-PERP", "ETH-SPOT")]))),
        "trend.sma_fast": 5,
        "trend.sma_slow": 20,
        "trend.adx_threshold": draw(st.sampled_from([10.0, 25.0])),
        "trend.max_leverage": lev,
        "trend.max_position": lev,
        "trend.risk_per_trade": 1.0 if levered else draw(st.sampled_from([0.01, 0.05])),
        "trend.atr_stop_mult": draw(st.sampled_from([3.0, 8.0])) if levered else draw(st.sampled_from([1.0, 3.0])),
        "risk.max_leverage": 10.0,
        "risk.max_position_pct": 10.0 if levered else draw(st.sampled_from([0.05, 0.5])),
        "risk.breaker_levels": list(levels),
        "risk.recovery_hysteresis": draw(st.sampled_from([0.0, 0.01])),
        "risk.l4_reset": draw(st.sampled_from(["manual", "cooldown"])) if reset is None else reset,
        "risk.l4_cooldown_days": draw(st.sampled_from([2.0, 20.0])),
        "risk.daily_loss_limit": draw(st.sampled_from([0.02, 0.5])),
        "risk.weekly_loss_limit": 0.6,
        "risk.min_confidence": draw(st.sampled_from([0.0, 0.25])),
        "risk.kelly_min_trades": draw(st.sampled_from([3, 20])),
        "perp.maintenance_margin_rate": draw(st.sampled_from([0.03, 0.08] if levered else [0.005, 0.05])),
        "orchestrator.rebalance_threshold": draw(st.sampled_from([0.02, 0.05, 0.3])),
        "orchestrator.rebalance_calendar": draw(st.sampled_from(["monthly", "quarterly", "none"])),
        "orchestrator.rotation": draw(st.booleans()) if rotation is None else rotation,
        "orchestrator.rotation_lookback_days": 10,
        "tactical.drawdown_levels": list(tac[0]),
        "tactical.deploy_fractions": list(tac[1]),
        "tactical.rearm_drawdown": 0.05,
        "tactical.profit_target": draw(st.sampled_from([0.1, 1.0])),
        "tactical.time_limit_days": draw(st.sampled_from([10.0, 365.0])),
        "funding.entry_rate_8h": draw(st.sampled_from([0.0001, 0.0003])),
        "funding.max_hold_days": draw(st.sampled_from([2.0, 14.0])),
        "funding.exit_premium": draw(st.sampled_from([0.003, 0.02])),
        "funding.compound_ratio": draw(st.sampled_from([0.0, 0.5, 1.0])),
        "funding.perp_leverage": draw(st.sampled_from([1.0, 2.0, 5.0])),
        "core_hodl.order_type": draw(st.sampled_from(["limit_maker", "market"])),
        "core_hodl.rebalance_threshold": draw(st.sampled_from([0.02, 0.1])),
        "core_hodl.rebalance_calendar": draw(st.sampled_from(["monthly", "quarterly", "none"])),
    }
    return m, ov, engines


def run(m, ov, engines, **more):
    return simulate(m, Config().with_overrides({**ov, **more}), engines=list(engines))


# ---------------------------------------------------------------- rebuilding the books from the records

def sleeve_books(r):
    """Per-sleeve cash (bars x sleeves) and positions (bars x sleeves x instruments) at each close, from the
    fill, funding and event records only."""
    n, k = r.market.arrays.close.shape
    ns = len(r.sleeves)
    flow = np.zeros((n, ns))
    dpos = np.zeros((n, ns, k))
    f, p, e = r.fill_records, r.funding_records, r.event_records
    np.add.at(flow, (f["bar"], f["sleeve"]), -f["qty"] * f["price"] - f["fee"])
    np.add.at(dpos, (f["bar"], f["sleeve"], f["col"]), f["qty"])
    np.add.at(flow, (p["bar"], p["sleeve"]), p["amount"])
    ext = e[np.isin(e["kind"], (EV_CONTRIBUTION, EV_STAKING, EV_LIQUIDATION))]
    np.add.at(flow, (ext["bar"], ext["sleeve"]), ext["amount"])
    tr = e[e["kind"] == EV_TRANSFER]
    np.add.at(flow, (tr["bar"], tr["sleeve"]), -tr["amount"])
    np.add.at(flow, (tr["bar"], tr["other"]), tr["amount"])
    return r.initial_cash + np.cumsum(flow, axis=0), np.cumsum(dpos, axis=0)


def per_sleeve(records, kind, n, ns):
    out = np.zeros((n, ns))
    e = records[records["kind"] == kind]
    np.add.at(out, (e["bar"], e["sleeve"]), e["amount"])
    return out


# ================================================================= accounting

@FEW
@given(scenarios())
def test_sleeve_equity_is_rebuilt_from_records_and_sums_to_portfolio_equity(sc):
    m, ov, engines = sc
    r = run(m, ov, engines)
    close = m.arrays.close
    cash, pos = sleeve_books(r)
    marked = cash + np.einsum("tsk,tk->ts", pos, close)
    se = r.sleeve_equity.to_numpy()
    np.testing.assert_allclose(se, marked, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(se.sum(axis=1), r.equity.to_numpy(), rtol=1e-12, atol=1e-6)
    # portfolio level: equity == cash + sum(positions x close), both rebuilt by the result
    total = r.cash.to_numpy() + (r.positions.to_numpy() * close).sum(axis=1)
    np.testing.assert_allclose(r.equity.to_numpy(), total, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(r.positions.to_numpy(), pos.sum(axis=1), atol=1e-9)
    # spot is never shorted; sleeves are isolated: a loss beyond a sleeve's margin is liquidated and covered by
    # the insurance fund, so no sleeve's equity ever goes negative (which would let the orchestrator top it up
    # from the others)
    spot = m.arrays.kind == 0
    assert (pos[:, :, spot] >= -1e-9).all()
    assert (se >= -1e-6).all()


@FEW
@given(scenarios())
def test_attribution_adds_up_per_sleeve(sc):
    m, ov, engines = sc
    r = run(m, ov, engines)
    a = r.attribution()
    assert np.abs(a["check"].to_numpy()).max() < 1e-6 * CAPITAL
    np.testing.assert_allclose(a.loc[list(r.sleeves), "end"].to_numpy(), r.sleeve_equity.iloc[-1].to_numpy())
    assert a.loc["portfolio", "contributions"] == pytest.approx(r.contributions.sum())
    assert a.loc["portfolio", "transfers_in"] == pytest.approx(-a.loc["portfolio", "transfers_out"])


# ================================================================= FUNDING

@FEW
@given(scenarios(engines=ENGINES))
def test_funding_pairs_stay_delta_neutral(sc):
    m, ov, engines = sc
    r = run(m, ov, engines)
    s = r.sleeves.index("funding")
    _, pos = sleeve_books(r)
    fpos = pos[:, s, :]
    syms = m.symbols
    for u in Config().with_overrides(ov).funding.underlyings:
        a, b = fpos[:, syms.index(f"{u}-SPOT")], fpos[:, syms.index(f"{u}-PERP")]
        both = (a != 0) & (b != 0)
        assert (a >= -1e-12).all() and (b <= 1e-12).all()  # spot long, perp short only
        # legs match, except when a price move before the fill cut the spot buy short: re-hedged on the next bar
        off = both & (np.abs(a + b) > 1e-9 * max(1.0, np.abs(a).max()))
        assert not (off[1:] & off[:-1]).any()
        assert off.mean() < 0.05
        # a leg is never held alone for longer than the bar it takes to close or re-hedge it
        alone = (a != 0) ^ (b != 0)
        assert not (alone[1:] & alone[:-1]).any()


# ================================================================= breaker

@FEW
@given(scenarios(tight_breaker=True, reset="manual"))
def test_no_fill_after_the_bar_following_a_manual_l4_halt(sc):
    m, ov, engines = sc
    r = run(m, ov, engines)
    ev = r.event_records
    halts = ev["bar"][ev["kind"] == EV_HALT]
    if len(halts) == 0:
        return
    h = int(halts[0])
    assert len(halts) == 1 and not (ev["kind"] == EV_RESET).any()
    f = r.fill_records
    assert (f["bar"] <= h + 1).all()
    assert (r.breaker_level.to_numpy()[h:] == 4).all()
    _, pos = sleeve_books(r)
    assert (np.abs(pos[h + 1:]) < 1e-9).all()  # everything was closed on the next bar
    o = r.order_records
    assert (o["bar"] <= h + 1).all()  # no engine decides while halted
    # on the bar after the halt only a stop or a liquidation may beat the closing orders (fills at the close)
    assert np.isin(o["order_type"][o["bar"] == h + 1], (ORDER_STOP, ORDER_LIQUIDATION)).all()


def breaker_oracle(r):
    """Breaker level, drawdown and loss-limit events per bar, recomputed from the time-weighted equity."""
    cfg = r.config.risk
    l1, l2, l3, l4 = cfg.breaker_levels
    hyst = cfg.recovery_hysteresis
    eq = r.equity.to_numpy()
    contrib = r.contributions.to_numpy()
    prev = np.r_[r.initial_cash.sum(), eq[:-1]]
    ts = r.market.arrays.ts_ns
    cooldown = int(cfg.l4_cooldown_days * 86_400e9)

    def crossed(dd):
        return int(dd >= l1) + int(dd >= l2) + int(dd >= l3) + int(dd >= l4)

    nav, peak, level, halted = 1.0, 1.0, 0, -1
    day = week = None
    day_anchor = week_anchor = np.nan
    day_halt = week_halt = False
    levels, dds, daily, weekly = [], [], [], []
    for t in range(len(eq)):
        nav_prev = nav
        nav = nav * (eq[t] - contrib[t]) / prev[t]
        if level >= 4:
            if cfg.l4_reset == "cooldown" and ts[t] - halted >= cooldown:
                level, peak, halted = 0, nav, -1
        else:
            peak = max(peak, nav)
            dd = (peak - nav) / peak
            up = crossed(dd)
            if up == 4:
                level, halted = 4, ts[t]
            elif up > level:
                level = up
            elif crossed(dd + hyst) < level:
                level = crossed(dd + hyst)
        levels.append(level)
        dds.append(1.0 - nav / peak)
        d, w = ts[t] // 86_400_000_000_000, (ts[t] // 86_400_000_000_000 + 3) // 7
        if d != day:
            day, day_anchor, day_halt = d, nav_prev, False
        if w != week:
            week, week_anchor, week_halt = w, nav_prev, False
        if not day_halt and day_anchor - nav >= day_anchor * cfg.daily_loss_limit:
            day_halt = True
            daily.append(t)
        if not week_halt and week_anchor - nav >= week_anchor * cfg.weekly_loss_limit:
            week_halt = True
            weekly.append(t)
    return np.array(levels), np.array(dds), daily, weekly


@FEW
@given(scenarios(tight_breaker=True))
def test_breaker_and_loss_limits_follow_the_time_weighted_drawdown(sc):
    # an independent oracle of the breaker ladder (hysteresis, halt, cooldown reset) and of the daily/weekly
    # limits, fed with the time-weighted NAV rebuilt from equity and contributions: contributions never count
    m, ov, engines = sc
    r = run(m, ov, engines)
    levels, dds, daily, weekly = breaker_oracle(r)
    np.testing.assert_array_equal(r.breaker_level.to_numpy(), levels)
    ev = r.event_records
    lv = ev[np.isin(ev["kind"], (EV_BREAKER_UP, EV_BREAKER_DOWN, EV_HALT))]
    np.testing.assert_allclose(lv["value"], dds[lv["bar"]], atol=1e-9)
    assert ev["bar"][ev["kind"] == EV_DAILY_LIMIT].tolist() == daily
    assert ev["bar"][ev["kind"] == EV_WEEKLY_LIMIT].tolist() == weekly


# ================================================================= liquidation

@FEW
@given(scenarios(levered=True, tight_breaker=False, must=("trend",)))
def test_liquidations_happen_exactly_when_equity_at_an_extreme_falls_below_maintenance(sc):
    m, ov, engines = sc
    r = run(m, ov, engines)
    a = m.arrays
    mmr = r.config.perp.maintenance_margin_rate
    perp = a.kind == 1
    cash, pos = sleeve_books(r)
    n, ns = cash.shape
    # the book a liquidation check sees: last close's book plus this bar's fills at the open, limits and stops
    # (not fills at the close, which come after the bar's path, nor the liquidation fills themselves)
    f, p = r.fill_records, r.funding_records
    early = (f["price_type"] != PRICE_CLOSE) & (f["price_type"] != PRICE_LIQUIDATION)
    flow = np.zeros((n, ns))
    dpos = np.zeros((n, ns, len(m.symbols)))
    fe = f[early]
    np.add.at(flow, (fe["bar"], fe["sleeve"]), -fe["qty"] * fe["price"] - fe["fee"])
    np.add.at(dpos, (fe["bar"], fe["sleeve"], fe["col"]), fe["qty"])
    np.add.at(flow, (p["bar"], p["sleeve"]), p["amount"])
    cash0 = np.vstack([r.initial_cash, cash[:-1]]) + flow
    pos0 = np.concatenate([np.zeros((1, ns, len(m.symbols))), pos[:-1]]) + dpos
    liq = {(int(b), int(s)) for b, s in zip(*[r.event_records[k][r.event_records["kind"] == EV_LIQUIDATION]
                                               for k in ("bar", "sleeve")])}
    for t in range(n):
        for s in range(ns):
            q = pos0[t, s]
            if not (q[perp] != 0).any():
                assert (t, s) not in liq
                continue
            worst = min(cash0[t, s] + q @ x - mmr * (np.abs(q[perp]) @ x[perp])
                        for x in (a.open[t], a.low[t], a.high[t]))
            scale = 1e-7 * (np.abs(q) @ a.high[t] + abs(cash0[t, s]))
            if (t, s) in liq:
                assert worst <= scale, (t, s, worst)
            else:
                assert worst >= -scale, (t, s, worst)


# ================================================================= look-ahead

@FEW
@given(scenarios(), st.floats(0.05, 0.95), st.integers(0, 2**31 - 1))
def test_changing_prices_after_a_bar_changes_nothing_up_to_it(sc, where, seed):
    m, ov, engines = sc
    a = m.arrays
    n = len(m.index)
    cut = int(20 + where * (n - 25))
    rng = np.random.default_rng(seed)
    # a different but valid future: every later bar's OHLC scaled by its own random walk factor, new funding
    walk = np.exp(np.cumsum(rng.normal(0, 0.05, (n - cut - 1, len(m.symbols))), axis=0))
    ohlc = [x.copy() for x in (a.open, a.high, a.low, a.close)]
    for x in ohlc:
        x[cut + 1:] *= walk
    fund = a.funding.copy()
    fund[cut + 1:, a.kind == 1] = rng.normal(0, 5e-4, (n - cut - 1, int((a.kind == 1).sum())))
    m2 = MarketData(m.index, m.symbols, *ohlc, a.volume, fund)
    r1, r2 = run(m, ov, engines), run(m2, ov, engines)
    upto = slice(0, cut + 1)
    np.testing.assert_array_equal(r1.sleeve_equity.to_numpy()[upto], r2.sleeve_equity.to_numpy()[upto])
    np.testing.assert_array_equal(r1.breaker_level.to_numpy()[upto], r2.breaker_level.to_numpy()[upto])
    np.testing.assert_array_equal(r1._states[upto], r2._states[upto])
    for name in ("fill_records", "event_records", "funding_records"):
        x, y = getattr(r1, name), getattr(r2, name)
        x, y = x[x["bar"] <= cut], y[y["bar"] <= cut]
        assert len(x) == len(y), name
        for field in x.dtype.names:
            np.testing.assert_array_equal(x[field], y[field], err_msg=f"{name}.{field}")
    x, y = r1.order_records, r2.order_records
    x, y = x[x["bar"] <= cut], y[y["bar"] <= cut]
    assert len(x) == len(y)
    for field in ("bar", "sleeve", "col", "qty", "limit", "order_type", "reason"):  # status depends on t + 1
        np.testing.assert_array_equal(x[field], y[field], err_msg=field)


# ================================================================= contributions

@FEW
@given(scenarios(dca=0.0), st.sampled_from([500.0, 10_000.0, 50_000.0]))
def test_a_contribution_changes_equity_but_not_the_returns_up_to_its_bar(sc, amount):
    m, ov, engines = sc
    r0 = run(m, ov, engines)
    r1 = run(m, ov, engines, **{"portfolio.dca_amount": amount})
    c = r1.contributions.to_numpy()
    assert c.sum() > 0 and (r0.contributions == 0).all()
    k = int(np.flatnonzero(c)[0])
    assert c[k] == pytest.approx(amount)
    e0, e1 = r0.equity.to_numpy(), r1.equity.to_numpy()
    np.testing.assert_array_equal(e1[:k], e0[:k])
    assert e1[k] - e0[k] == pytest.approx(amount, rel=1e-9)  # paid on the close, after the marking
    np.testing.assert_allclose(r1.returns.to_numpy()[: k + 1], r0.returns.to_numpy()[: k + 1], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(r1.breaker_level.to_numpy()[: k + 1], r0.breaker_level.to_numpy()[: k + 1])
    f0, f1 = r0.fill_records, r1.fill_records
    np.testing.assert_array_equal(f1[f1["bar"] <= k], f0[f0["bar"] <= k])


@FEW
@given(scenarios(rotation=False, dca=20_000.0))
def test_contributions_follow_the_calendar_and_fill_under_weight_sleeves_first(sc):
    m, ov, engines = sc
    r = run(m, ov, engines)
    cfg = r.config
    n, ns = len(m.index), len(r.sleeves)
    # the first bar on or after dca_day of every month, except the first bar (the initial capital)
    days = m.index.tz_convert("UTC")
    first = np.zeros(n, dtype=bool)
    paid = set()
    for t, d in enumerate(days):
        if d.day >= cfg.portfolio.dca_day and (d.year, d.month) not in paid:
            paid.add((d.year, d.month))
            first[t] = t > 0
    contrib = per_sleeve(r.event_records, EV_CONTRIBUTION, n, ns)
    np.testing.assert_array_equal(contrib.sum(axis=1) > 0, first)
    np.testing.assert_allclose(contrib.sum(axis=1)[first], cfg.portfolio.dca_amount)
    # the split: each sleeve gets amount x shortfall / total shortfall, shortfall against the targets of the
    # equity after the contribution, from the equity it had before it (no fills happen after the marking)
    w = np.array([cfg.portfolio.allocation[s] for s in r.sleeves])
    w = w / w.sum()
    ev = r.event_records
    tr = ev[ev["kind"] == EV_TRANSFER]
    net = np.zeros((n, ns))
    np.add.at(net, (tr["bar"], tr["sleeve"]), -tr["amount"])
    np.add.at(net, (tr["bar"], tr["other"]), tr["amount"])
    before = r.sleeve_equity.to_numpy() - contrib - net
    amount = cfg.portfolio.dca_amount
    for t in np.flatnonzero(first):
        need = np.maximum(w * (before[t].sum() + amount) - before[t], 0.0)
        np.testing.assert_allclose(contrib[t], amount * need / need.sum(), rtol=1e-9, atol=1e-6)
