"""Four-engine portfolio: hand-worked cases for CORE-HODL, FUNDING, TACTICAL, the breaker, loss limits, perp
liquidation, DCA and Kelly sizing. Every expected number is worked out from the rules in the comments."""
import numpy as np
import pandas as pd
import pytest

from eternal_engine.config import Config
from eternal_engine.data.market import MarketData
from eternal_engine.engines import trend as trend_engine
from eternal_engine.engines.trend_nb import TrendSignals, pack_signals
from eternal_engine.sim import simulate
from tests.helpers import UNGOVERNED


# ---------------------------------------------------------------- scripted markets


def market(cols, start="2024-01-01", freq="1D", funding=None, index=None):
    """``cols``: {symbol: bars}; a bar is a close (open = previous close, high/low = max/min of the two) or an
    explicit ``(open, high, low, close)`` tuple. ``funding``: {perp: rates per bar}."""
    syms = list(cols)
    n = len(cols[syms[0]])
    o, h, lo, c = (np.empty((n, len(syms))) for _ in range(4))
    for j, s in enumerate(syms):
        prev = None
        for t, v in enumerate(cols[s]):
            if isinstance(v, tuple):
                bar = v
            else:
                op = float(v) if prev is None else prev
                bar = (op, max(op, v), min(op, v), float(v))
            o[t, j], h[t, j], lo[t, j], c[t, j] = bar
            prev = bar[3]
    f = np.zeros((n, len(syms)))
    for s, rates in (funding or {}).items():
        f[:, syms.index(s)] = rates
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC") if index is None else index
    gap = None if index is None else pd.Timedelta("7D")
    return MarketData(idx, syms, o, h, lo, c, np.ones((n, len(syms))), f, freq=freq, max_gap=gap)


def cfg(**overrides):
    base = {**UNGOVERNED, "portfolio.initial_capital": 10_000.0, "execution.slippage": 0.0,
            "orchestrator.rebalance_threshold": 0.99, "orchestrator.rebalance_calendar": "none"}
    return Config().with_overrides({**base, **overrides})


def alloc(**w):
    return {"portfolio.allocation": {e: w.get(e, 0.0) for e in ("core_hodl", "trend", "funding", "tactical")}}


def fills(r, sleeve=None):
    f = r.orders
    return f if sleeve is None else f[f["sleeve"] == sleeve]


def events(r, kind):
    e = r.events
    return e[e["event"] == kind]


def bars_of(frame):
    return frame["bar"].tolist()


# ================================================================= CORE-HODL

def core_cfg(**extra):
    return cfg(**{"execution.spot_maker_fee": 0.002, "execution.spot_taker_fee": 0.004, **extra})


def test_core_initial_buy_is_post_only_limits_filled_on_touch_untouched_one_expires_and_is_replaced():
    m = market({
        # bar 0 decides at the closes 100 / 50; bar 1: BTC's range touches 100, ETH gaps up (low 51 > 50)
        "BTC-SPOT": [100.0, (100.0, 101.0, 99.0, 100.0), (100.0, 100.5, 99.5, 100.0), 100.0],
        "ETH-SPOT": [50.0, (52.0, 53.0, 51.0, 52.0), (52.0, 52.5, 51.8, 52.0), 52.0],
    })
    r = simulate(m, core_cfg(**{"portfolio.initial_capital": 9_000.0}), engines=["core_hodl"])
    log, f = r.order_log, r.orders
    lim = r.order_records["limit"]
    fee = 0.002  # maker: limit orders never pay the 0.004 taker fee
    # bar 0: 2/3 and 1/3 of 9,000 net of the fee, at the closes: 6,000*0.998/100 = 59.88 BTC, 3,000*0.998/50 ETH
    assert log["order_type"].tolist()[:2] == ["limit", "limit"]
    assert log["qty"].tolist()[:2] == pytest.approx([59.88, 59.88])
    assert lim[:2].tolist() == [100.0, 50.0]
    # bar 1: BTC filled at its limit with the maker fee; ETH's limit was never touched -> expired
    assert log["status"].tolist()[:2] == ["filled", "expired"]
    btc = f.iloc[0]
    assert (btc["symbol"], btc["bar"], btc["price"], btc["price_type"]) == ("BTC-SPOT", 1, 100.0, "limit")
    assert btc["fee"] == pytest.approx(59.88 * 100.0 * fee)
    # bar 1's close: cash 9,000 - 5,988 - 11.976 = 3,000.024, equity 8,988.024; all the value is BTC, so ETH
    # drifted 1/3 from its weight -> rebalance: ETH (8,988.024*0.998/3)/52; BTC's 5,980.03 - 5,988 < min order
    eq1 = 9_000.0 - 5_988.0 - 11.976 + 5_988.0
    q_eth = eq1 * (1 - fee) / 3 / 52.0
    assert log.index[2] == m.index[1] and log["symbol"].iloc[2] == "ETH-SPOT"
    assert log["qty"].iloc[2] == pytest.approx(q_eth, rel=1e-12)
    assert lim[2] == 52.0 and log["order_type"].iloc[2] == "limit"
    assert log["status"].iloc[2] == "filled"
    eth = f.iloc[1]
    assert (eth["bar"], eth["price"]) == (2, 52.0)  # filled at the limit, not at the bar's low 51.8
    assert eth["fee"] == pytest.approx(q_eth * 52.0 * fee)
    assert len(log) == 3  # weights reached: nothing more to do
    cash = 9_000.0 - 5_988.0 * (1 + fee) - q_eth * 52.0 * (1 + fee)
    assert r.cash.iloc[-1] == pytest.approx(cash + events(r, "staking")["amount"].sum())


def test_core_rebalances_only_when_drift_exceeds_ten_percent():
    # maker fee 0: 9,000 buys 60 BTC at 100 and 60 ETH at 50
    m = market({"BTC-SPOT": [100.0, 100.0, 150.0, 150.0, 200.0, 200.0, 200.0],
                "ETH-SPOT": [50.0] * 7})
    r = simulate(m, cfg(**{"portfolio.initial_capital": 9_000.0, "execution.spot_maker_fee": 0.0,
                           "core_hodl.eth_staking": False}), engines=["core_hodl"])
    reb = events(r, "core_rebalance")
    # BTC at 150: 9,000 of 12,000 = 75 %, 8.3 % from 2/3: no rebalance. At 200: 12,000 of 15,000 = 80 %, 13.3 %.
    assert [m.index.get_loc(t) for t in reb.index] == [4]
    # back to weights of 15,000: BTC 10,000 (sell 10 at 200), ETH 5,000 (buy 40 at 50); turnover 4,000
    assert reb["amount"].iloc[0] == pytest.approx(4_000.0)
    f = r.orders[r.orders["reason"] == "rebalance"]
    assert f["symbol"].tolist() == ["BTC-SPOT", "ETH-SPOT"]
    assert f["side"].tolist() == ["sell", "buy"]
    assert f["qty"].tolist() == pytest.approx([10.0, 40.0])
    assert f["price"].tolist() == [200.0, 50.0] and bars_of(f) == [5, 5]
    assert r.positions.iloc[-1][["BTC-SPOT", "ETH-SPOT"]].tolist() == pytest.approx([50.0, 100.0])
    assert r.equity.iloc[-1] == pytest.approx(15_000.0)


@pytest.mark.parametrize("calendar", ["quarterly", "none"])
def test_core_quarterly_calendar_rebalance_without_drift(calendar):
    # Mar 29 .. Apr 3: BTC +5 % leaves BTC at 6,300 of 9,300 (67.7 %, no drift); Apr 1 opens a new quarter
    m = market({"BTC-SPOT": [100.0, 100.0, 105.0, 105.0, 105.0, 105.0], "ETH-SPOT": [50.0] * 6},
               start="2024-03-29")
    r = simulate(m, cfg(**{"portfolio.initial_capital": 9_000.0, "execution.spot_maker_fee": 0.0,
                           "core_hodl.eth_staking": False, "core_hodl.rebalance_calendar": calendar}),
                 engines=["core_hodl"])
    reb = events(r, "core_rebalance")
    if calendar == "none":
        assert len(reb) == 0 and len(r.order_log) == 2
        return
    assert list(reb.index) == [pd.Timestamp("2024-04-01", tz="UTC")]
    # targets of 9,300: BTC 6,200 (sell 100/105), ETH 3,100 (buy 2); turnover 200
    assert reb["amount"].iloc[0] == pytest.approx(200.0)
    log = r.order_log[r.order_log["reason"] == "rebalance"]
    assert log["qty"].tolist() == pytest.approx([-100.0 / 105.0, 2.0])


def test_core_rebalance_whose_limit_expired_is_retried_on_the_next_close():
    # the Apr 1 calendar rebalance sells 100/105 BTC at 105, but Apr 2 trades 103.5..104.5: the sale expires, and
    # the ETH buy it was to pay for finds no cash (rejected). No drift and no calendar on Apr 2, yet CORE
    # rebalances again at Apr 2's close: 9,240 -> BTC 6,160 (sell 80/104), ETH 3,080 (buy 1.6)
    m = market({"BTC-SPOT": [100.0, 100.0, 105.0, 105.0, (104.0, 104.5, 103.5, 104.0), 104.0, 104.0],
                "ETH-SPOT": [50.0] * 7}, start="2024-03-29")
    r = simulate(m, cfg(**{"portfolio.initial_capital": 9_000.0, "execution.spot_maker_fee": 0.0,
                           "core_hodl.eth_staking": False}), engines=["core_hodl"])
    log = r.order_log[r.order_log["reason"] == "rebalance"]
    assert [m.index.get_loc(t) for t in log.index] == [3, 3, 4, 4]
    assert log["status"].tolist() == ["expired", "rejected", "filled", "filled"]
    assert log["qty"].iloc[2:].tolist() == pytest.approx([-80.0 / 104.0, 1.6])
    assert r.order_records["limit"][-2:].tolist() == [104.0, 50.0]
    assert r.positions.iloc[-1][["BTC-SPOT", "ETH-SPOT"]].tolist() == pytest.approx([60 - 80 / 104, 61.6])


def test_core_eth_staking_accrues_apr_over_365_per_day_held():
    # daily bars with one missing day (Jan 5): the credit on Jan 6 covers 2 days
    idx = pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-06", "2024-01-07"],
                           tz="UTC")
    eth = [50.0, 50.0, 55.0, 60.0, 40.0, 40.0]
    m = market({"BTC-SPOT": [100.0] * 6, "ETH-SPOT": eth}, index=idx)
    apr = 0.05
    r = simulate(m, cfg(**{"portfolio.initial_capital": 9_000.0, "execution.spot_maker_fee": 0.0,
                           "core_hodl.staking_apr": apr, "core_hodl.rebalance_threshold": 0.5}),
                 engines=["core_hodl"])
    q = 60.0  # 3,000 / 50, filled on bar 1
    st = events(r, "staking")
    # each new-day bar credits qty * close * apr / 365 * days since the last credit (the clock starts at the
    # first bar): Jan 2's bar held the ETH bought at its open for its whole day
    assert list(st.index) == list(idx[1:])
    assert st["amount"].tolist() == pytest.approx(
        [q * 50.0 * apr / 365, q * 55.0 * apr / 365, q * 60.0 * apr / 365, q * 40.0 * apr / 365 * 2,
         q * 40.0 * apr / 365])
    assert (st["sleeve"] == "core_hodl").all()
    assert r.attribution().loc["core_hodl", "staking"] == pytest.approx(st["amount"].sum())
    # below the minimum yield threshold nothing is staked
    r2 = simulate(m, cfg(**{"portfolio.initial_capital": 9_000.0, "core_hodl.staking_apr": 0.01}),
                  engines=["core_hodl"])
    assert len(events(r2, "staking")) == 0


# ================================================================= FUNDING

def funding_cfg(**extra):
    # FUNDING 8,000 and TACTICAL 2,000 (idle: no drawdown); default fees, 5 bp slippage
    return cfg(**{**alloc(funding=0.8, tactical=0.2), "funding.underlyings": ["BTC"],
                  "tactical.weights": {"BTC": 1.0}, "execution.slippage": 0.0005, **extra})


def funding_qty(eq=8_000.0 * (1 - 0.005), spot=100.0, perp=100.0, slip=0.0005, spot_fee=0.001, perp_fee=0.00055,
                lev=2.0):
    # one unit costs the spot (with slippage and fee) plus the short's initial margin and fee
    return eq / (spot * (1 + slip) * (1 + spot_fee) + perp * (1 / lev + perp_fee))


def test_funding_enters_after_two_settlements_above_threshold_exits_on_negative_and_transfers():
    # 8h bars, one settlement per bar. Threshold 0.01 %: bar 1's 0.005 % breaks the streak; exactly 0.01 % is
    # not above it. Streak of 2 completes on bar 3 -> market orders fill at bar 4's open.
    rates = [2e-4, 0.5e-4, 2e-4, 2e-4, 3e-4, 1e-4, -1e-4, 0.0, 0.0, 0.0]
    n = len(rates)
    m = market({"BTC-SPOT": [100.0] * n, "BTC-PERP": [100.0] * n}, freq="8h", funding={"BTC-PERP": rates})
    r = simulate(m, funding_cfg(), engines=["funding", "tactical"])
    q = funding_qty()
    log = r.order_log
    assert [m.index.get_loc(t) for t in log.index] == [3, 3, 6, 6]
    assert log["reason"].tolist() == ["funding_entry"] * 2 + ["funding_exit"] * 2
    f = r.orders  # within a bar sells fill first (their proceeds can pay for the buys)
    f = f.iloc[np.lexsort((f["symbol"].map({"BTC-SPOT": 0, "BTC-PERP": 1}), f["bar"]))]
    assert bars_of(f) == [4, 4, 7, 7]
    assert f["symbol"].tolist() == ["BTC-SPOT", "BTC-PERP", "BTC-SPOT", "BTC-PERP"]
    assert f["side"].tolist() == ["buy", "sell", "sell", "buy"]
    assert f["qty"].tolist() == pytest.approx([q] * 4, rel=1e-12)
    assert f["price"].tolist() == pytest.approx([100.05, 99.95, 99.95, 100.05])
    # the short receives -(-q) * open * rate on bars 4, 5, 6 (filled at bar 4's open, before its settlement)
    pay = r.funding_payments
    assert [m.index.get_loc(t) for t in pay.index] == [4, 5, 6]
    assert pay["amount"].tolist() == pytest.approx([q * 100 * 3e-4, q * 100 * 1e-4, -q * 100 * 1e-4])
    received = q * 100 * 3e-4
    # exit decided on bar 6's close: half (1 - compound_ratio) of the 0.03 % received moves to TACTICAL
    tr = events(r, "transfer")
    assert [m.index.get_loc(t) for t in tr.index] == [6]
    assert (tr["sleeve"].iloc[0], tr["other"].iloc[0]) == ("funding", "tactical")
    assert tr["amount"].iloc[0] == pytest.approx(0.5 * received)
    assert r.sleeve_equity["tactical"].iloc[-1] == pytest.approx(2_000.0 + 0.5 * received)
    fees = q * (100.05 * 0.001 + 99.95 * 0.00055 + 99.95 * 0.001 + 100.05 * 0.00055)
    assert r.sleeve_equity["funding"].iloc[-1] == pytest.approx(
        8_000.0 - 0.2 * q - fees + received - 0.5 * received, rel=1e-12)
    # the last settlement was negative: no new entry afterwards
    assert r.positions.iloc[-1].abs().sum() == pytest.approx(0.0, abs=1e-9)


def test_funding_re_hedges_a_spot_leg_cut_short_by_cash():
    # both legs gap from 100 to 160 at the fill: the short (sells fill first) fills in full, q = 53.26 at
    # 160 x 0.9995; the spot buy is cut to the free cash: 8,000 minus the short's fee, its slippage marked at
    # the open and its initial margin q x 160 / 2; the pair is re-hedged by buying back the difference
    n = 6
    px = [100.0, 100.0, (160.0, 161.0, 159.0, 160.0), 160.0, 160.0, 160.0]
    m = market({"BTC-SPOT": px, "BTC-PERP": px}, freq="8h", funding={"BTC-PERP": [2e-4] * n})
    r = simulate(m, funding_cfg(), engines=["funding", "tactical"])
    q = funding_qty()
    short_px = 160 * 0.9995
    free = 8_000.0 + q * short_px - q * short_px * 0.00055 - q * 160 - q * 160 / 2
    spot = free / (160 * 1.0005 * 1.001)
    f = r.orders
    assert f["qty"].tolist() == pytest.approx([q, spot, q - spot], rel=1e-9)
    assert f["side"].tolist() == ["sell", "buy", "buy"] and bars_of(f) == [2, 2, 3]
    assert f["symbol"].iloc[2] == "BTC-PERP"
    assert r.positions.iloc[-1].sum() == pytest.approx(0.0, abs=1e-9)  # net delta 0 again


@pytest.mark.parametrize("daily_rate, enters", [(2e-4, False), (4e-4, True)])
def test_funding_threshold_scales_with_bars_longer_than_8h(daily_rate, enters):
    # a daily bar sums three 8-hourly settlements: the entry threshold is 3 x 0.01 % = 0.03 %
    m = market({"BTC-SPOT": [100.0] * 5, "BTC-PERP": [100.0] * 5}, funding={"BTC-PERP": [daily_rate] * 5})
    r = simulate(m, funding_cfg(), engines=["funding", "tactical"])
    if enters:
        assert [m.index.get_loc(t) for t in r.order_log.index] == [1, 1]
    else:
        assert len(r.order_log) == 0


def test_funding_exits_when_the_premium_exceeds_two_percent():
    n = 9
    perp = [100.0, 100.0, 100.0, 101.0, 103.0, 103.0, 100.0, 100.0, 100.0]
    m = market({"BTC-SPOT": [100.0] * n, "BTC-PERP": perp}, freq="8h", funding={"BTC-PERP": [2e-4] * n})
    r = simulate(m, funding_cfg(), engines=["funding", "tactical"])
    log = r.order_log
    # enter on bar 1; premium 1 % on bar 3 is held; 3 % on bar 4 exits; bar 5 (still 3 %) may not re-enter;
    # bar 6 (premium 0, funding still positive) re-enters
    assert [m.index.get_loc(t) for t in log.index] == [1, 1, 4, 4, 6, 6]
    assert log["reason"].tolist() == ["funding_entry"] * 2 + ["funding_exit"] * 2 + ["funding_entry"] * 2
    # spot sold at 100, the short bought back at 103 (the opens of bar 5), slippage against us
    q = funding_qty()
    exit_fills = r.orders[r.orders["reason"] == "funding_exit"]
    assert exit_fills["price"].tolist() == pytest.approx([100.0 * 0.9995, 103.0 * 1.0005])
    assert exit_fills["qty"].tolist() == pytest.approx([q, q])


def test_funding_exits_after_max_hold_days_and_transfers_half_the_funding():
    n = 50  # 8h bars, +0.02 % at every settlement
    m = market({"BTC-SPOT": [100.0] * n, "BTC-PERP": [100.0] * n}, freq="8h", funding={"BTC-PERP": [2e-4] * n})
    r = simulate(m, funding_cfg(), engines=["funding", "tactical"])
    log = r.order_log
    # entered at bar 2's open; 14 days = 42 bars later (bar 44) the exit is decided, filled on bar 45;
    # the entry flags still hold, so it re-enters on bar 45's close
    assert [m.index.get_loc(t) for t in log.index] == [1, 1, 44, 44, 45, 45]
    assert m.index[44] - m.index[2] == pd.Timedelta("14D")
    q = funding_qty()
    tr = events(r, "transfer")
    assert [m.index.get_loc(t) for t in tr.index] == [44]
    assert tr["amount"].iloc[0] == pytest.approx(0.5 * 43 * q * 100 * 2e-4)  # settlements of bars 2..44


# ================================================================= TACTICAL

def tactical_market(btc):
    return market({"BTC-SPOT": btc, "ETH-SPOT": [x / 10 for x in btc], "BTC-PERP": btc})


def tactical_cfg(**extra):
    return cfg(**{**alloc(core_hodl=0.5, tactical=0.5), **extra})


def test_tactical_deploys_in_two_drawdown_stages_exits_at_double_and_returns_proceeds_to_core():
    btc = [100.0, 80.0, 50.0, 40.0, 30.0, 45.0, 70.0, 80.0, 80.0, 80.0]
    m = tactical_market(btc)
    r = simulate(m, tactical_cfg(), engines=["core_hodl", "tactical"])
    f = fills(r, "tactical")
    fee = 0.001  # spot taker
    # bar 2: BTC 50 % below its high -> half of the 5,000, 80/20 BTC/ETH, sized net of the fee
    qb1, qe1 = 0.8 * 2_500 / (50 * (1 + fee)), 0.2 * 2_500 / (5 * (1 + fee))
    # bar 4: 70 % below -> the rest of the cash (exactly 2,500 left)
    qb2, qe2 = 0.8 * 2_500 / (30 * (1 + fee)), 0.2 * 2_500 / (3 * (1 + fee))
    dep = f[f["reason"] == "tactical_deploy"]
    assert bars_of(dep) == [3, 3, 5, 5]
    assert dep["qty"].tolist() == pytest.approx([qb1, qe1, qb2, qe2], rel=1e-12)
    assert dep["price"].tolist() == [50.0, 5.0, 30.0, 3.0]
    # cost 5,000; value qb*P + qe*P/10 reaches 10,000 (+100 %) at 80 (9,324 at 70): exit decided on bar 7
    qb, qe = qb1 + qb2, qe1 + qe2
    assert (qb * 70 + qe * 7) < 10_000 <= (qb * 80 + qe * 8)
    ex = f[f["reason"] == "tactical_exit"]
    assert bars_of(ex) == [8, 8] and ex["qty"].tolist() == pytest.approx([qb, qe])
    proceeds = (qb * 80 + qe * 8) * (1 - fee)
    tr = events(r, "transfer")
    assert [m.index.get_loc(t) for t in tr.index] == [8]
    assert (tr["sleeve"].iloc[0], tr["other"].iloc[0]) == ("tactical", "core_hodl")
    assert tr["amount"].iloc[0] == pytest.approx(proceeds, rel=1e-12)
    assert r.sleeve_equity["tactical"].iloc[-1] == pytest.approx(0.0, abs=1e-9)
    # CORE-HODL invests what it received
    acc = r.order_log[(r.order_log["sleeve"] == "core_hodl") & (r.order_log.index == m.index[8])]
    assert (acc["qty"] > 0).all() and len(acc) == 2
    states = r.engine_states["tactical"].tolist()
    assert states[2] == "TRIGGER_DETECTED" and states[7] == "PROFIT_TARGET_HIT" and states[8] == "RETURNING_TO_CORE"


def test_tactical_time_limit_exit():
    btc = [100.0, 80.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0]
    m = tactical_market(btc)
    r = simulate(m, tactical_cfg(**{"tactical.time_limit_days": 3.0}), engines=["core_hodl", "tactical"])
    f = fills(r, "tactical")
    # deployed on bar 2's decision; 3 days later (bar 5) the time limit exits; sold on bar 6, proceeds to CORE
    assert f["reason"].tolist() == ["tactical_deploy"] * 2 + ["tactical_exit"] * 2
    assert bars_of(f) == [3, 3, 6, 6]
    tr = events(r, "transfer")
    assert [m.index.get_loc(t) for t in tr.index] == [6]
    assert r.engine_states["tactical"].iloc[5] == "RETURNING_TO_CORE"


@pytest.mark.parametrize("value, stamp, bar", [(15.0, "2024-01-04", 3), (25.0, "2024-01-04", None),
                                               (15.0, "2024-01-04 01:00", 4)])
def test_tactical_fear_and_greed_below_20_triggers_the_first_stage(value, stamp, bar):
    btc = [100.0, 95.0, 92.0, 90.0, 90.0, 90.0, 90.0]  # at most 10 % below the high
    m = tactical_market(btc)
    fg = pd.Series([50.0, value], index=pd.DatetimeIndex(["2024-01-01", stamp], tz="UTC"))
    r = simulate(m, tactical_cfg(), engines=["core_hodl", "tactical"], fear_greed=fg)
    dep = r.order_log[r.order_log["reason"] == "tactical_deploy"]
    if bar is None:
        assert len(dep) == 0
        return
    # stamped at bar 3's open: known on bar 3; stamped an hour later: known from bar 4 only (no look-ahead)
    assert {m.index.get_loc(t) for t in dep.index} == {bar}
    px = btc[bar]
    assert dep["qty"].tolist() == pytest.approx([0.8 * 2_500 / (px * 1.001), 0.2 * 2_500 / (px / 10 * 1.001)])


@pytest.mark.parametrize("rate, bar", [(-6e-4, 12), (-4e-4, None)])
def test_tactical_deeply_negative_funding_for_three_days_triggers_the_first_stage(rate, bar):
    # 8h bars, BTC flat (no drawdown). BTC-PERP settles below -0.05 % from bar 3 (Jan 2 00:00) on: three days
    # later, bar 12 (Jan 5 00:00), TACTICAL deploys its first stage; -0.04 % is not deep enough
    n = 16
    m = market({"BTC-SPOT": [100.0] * n, "ETH-SPOT": [10.0] * n, "BTC-PERP": [100.0] * n}, freq="8h",
               funding={"BTC-PERP": [0.0, 0.0, 1e-4] + [rate] * (n - 3)})
    r = simulate(m, tactical_cfg(), engines=["core_hodl", "tactical"])
    dep = r.order_log[r.order_log["reason"] == "tactical_deploy"]
    if bar is None:
        assert len(dep) == 0
        return
    assert {m.index.get_loc(t) for t in dep.index} == {bar}
    assert m.index[bar] - m.index[3] == pd.Timedelta("3D")
    assert dep["qty"].tolist() == pytest.approx([0.8 * 2_500 / (100 * 1.001), 0.2 * 2_500 / (10 * 1.001)])


# ================================================================= breaker and loss limits

def scripted_trend(monkeypatch, m, sym="BTC-PERP", atr=5.0, **bars):
    """Replace TREND's signals with entries/exits on given bars of ``sym`` (flag lists as in pack_signals)."""
    n, k = len(m.index), len(m.symbols)
    j = m.symbols.index(sym)

    def mask(name):
        a = np.zeros((n, k), dtype=bool)
        a[list(bars.get(name, ())), j] = True
        return a

    flags = pack_signals(mask("long_entry"), mask("short_entry"), mask("long_exit"), mask("short_exit"))
    atr_a = np.full((n, k), np.nan)
    atr_a[:, j] = atr
    monkeypatch.setattr(trend_engine, "prepare",
                        lambda market, c: TrendSignals(flags, atr_a, np.ones((n, k), dtype=np.float32)))


def trend_cfg(**extra):
    # fees 0; the 2x notional cap binds (risk 100 % over a 15-wide stop asks far more)
    return cfg(**{"trend.symbols": ["BTC-PERP"], "execution.perp_taker_fee": 0.0, "trend.max_position": 2.0,
                  "trend.risk_per_trade": 1.0, "risk.breaker_levels": [0.10, 0.15, 0.20, 0.25],
                  "risk.recovery_hysteresis": 0.025, **extra})


@pytest.mark.parametrize("l1", [0.10, 0.15])
def test_breaker_l1_scales_new_trend_sizes_by_0_75_and_widens_the_stop(monkeypatch, l1):
    # 200 long at 100 (2x of 10,000), marked at 94: -1,200 -> 12 % drawdown (L1 when l1 = 10 %)
    m = market({"BTC-PERP": [100.0, 94.0, 94.0, 94.0, (94.0, 94.0, 75.0, 94.0), 94.0]})
    scripted_trend(monkeypatch, m, long_entry=[0, 2], long_exit=[1])
    r = simulate(m, trend_cfg(**{"risk.breaker_levels": [l1, 0.16, 0.2, 0.25]}), engines=["trend"])
    assert r.breaker_level.tolist()[1] == (1 if l1 == 0.10 else 0)
    entry = r.orders[r.orders["reason"] == "entry_long"]
    full = 2 * 8_800.0 / 94.0
    if l1 == 0.10:
        assert events(r, "breaker_up")["value"].tolist() == pytest.approx([0.12])
        assert entry["qty"].tolist() == pytest.approx([200.0, 0.75 * full])
        # stop 94 - 1.5 x 3 x 5 = 71.5: bar 4's low of 75 does not reach it
        assert "trailing_stop" not in r.orders["reason"].tolist()
    else:
        assert entry["qty"].tolist() == pytest.approx([200.0, full])
        stop = r.orders[r.orders["reason"] == "trailing_stop"]  # stop 94 - 3 x 5 = 79
        assert bars_of(stop) == [4] and stop["price"].tolist() == [79.0]


def test_breaker_l2_blocks_new_entries(monkeypatch):
    # -16 % -> L2 (15 %..20 %)
    m = market({"BTC-PERP": [100.0, 92.0, 92.0, 92.0, 92.0]})
    scripted_trend(monkeypatch, m, long_entry=[0, 2, 3], long_exit=[1])
    r = simulate(m, trend_cfg(), engines=["trend"])
    assert r.breaker_level.tolist() == [0, 2, 2, 2, 2]
    assert r.orders["reason"].tolist() == ["entry_long", "exit_signal"]
    assert r.engine_states["trend"].tolist()[2:4] == ["NO_TRADE", "NO_TRADE"]


def test_breaker_l3_closes_trend(monkeypatch):
    # -22 % -> L3: a market order closes TREND at the next open (no exit signal)
    m = market({"BTC-PERP": [100.0, 89.0, 89.0, 95.0, 95.0]})
    scripted_trend(monkeypatch, m, long_entry=[0, 3])
    r = simulate(m, trend_cfg(), engines=["trend"])
    assert r.breaker_level.tolist()[1] == 3
    f = r.orders
    assert f["reason"].tolist() == ["entry_long", "breaker"]
    assert bars_of(f) == [1, 2] and f["price"].tolist() == [100.0, 89.0]
    assert r.breaker_level.tolist()[3] == 3  # the entry signal on bar 3 is ignored at L3


def test_breaker_l3_closes_tactical_but_not_core():
    # CORE 2,000 and TACTICAL 8,000. Bar 2: BTC -50 % takes the portfolio ~10 % down (L1), so TACTICAL deploys
    # 0.75 x half of 8,000 = 3,000. Bar 3: BTC 34 -> CORE ~679, TACTICAL 5,000 + 3,000/1.001 x 0.68 -> -22.8 %: L3
    btc = [100.0, 80.0, 50.0, 34.0, 34.0, 34.0]
    m = tactical_market(btc)
    r = simulate(m, cfg(**{**alloc(core_hodl=0.2, tactical=0.8),
                           "risk.breaker_levels": [0.10, 0.15, 0.20, 0.25]}), engines=["core_hodl", "tactical"])
    assert r.breaker_level.tolist()[2:4] == [1, 3]
    tac = fills(r, "tactical")
    assert tac["qty"].iloc[:2].tolist() == pytest.approx([0.8 * 3_000 / (50 * 1.001), 0.2 * 3_000 / (5 * 1.001)])
    assert tac["reason"].tolist() == ["tactical_deploy"] * 2 + ["breaker"] * 2 and bars_of(tac)[2:] == [4, 4]
    assert "breaker" not in fills(r, "core_hodl")["reason"].tolist()
    assert r.positions.iloc[-1][["BTC-SPOT", "ETH-SPOT"]].gt(0).all()  # CORE still holds
    assert r.sleeve_equity["tactical"].iloc[-1] == pytest.approx(5_000 + 3_000 / 1.001 * 0.68 * 0.999)


@pytest.mark.parametrize("entries", [[0, 3, 6, 8], [0]])
def test_breaker_l4_manual_halts_for_good(monkeypatch, entries):
    # -26 % -> L4: everything closed at the next open, then nothing trades though prices recover
    m = market({"BTC-PERP": [100.0, 87.0, 87.0, 95.0, 100.0, 110.0, 110.0, 110.0, 110.0, 110.0]})
    scripted_trend(monkeypatch, m, long_entry=entries)
    r = simulate(m, trend_cfg(), engines=["trend"])
    halt = events(r, "halt")
    assert [m.index.get_loc(t) for t in halt.index] == [1] and halt["value"].iloc[0] == pytest.approx(0.26)
    assert r.orders["reason"].tolist() == ["entry_long", "breaker"]
    assert r.orders["bar"].max() == 2
    assert r.breaker_level.tolist()[1:] == [4] * 9
    assert (r.engine_states["trend"].iloc[1:] == "HALTED").all()
    assert r.equity.iloc[-1] == pytest.approx(10_000.0 - 200 * 13.0)


@pytest.mark.parametrize("entries", [[0, 3, 5, 8], [0, 3, 7]])
def test_breaker_l4_cooldown_resets_after_the_cooldown(monkeypatch, entries):
    # halted on bar 1 (Jan 2); cooldown 4 days -> the reset fires on bar 5 (Jan 6) whether or not TREND has a
    # signal that bar; bar 3's entry is still blocked, the first one on/after bar 5 trades
    m = market({"BTC-PERP": [100.0, 87.0, 87.0, 95.0, 100.0, 110.0, 110.0, 110.0, 110.0, 110.0]})
    scripted_trend(monkeypatch, m, long_entry=entries)
    r = simulate(m, trend_cfg(**{"risk.l4_reset": "cooldown", "risk.l4_cooldown_days": 4.0}), engines=["trend"])
    reset = events(r, "reset")
    assert [m.index.get_loc(t) for t in reset.index] == [5]
    assert r.breaker_level.tolist() == [0, 4, 4, 4, 4, 0, 0, 0, 0, 0]
    entry = r.orders[r.orders["reason"] == "entry_long"]
    first = [e for e in entries if e >= 5][0]
    assert bars_of(entry) == [1, first + 1]
    # the peak restarts at the reset: sized from 7,400 of equity at L0 (2x cap)
    assert entry["qty"].iloc[1] == pytest.approx(2 * 7_400.0 / 110.0)


def test_daily_loss_limit_blocks_entries_until_the_next_utc_day(monkeypatch):
    # hourly bars from 20:00; the long loses 3 % on bar 2 (daily limit 2 %); bar 4 is 00:00 of the next day
    m = market({"BTC-PERP": [100.0, 100.0, 98.5, 98.5, 98.5, 98.5, 98.5]}, start="2024-01-01 20:00", freq="1h")
    scripted_trend(monkeypatch, m, long_entry=[0, 3, 4], long_exit=[2])
    r = simulate(m, trend_cfg(**{"risk.daily_loss_limit": 0.02, "risk.weekly_loss_limit": 0.05}),
                 engines=["trend"])
    lim = events(r, "daily_loss_limit")
    assert [m.index.get_loc(t) for t in lim.index] == [2] and lim["value"].iloc[0] == pytest.approx(0.03)
    entry = r.orders[r.orders["reason"] == "entry_long"]
    assert bars_of(entry) == [1, 5]  # bar 3's signal is blocked, bar 4's (new day) trades
    assert r.engine_states["trend"].iloc[3] == "NO_TRADE"
    assert r.breaker_level.max() == 0


# ================================================================= perp liquidation

def liquidation_run(monkeypatch, perp_bars, side="long", fill="next_open", liq_fee=0.002):
    # TREND 5,000 (isolated from FUNDING's 5,000, which stays idle: no funding); 100 perps at 100 = 2x
    n = len(perp_bars)
    m = market({"BTC-SPOT": [100.0] * n, "BTC-PERP": perp_bars})
    key = "long_entry" if side == "long" else "short_entry"
    scripted_trend(monkeypatch, m, atr=25.0, **{key: [0]})  # stop 2 x 25 = 50 away
    c = trend_cfg(**{**alloc(trend=0.5, funding=0.5), "funding.underlyings": ["BTC"],
                     "trend.atr_stop_mult": 2.0, "execution.fill": fill, "perp.liquidation_fee": liq_fee,
                     "risk.breaker_levels": [0.9, 0.95, 0.97, 0.99], "risk.recovery_hysteresis": 0.0})
    return m, simulate(m, c, engines=["trend", "funding"])


def test_long_liquidated_at_the_price_where_equity_meets_maintenance(monkeypatch):
    # cash after the buy 5,000 - 10,000 = -5,000; equity(P) = -5,000 + 100 P; maintenance 0.005 x 100 P
    # -> P = 5,000 / 99.5 = 50.2513. The stop sits at 50, below: bar 2's low of 50.1 reaches P but not the stop
    m, r = liquidation_run(monkeypatch, [100.0, 100.0, (100.0, 100.0, 50.1, 60.0), 60.0, 60.0])
    p = 5_000.0 / 99.5
    liq = r.orders[r.orders["reason"] == "liquidation"]
    assert bars_of(liq) == [2] and liq["price_type"].tolist() == ["liquidation"]
    assert liq["price"].iloc[0] == pytest.approx(p, rel=1e-12)
    assert liq["fee"].iloc[0] == pytest.approx(100 * p * 0.002, rel=1e-12)
    ev = events(r, "liquidation")
    assert [m.index.get_loc(t) for t in ev.index] == [2]
    assert ev["amount"].iloc[0] == pytest.approx(0.0, abs=1e-9)  # no insurance cover needed
    assert ev["value"].iloc[0] == pytest.approx(100 * p * 0.002)
    # what is left is the maintenance margin minus the fee: (0.005 - 0.002) x 100 P
    assert r.sleeve_equity["trend"].iloc[-1] == pytest.approx(0.003 * 100 * p, rel=1e-9)
    assert (r.sleeve_equity["funding"] == 5_000.0).all()  # isolated sleeve


def test_long_not_liquidated_when_the_low_stays_above_the_liquidation_price(monkeypatch):
    m, r = liquidation_run(monkeypatch, [100.0, 100.0, (100.0, 100.0, 50.3, 60.0), 60.0, 60.0])
    assert len(events(r, "liquidation")) == 0
    assert r.sleeve_equity["trend"].iloc[-1] == pytest.approx(-5_000.0 + 100 * 60.0)


def test_short_liquidated_on_the_high(monkeypatch):
    # cash 5,000 + 10,000 = 15,000; equity(P) = 15,000 - 100 P = 0.005 x 100 P -> P = 15,000 / 100.5
    m, r = liquidation_run(monkeypatch, [100.0, 100.0, (100.0, 149.5, 100.0, 120.0), 120.0], side="short")
    liq = r.orders[r.orders["reason"] == "liquidation"]
    assert bars_of(liq) == [2] and liq["price"].iloc[0] == pytest.approx(15_000.0 / 100.5, rel=1e-12)
    assert liq["side"].iloc[0] == "buy"
    assert (r.sleeve_equity["funding"] == 5_000.0).all()


def test_gap_through_stop_and_liquidation_price_liquidates_at_the_open_with_insurance_cover(monkeypatch):
    # bar 2 opens at 40, through the stop (50) and the bankruptcy price (50): the sleeve is below maintenance at
    # the open, so it is liquidated there, before the stop (which would leave a negative balance). Cash -5,000 + 4,000 - fee 8
    # (0.2 % of 4,000) = -1,008, which the insurance fund covers: the sleeve ends at 0, FUNDING pays nothing.
    m, r = liquidation_run(monkeypatch, [100.0, 100.0, (40.0, 45.0, 38.0, 42.0), 42.0, 42.0])
    f = r.orders
    assert f["reason"].tolist() == ["entry_long", "liquidation"]
    assert f["price"].iloc[1] == 40.0 and f["fee"].iloc[1] == pytest.approx(8.0)
    ev = events(r, "liquidation")
    assert ev["amount"].tolist() == pytest.approx([1_008.0]) and ev["value"].tolist() == pytest.approx([8.0])
    assert r.sleeve_equity["trend"].iloc[2:].tolist() == pytest.approx([0.0] * 3, abs=1e-9)
    assert (r.sleeve_equity["funding"] == 5_000.0).all()
    assert r.attribution().loc["trend", "liquidation"] == pytest.approx(1_000.0)


def test_stop_below_the_liquidation_price_does_not_pre_empt_the_liquidation(monkeypatch):
    # with the 0.055 % taker fee: cash after the buy -5,005.5; liquidation price P = 5,005.5 / 99.5 = 50.307,
    # above the stop at 50. Bar 2 falls from 100 to 45: the path meets P first, so the sleeve is liquidated
    # there (filling the stop at 50 would leave -5,005.5 + 5,000 - 2.75 = -8.25, a negative isolated balance)
    n = 5
    m = market({"BTC-SPOT": [100.0] * n, "BTC-PERP": [100.0, 100.0, (100.0, 100.0, 45.0, 60.0), 60.0, 60.0]})
    scripted_trend(monkeypatch, m, atr=25.0, long_entry=[0])
    c = trend_cfg(**{**alloc(trend=0.5, funding=0.5), "funding.underlyings": ["BTC"], "trend.atr_stop_mult": 2.0,
                     "execution.perp_taker_fee": 0.00055, "perp.liquidation_fee": 0.002,
                     "risk.breaker_levels": [0.9, 0.95, 0.97, 0.99], "risk.recovery_hysteresis": 0.0})
    r = simulate(m, c, engines=["trend", "funding"])
    assert r.orders["reason"].tolist() == ["entry_long", "liquidation"]
    assert r.orders["price"].iloc[1] == pytest.approx(5_005.5 / 99.5)
    assert r.sleeve_equity["trend"].min() >= 0.0


def test_stop_above_the_liquidation_price_fires_first(monkeypatch):
    # ATR 22.5: stop 100 - 45 = 55, above the liquidation price 50.25. Bar 2 falls to 45: the stop fills at 55
    # on the way down and the flat sleeve keeps -5,000 + 5,500 = 500; no liquidation
    n = 5
    m = market({"BTC-SPOT": [100.0] * n, "BTC-PERP": [100.0, 100.0, (100.0, 100.0, 45.0, 60.0), 60.0, 60.0]})
    scripted_trend(monkeypatch, m, atr=22.5, long_entry=[0])
    c = trend_cfg(**{**alloc(trend=0.5, funding=0.5), "funding.underlyings": ["BTC"], "trend.atr_stop_mult": 2.0,
                     "risk.breaker_levels": [0.9, 0.95, 0.97, 0.99], "risk.recovery_hysteresis": 0.0})
    r = simulate(m, c, engines=["trend", "funding"])
    assert r.orders["reason"].tolist() == ["entry_long", "trailing_stop"]
    assert r.orders["price"].iloc[1] == pytest.approx(55.0)
    assert len(events(r, "liquidation")) == 0
    assert r.sleeve_equity["trend"].iloc[-1] == pytest.approx(500.0)


def test_rotation_survives_a_wiped_out_sleeve(monkeypatch):
    # the gap liquidation leaves TREND at exactly 0: its time-weighted NAV is 0 from then on. With rotation on
    # (1-day lookback) the monthly rebalance on Feb 1 compares NAVs with a 0 one: no tilt, back to 50/50
    perp = [100.0, 100.0, (40.0, 45.0, 38.0, 42.0)] + [42.0] * 5
    m = market({"BTC-SPOT": [100.0] * 8, "BTC-PERP": perp}, start="2024-01-25")
    scripted_trend(monkeypatch, m, atr=25.0, long_entry=[0])
    c = trend_cfg(**{**alloc(trend=0.5, funding=0.5), "funding.underlyings": ["BTC"],
                     "trend.atr_stop_mult": 2.0, "perp.liquidation_fee": 0.002,
                     "risk.breaker_levels": [0.9, 0.95, 0.97, 0.99], "risk.recovery_hysteresis": 0.0,
                     "orchestrator.rotation": True, "orchestrator.rotation_lookback_days": 1,
                     "orchestrator.rebalance_calendar": "monthly"})
    r = simulate(m, c, engines=["trend", "funding"])
    assert list(events(r, "sleeve_rebalance").index) == [pd.Timestamp("2024-02-01", tz="UTC")]
    assert r.sleeve_equity.iloc[-1].tolist() == pytest.approx([2_500.0, 2_500.0])


def test_position_filled_at_the_close_is_not_liquidated_by_that_bars_earlier_low(monkeypatch):
    # next_close: the entry fills at bar 1's close (100); bar 1's dip to 50.1 happened before the position existed
    m, r = liquidation_run(monkeypatch, [100.0, (100.0, 100.0, 50.1, 100.0), 100.0, 100.0], fill="next_close")
    assert len(events(r, "liquidation")) == 0
    assert r.orders["reason"].tolist() == ["entry_long"]
    assert r.sleeve_equity["trend"].iloc[-1] == pytest.approx(5_000.0)


def test_position_exited_at_the_close_is_still_liquidated_by_that_bars_low(monkeypatch):
    # next_close: the exit decided on bar 1 fills at bar 2's close, but bar 2's low went through the liquidation
    # price first (5,000 / 99.5) while the position was open
    n = 4
    m = market({"BTC-SPOT": [100.0] * n, "BTC-PERP": [100.0, 100.0, (100.0, 100.0, 50.1, 100.0), 100.0]})
    scripted_trend(monkeypatch, m, atr=25.0, long_entry=[0], long_exit=[1])
    c = trend_cfg(**{**alloc(trend=0.5, funding=0.5), "funding.underlyings": ["BTC"],
                     "trend.atr_stop_mult": 2.0, "execution.fill": "next_close",
                     "risk.breaker_levels": [0.9, 0.95, 0.97, 0.99], "risk.recovery_hysteresis": 0.0})
    # entry fills at bar 1's close; bar 1 itself is flat at 100
    r = simulate(m, c, engines=["trend", "funding"])
    assert r.orders["reason"].tolist() == ["entry_long", "liquidation"]
    assert bars_of(r.orders) == [1, 2]
    assert r.order_log["status"].tolist() == ["filled", "cancelled", "filled"]  # the exit never filled


# ================================================================= orchestrator

def test_core_over_target_sells_down_and_pays_the_under_weight_sleeve_after_the_fill():
    # CORE 5,000 (BTC/ETH, maker fee 0) and TACTICAL 5,000 cash. Bar 2: +50 % -> CORE 7,500 of 12,500, 10 % over
    # its 50 % (threshold 5 %): it owes 1,250, sells down to 2/3 and 1/3 of 6,250 with limits at the close, and
    # the cash moves to TACTICAL on bar 3 once the sales filled
    m = tactical_market([100.0, 100.0, 150.0, 150.0, 150.0])
    r = simulate(m, cfg(**{**alloc(core_hodl=0.5, tactical=0.5), "execution.spot_maker_fee": 0.0,
                           "core_hodl.eth_staking": False, "orchestrator.rebalance_threshold": 0.05}),
                 engines=["core_hodl", "tactical"])
    sell = r.order_log[r.order_log["reason"] == "rebalance"]
    assert [m.index.get_loc(t) for t in sell.index] == [2, 2]
    assert sell["qty"].tolist() == pytest.approx([-(5_000 - 6_250 * 2 / 3) / 150, -(2_500 - 6_250 / 3) / 15])
    tr = events(r, "transfer")
    tr = tr[tr["amount"] > 1e-6]
    assert [m.index.get_loc(t) for t in tr.index] == [3]
    assert (tr["sleeve"].iloc[0], tr["other"].iloc[0]) == ("core_hodl", "tactical")
    assert tr["amount"].iloc[0] == pytest.approx(1_250.0)
    assert r.sleeve_equity.iloc[-1].tolist() == pytest.approx([6_250.0, 6_250.0])


# ================================================================= DCA

def test_dca_on_first_bar_on_or_after_dca_day_goes_to_under_weight_sleeves_first():
    # daily bars Jan 1 .. Feb 10 without Feb 5: dca_day 5 pays on Jan 5 and Feb 6
    days = pd.date_range("2024-01-01", "2024-02-10", freq="1D", tz="UTC")
    idx = days[days != pd.Timestamp("2024-02-05", tz="UTC")]
    n = len(idx)
    btc = [100.0, 100.0] + [80.0] * (n - 2)  # CORE (5,000, fully invested at maker fee 0) drops to 4,000
    m = market({"BTC-SPOT": btc, "ETH-SPOT": [x / 10 for x in btc], "BTC-PERP": btc}, index=idx)
    r = simulate(m, cfg(**{**alloc(core_hodl=0.5, tactical=0.5), "portfolio.dca_amount": 600.0,
                           "portfolio.dca_day": 5, "execution.spot_maker_fee": 0.0,
                           "core_hodl.eth_staking": False}), engines=["core_hodl", "tactical"])
    c = events(r, "contribution")
    assert sorted(set(c.index)) == [pd.Timestamp("2024-01-05", tz="UTC"), pd.Timestamp("2024-02-06", tz="UTC")]
    jan = c[c.index == "2024-01-05"]
    # Jan 5: 9,000 + 600 -> targets 4,800 each: CORE is 800 short, TACTICAL 200 over -> all 600 to CORE
    assert jan["sleeve"].tolist() == ["core_hodl"] and jan["amount"].tolist() == pytest.approx([600.0])
    feb = c[c.index == "2024-02-06"]
    # Feb 6: CORE 4,600 (invested its 600 at 80), TACTICAL 5,000: 10,200 -> 5,100 each: 500 and 100 short
    assert dict(zip(feb["sleeve"], feb["amount"])) == pytest.approx({"core_hodl": 500.0, "tactical": 100.0})
    assert r.contributions.sum() == pytest.approx(1_200.0)
    assert r.equity.iloc[-1] == pytest.approx(9_000.0 + 1_200.0)
    assert r.returns.loc["2024-01-05"] == pytest.approx(0.0, abs=1e-15)


def test_contributions_change_equity_but_not_time_weighted_returns_or_the_breaker():
    # CORE only, maker fee 0, no staking; BTC and ETH move together so CORE stays at its weights and invests
    # every contribution pro rata: returns are the same with and without DCA. Bar 10: -12 % -> L1. With DCA the
    # equity (13,800 after the first 5,000) is far above the start, but the time-weighted drawdown stays 12 %.
    n = 75
    px = np.r_[np.full(10, 100.0), np.full(40, 88.0), np.linspace(88.0, 95.0, n - 50)]
    m = market({"BTC-SPOT": list(px), "ETH-SPOT": list(px / 20)})
    base = {"portfolio.initial_capital": 10_000.0, "execution.spot_maker_fee": 0.0,
            "core_hodl.eth_staking": False, "risk.breaker_levels": [0.10, 0.15, 0.20, 0.25],
            "risk.recovery_hysteresis": 0.025}
    r0 = simulate(m, cfg(**{**base, "portfolio.dca_amount": 0.0}), engines=["core_hodl"])
    r1 = simulate(m, cfg(**{**base, "portfolio.dca_amount": 5_000.0, "portfolio.dca_day": 1}),
                  engines=["core_hodl"])
    assert r1.contributions.sum() == pytest.approx(10_000.0)  # Feb 1 and Mar 1
    assert r1.equity.iloc[-1] > r0.equity.iloc[-1] + 9_000
    np.testing.assert_allclose(r1.returns.to_numpy(), r0.returns.to_numpy(), rtol=0, atol=1e-12)
    assert r0.breaker_level.iloc[10] == 1
    np.testing.assert_array_equal(r1.breaker_level.to_numpy(), r0.breaker_level.to_numpy())


def test_idle_engines_with_contributions_have_zero_returns():
    # FUNDING (no funding) and TACTICAL (no drawdown) only hold cash: equity grows by the contributions alone
    n = 70
    m = market({"BTC-SPOT": [100.0 + (t % 7) for t in range(n)], "BTC-PERP": [100.0 + (t % 7) for t in range(n)]})
    c = cfg(**{**alloc(funding=0.6, tactical=0.4), "funding.underlyings": ["BTC"],
               "tactical.weights": {"BTC": 1.0}, "portfolio.dca_amount": 1_000.0, "portfolio.dca_day": 3})
    r = simulate(m, c, engines=["funding", "tactical"])
    assert r.contributions.sum() == pytest.approx(3_000.0)  # Jan 3, Feb 3 and Mar 3
    np.testing.assert_allclose(r.equity.to_numpy(), 10_000.0 + np.cumsum(r.contributions.to_numpy()))
    assert (r.returns == 0.0).all()
    assert r.money_weighted_return() == pytest.approx(0.0, abs=1e-9)


# ================================================================= Kelly

def test_kelly_caps_trend_size_after_min_trades(monkeypatch):
    # four round trips of the 50 %-of-equity cap: +10 %, +10 %, +10 %, -5 % (returns on notional). Then
    # p = 3/4, b = 0.10 / 0.05 = 2, Kelly = p - (1 - p) / b = 0.625, x 1/8 = 0.078125 of equity < the 50 % cap
    c = [100.0, 110.0, 100.0, 110.0, 100.0, 110.0, 100.0, 95.0, 100.0, 100.0]
    m = market({"BTC-PERP": c})
    scripted_trend(monkeypatch, m, atr=40.0, long_entry=[0, 2, 4, 6, 8], long_exit=[1, 3, 5, 7])
    r = simulate(m, cfg(**{"trend.symbols": ["BTC-PERP"], "execution.perp_taker_fee": 0.0,
                           "trend.risk_per_trade": 1.0, "risk.kelly_min_trades": 4}), engines=["trend"])
    assert r.trades["return"].iloc[:4].tolist() == pytest.approx([0.1, 0.1, 0.1, -0.05])
    entry = r.orders[r.orders["reason"] == "entry_long"]
    eq = [10_000.0, 10_500.0, 11_025.0, 11_576.25]  # equity before each of the first four entries
    assert entry["qty"].iloc[:4].tolist() == pytest.approx([0.5 * e / 100.0 for e in eq])  # 3 trades: no Kelly
    eq5 = 11_576.25 - 0.5 * 11_576.25 / 100.0 * 5.0
    assert r.equity.iloc[8] == pytest.approx(eq5)
    assert entry["qty"].iloc[4] == pytest.approx(0.125 * 0.625 * eq5 / 100.0)


def test_kelly_zero_without_winners_blocks_entries(monkeypatch):
    c = [100.0, 95.0, 100.0, 95.0, 100.0, 100.0]
    m = market({"BTC-PERP": c})
    scripted_trend(monkeypatch, m, atr=40.0, long_entry=[0, 2, 4], long_exit=[1, 3])
    r = simulate(m, cfg(**{"trend.symbols": ["BTC-PERP"], "execution.perp_taker_fee": 0.0,
                           "trend.risk_per_trade": 1.0, "risk.kelly_min_trades": 2}), engines=["trend"])
    assert r.orders["reason"].tolist() == ["entry_long", "exit_signal"] * 2
    assert r.engine_states["trend"].iloc[4] == "NO_TRADE"


@pytest.mark.parametrize("shadow", [False, True])
def test_kelly_shadow_trades_can_end_a_lock_out(monkeypatch, shadow):
    # two losing trades (100 -> 95) lock Kelly at 0 after kelly_min_trades = 2. Bar 4's entry signal is then
    # sized at 0; with kelly_shadow a would-be 1-unit long is taken at bar 4's close (100) and exits on bar 6's
    # exit signal at 120: +20 %, so the estimate has 1 win and 2 losses: p = 1/3, b = 0.2 / 0.05 = 4,
    # Kelly = 1/3 - (2/3) / 4 = 1/6 > 0, and bar 7's entry is a real one. Without shadows nothing trades again.
    c = [100.0, 95.0, 100.0, 95.0, 100.0, 110.0, 120.0, 120.0, 120.0]
    m = market({"BTC-PERP": c})
    scripted_trend(monkeypatch, m, atr=40.0, long_entry=[0, 2, 4, 7], long_exit=[1, 3, 6])
    r = simulate(m, cfg(**{"trend.symbols": ["BTC-PERP"], "execution.perp_taker_fee": 0.0,
                           "trend.risk_per_trade": 1.0, "risk.kelly_min_trades": 2, "risk.kelly_shadow": shadow}),
                 engines=["trend"])
    reasons = r.orders["reason"].tolist()
    assert reasons[:4] == ["entry_long", "exit_signal"] * 2
    if not shadow:
        assert len(reasons) == 4
        return
    entry = r.orders.iloc[4]
    assert entry["reason"] == "entry_long" and entry["bar"] == 8  # decided on bar 7's close
    kelly = 0.125 * (1 / 3 - (2 / 3) / 4)
    assert entry["qty"] == pytest.approx(kelly * r.sleeve_equity["trend"].iloc[7] / 120.0, rel=1e-9)


def test_tactical_returns_only_its_sale_proceeds_not_cash_that_arrived_meanwhile():
    # FUNDING holds a hedged BTC pair on positive funding; the settlement on bar 8 turns negative, so FUNDING
    # exits on bar 8's close and hands half its funding to TACTICAL, on the very bar TACTICAL's exit has filled
    # and it returns its proceeds to CORE. CORE must get exactly the sale proceeds; the funding stays in TACTICAL.
    btc = [100.0, 80.0, 50.0, 40.0, 30.0, 45.0, 70.0, 80.0, 80.0, 80.0]
    rates = [1e-3] * 8 + [-1e-3, -1e-3]
    m = market({"BTC-SPOT": btc, "ETH-SPOT": [x / 10 for x in btc], "BTC-PERP": btc},
               funding={"BTC-PERP": rates})
    c = cfg(**{**alloc(core_hodl=0.4, funding=0.2, tactical=0.4), "funding.underlyings": ["BTC"]})
    r = simulate(m, c, engines=["core_hodl", "funding", "tactical"])
    tr = events(r, "transfer")
    into_tac = tr[(tr["sleeve"] == "funding") & (tr["other"] == "tactical")]
    to_core = tr[(tr["sleeve"] == "tactical") & (tr["other"] == "core_hodl")]
    assert [m.index.get_loc(t) for t in into_tac.index] == [8] and into_tac["amount"].iloc[0] > 0
    assert [m.index.get_loc(t) for t in to_core.index] == [8]
    ex = r.orders[(r.orders["sleeve"] == "tactical") & (r.orders["reason"] == "tactical_exit")]
    proceeds = float((ex["qty"] * ex["price"] - ex["fee"]).sum())
    assert to_core["amount"].iloc[0] == pytest.approx(proceeds, rel=1e-12)
    assert r.sleeve_equity["tactical"].iloc[8] == pytest.approx(into_tac["amount"].iloc[0], rel=1e-9)
