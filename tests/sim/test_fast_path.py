"""The bar loop's fast path (runs of bars with an empty book, nothing pending and no possible entry) changes no
output: every record, equity, level and state equals the run with it switched off, bit for bit. So does the
loop's copy compiled for TREND alone (`sim.nb.simulate_trend_nb`) against the general loop."""
from unittest import mock

import numpy as np
import pandas as pd
import pytest

import eternal_engine as ee
from eternal_engine.sim import nb as sim_nb
from eternal_engine.sim import simulate

# TREND-only runs that idle in every way the fast path knows: flat between trades, parked at L2 with entry
# signals blocked, halted at L4 until the cooldown ends, Kelly at 0 (with and without would-be trades)
CASES = {
    "default": {},
    "breaker ladder": {"risk.breaker_levels": [0.002, 0.004, 0.006, 0.008], "risk.recovery_hysteresis": 0.001,
                       "risk.l4_cooldown_days": 20.0, "trend.risk_per_trade": 0.05, "trend.max_position": 1.0,
                       "risk.max_position_pct": 1.0},
    "parked at L2": {"risk.breaker_levels": [0.002, 0.004, 0.5, 0.6], "risk.recovery_hysteresis": 0.001},
    "kelly": {"risk.kelly_min_trades": 3},
    "kelly shadow": {"risk.kelly_min_trades": 3, "risk.kelly_shadow": True},
    "no contributions": {"portfolio.dca_amount": 0.0, "risk.breaker_levels": [0.002, 0.004, 0.006, 0.008],
                         "risk.recovery_hysteresis": 0.001},
}


def _kernel_call(market, cfg, **kw):
    """The kernel `simulate` runs (`sim.nb.kernel_for`) and the arguments it hands it."""
    captured = []
    choose = sim_nb.kernel_for

    def spy_for(sleeves, n_sleeves):
        kernel = choose(sleeves, n_sleeves)

        def spy(*args):
            captured.append((kernel, args))
            return kernel(*args)

        return spy

    with mock.patch.object(sim_nb, "kernel_for", spy_for):
        simulate(market, cfg, **kw)
    (call,) = captured
    return call


def _run(kernel, args, *extra):
    """``kernel`` on a copy of ``args``: its outputs and the per-bar arrays it wrote."""
    a = [_copy(x) for x in args]
    return kernel(*a, *extra), a[13], a[14], a[15]


def _both_runs(market, cfg, **kw):
    """The simulator's outputs (records and per-bar arrays) with the fast path on and off."""
    kernel, args = _kernel_call(market, cfg, **kw)
    return [_run(kernel, args, fast) for fast in (True, False)]


def _copy(x):
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*(_copy(v) for v in x))
    if isinstance(x, tuple):
        return tuple(_copy(v) for v in x)
    return x


def _assert_identical(fast, slow):
    (out_f, *bars_f), (out_s, *bars_s) = fast, slow
    for a, b in zip(bars_f, bars_s):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(out_f, out_s):
        if a.dtype.names:
            assert len(a) == len(b)
            for f in a.dtype.names:
                np.testing.assert_array_equal(a[f], b[f], err_msg=f)
        else:
            np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def market():
    return ee.synthetic(years=3, freq="1h", seed=5, symbols=("BTC", "ETH")).select(["BTC-PERP", "ETH-PERP"])


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_changes_nothing(market, case):
    cfg = ee.Config().with_overrides({"trend.symbols": ["BTC-PERP", "ETH-PERP"], **CASES[case]})
    fast, slow = _both_runs(market, cfg, engines=["trend"])
    _assert_identical(fast, slow)
    level = fast[2]
    if case == "parked at L2":  # the case must exercise what it is named after
        assert (level == 2).mean() > 0.5
    if case == "breaker ladder":  # parked at L3, halted at L4, then reset by the cooldown
        assert (level == 3).mean() > 0.5 and (level == 4).any() and (level[np.argmax(level == 4):] == 0).any()


def test_fast_path_changes_nothing_in_a_replay(market):
    rng = np.random.default_rng(3)
    qty = np.where(rng.random(len(market.index)) < 0.01, rng.normal(0.0, 1.0, len(market.index)), 0.0)
    orders = pd.DataFrame({"BTC-PERP": qty}, index=market.index)
    fast, slow = _both_runs(market, ee.Config(), orders=orders)
    _assert_identical(fast, slow)
    assert len(fast[0][1]) > 10  # fills happened


@pytest.mark.parametrize("case", list(CASES))
def test_loop_compiled_for_trend_alone_equals_the_general_loop(market, case):
    cfg = ee.Config().with_overrides({"trend.symbols": ["BTC-PERP", "ETH-PERP"], **CASES[case]})
    kernel, args = _kernel_call(market, cfg, engines=["trend"])
    assert kernel is sim_nb.simulate_trend_nb  # what a TREND-only backtest (and sweep) runs
    own, general = _run(kernel, args), _run(sim_nb.simulate_nb, args)
    _assert_identical(own, general)
    assert len(own[0][3]) >= 3  # trades happened (the Kelly cases stop after 3)


def test_loop_compiled_for_trend_alone_refuses_other_sleeves(market):
    orders = pd.DataFrame({"BTC-PERP": 0.0}, index=market.index)
    kernel, args = _kernel_call(market, ee.Config(), orders=orders)  # one sleeve, but the external one
    assert kernel is sim_nb.simulate_nb
    with pytest.raises(ValueError, match="TREND alone"):
        _run(sim_nb.simulate_trend_nb, args)
