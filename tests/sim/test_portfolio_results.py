"""Four-engine results: rotation tilt, engine state names, money-weighted return, FUNDING's basis attribution."""
import numpy as np
import pandas as pd
import pytest

from eternal_engine.attribution import money_weighted_return
from eternal_engine.sim import simulate
from eternal_engine.sim.orchestrator_nb import rotation_weights_nb
from tests.sim.test_portfolio_rules import alloc, cfg, market


def test_rotation_tilts_towards_the_better_trailing_return_within_the_bound():
    base = np.array([0.6, 0.2, 0.15, 0.05])
    then = np.ones(4)
    now = np.array([1.10, 1.50, 1.00, 0.90])  # returns 10 %, 50 %, 0 %, -10 %; mean 12.5 %
    w = rotation_weights_nb(base, now, then, 0.25, np.empty(4))
    raw = base * (1 + np.clip(np.array([0.10, 0.50, 0.0, -0.10]) - 0.125, -0.25, 0.25))
    np.testing.assert_allclose(w, raw / raw.sum(), rtol=1e-12)
    assert w.sum() == pytest.approx(1.0)
    assert w[1] / base[1] > w[0] / base[0] > w[3] / base[3]  # ordered like the returns
    # no dispersion, no tilt
    np.testing.assert_allclose(rotation_weights_nb(base, np.full(4, 1.3), then, 0.25, np.empty(4)), base)


def test_rotation_moves_the_rebalancing_targets_and_stays_off_by_default():
    # CORE's coins double while TACTICAL holds cash: with rotation on, the quarterly rebalance leaves CORE above
    # its 50 % base weight; without it CORE is brought back to 50 %
    n = 130
    idx = pd.date_range("2024-01-01", periods=n, freq="1D", tz="UTC")
    px = np.linspace(100, 200, n)
    m = market({"BTC-SPOT": px, "ETH-SPOT": px}, index=idx)
    over = {**alloc(core_hodl=0.5, tactical=0.5), "orchestrator.rebalance_calendar": "quarterly",
            "core_hodl.rebalance_threshold": 0.9, "core_hodl.rebalance_calendar": "none",
            "execution.spot_maker_fee": 0.0, "orchestrator.rotation_lookback_days": 90,
            "tactical.funding_symbol": "", "tactical.weights": {"BTC": 1.0}}
    plain = simulate(m, cfg(**over), engines=["core_hodl", "tactical"])
    tilted = simulate(m, cfg(**over, **{"orchestrator.rotation": True}), engines=["core_hodl", "tactical"])
    day = idx.get_loc(pd.Timestamp("2024-04-03", tz="UTC"))  # after the Apr 1 rebalance and CORE's sales
    assert plain.allocation["core_hodl"].iloc[day] == pytest.approx(0.5, abs=0.01)
    assert tilted.allocation["core_hodl"].iloc[day] > 0.6  # +70 % vs 0 % over 90 days: the full +25 % tilt
    assert tilted.allocation["core_hodl"].iloc[day] <= 0.5 * 1.25 / (0.5 * 1.25 + 0.5 * 0.75) + 0.01  # bounded


def test_engine_states_use_the_spec_names():
    import eternal_engine as ee

    r = ee.backtest(ee.load_sample(), ee.Config().with_overrides({"risk.kelly_min_trades": 10**9}))
    st = r.engine_states
    assert list(st.columns) == ["core_hodl", "trend", "funding", "tactical"]
    assert set(st["core_hodl"].cat.categories) == {"INITIALIZING", "ACCUMULATING", "REBALANCING",
                                                   "EARN_OPTIMIZING", "HALTED"}
    assert {"SCANNING", "SIGNAL_DETECTED", "ENTERING", "IN_POSITION", "TRAILING_STOP", "STOPPED_OUT", "EXITING",
            "NO_TRADE"} <= set(st["trend"].cat.categories)
    assert {"ACCUMULATING_CASH", "MONITORING_MARKETS", "TRIGGER_DETECTED", "DEPLOYING", "PROFIT_TARGET_HIT",
            "RETURNING_TO_CORE"} <= set(st["tactical"].cat.categories)
    # states follow the books: HALTED exactly while the breaker is at L4; TREND ENTERING on its entry fills
    np.testing.assert_array_equal((st["funding"] == "HALTED").to_numpy(), (r.breaker_level == 4).to_numpy())
    entries = r.orders[(r.orders["sleeve"] == "trend") & r.orders["reason"].str.startswith("entry")]
    # (a bar's state is the highest-priority event on it: an exit or a stop on the entry bar outranks ENTERING)
    assert st["trend"].loc[entries.index.unique()].isin(["ENTERING", "EXITING", "STOPPED_OUT"]).all()
    assert (st["trend"].loc[entries.index.unique()] == "ENTERING").mean() > 0.8
    assert st["core_hodl"].iloc[0] == "ACCUMULATING"  # first bar: the initial buy is placed


def test_money_weighted_return_is_the_irr_of_the_cash_flows():
    # 100 in at t0, 100 more after half a year, 230 at the end of the year: solve by hand with the same rule
    idx = pd.date_range("2024-01-01", periods=367, freq="1D", tz="UTC")
    contributions = np.zeros(367)
    half = 183
    contributions[half] = 100.0
    equity = np.full(367, 230.0)
    got = money_weighted_return(idx, equity, 100.0, contributions)
    years = lambda k: (idx[k] - idx[0]).days / 365.25  # noqa: E731
    npv = -100 - 100 / (1 + got) ** years(half) + 230 / (1 + got) ** years(366)
    assert abs(npv) < 1e-9
    assert 0.18 < got < 0.22  # a gain of 30 on about 150 invested for the year: roughly 20 %


def test_funding_attribution_splits_basis_from_price():
    # hedged pair: spot 100 -> 110, perp 100 -> 111 (premium rises 1 %): the pair loses q x 1 on the basis,
    # and the net delta is 0, so no price P&L
    n = 6
    spot = [100.0, 100.0, 100.0, 105.0, 110.0, 110.0]
    perp = [100.0, 100.0, 100.0, 105.5, 111.0, 111.0]
    rates = [2e-4] * n
    m = market({"BTC-SPOT": spot, "BTC-PERP": perp}, freq="8h", funding={"BTC-PERP": rates})
    over = {**alloc(funding=0.8, tactical=0.2), "funding.underlyings": ["BTC"], "tactical.weights": {"BTC": 1.0},
            "funding.exit_premium": 0.05}
    r = simulate(m, cfg(**over), engines=["funding", "tactical"])
    a = r.attribution()
    q = r.positions["BTC-SPOT"].iloc[-1]
    assert q > 0 and r.positions["BTC-PERP"].iloc[-1] == pytest.approx(-q)
    assert a.loc["funding", "price"] == pytest.approx(0.0, abs=1e-9)
    assert a.loc["funding", "basis"] == pytest.approx(-q * 1.0, rel=1e-9)  # entry at 100/100, now 110/111
    assert a.loc["funding", "funding"] == pytest.approx(r.funding_payments["amount"].sum())
    assert a["check"].abs().max() < 1e-6
