"""eternal_engine.research.bootstrap: the stationary bootstrap's defining properties, reproducibility,
hand-worked paths and input errors."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import eternal_engine.research.bootstrap as bs
from eternal_engine.config import RiskConfig
from eternal_engine.errors import ConfigError, DataError
from eternal_engine.research.bootstrap import (
    bootstrap_returns,
    bootstrap_summary,
    bootstrap_trades,
    check_bootstrap_arguments,
    stationary_bootstrap_indices,
)
from eternal_engine.research.bootstrap_nb import path_growth_nb, stationary_indices_nb


def _daily(values, start="2020-01-01"):
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="D", tz="UTC"))


def _block_lengths(idx):
    """Complete block lengths of each path (the last, truncated block of a path is left out). A new block
    that happens to start at the next index cannot be told apart (probability 1/n per restart)."""
    n = idx.shape[1]
    out = []
    for row in idx:
        cont = row[1:] == (row[:-1] + 1) % n
        starts = np.flatnonzero(np.r_[True, ~cont])
        out.append(np.diff(starts))
    return np.concatenate(out)


# ------------------------------------------------------------------------------------------------ indices

def test_kernel_hand_worked():
    """n = 5, p = 0.5: restarts where u < 0.5 (and at t = 0); starts floor(s * 5) consumed in order."""
    u = np.array([[0.9, 0.7, 0.2, 0.6, 0.1], [0.3, 0.4, 0.9, 0.8, 0.7]])
    start_u = np.array([0.61, 0.05, 0.99, 0.85, 0.42])  # -> 3, 0, 4, | 4, 2
    out = np.empty((2, 5), dtype=np.int64)
    used = stationary_indices_nb(u, start_u, 0.5, out)
    # path 0: t0 start 3; t1 continue 4; t2 restart 0; t3 continue 1; t4 restart 4
    # path 1: t0 start 4; t1 restart (u 0.4 < 0.5) at 2; then 3, 4, wrap to 0
    np.testing.assert_array_equal(out, [[3, 4, 0, 1, 4], [4, 2, 3, 4, 0]])
    assert used == 5


@pytest.mark.parametrize("mean_block", [1.0, 4.0, 12.5])
def test_mean_block_length(mean_block):
    """Block lengths are geometric with mean ``mean_block``: 300 paths of 3,000 give ~70,000 (or, at 12.5,
    ~72,000 / 12.5 = 5,800) complete blocks, so the empirical mean is within 3 % (≥ 6 standard errors)."""
    idx = stationary_bootstrap_indices(3000, mean_block, 300, seed=123)
    lengths = _block_lengths(idx)
    assert lengths.mean() == pytest.approx(mean_block, rel=0.03)
    if mean_block > 1:
        # Geometric: P(L = 1) = p
        assert np.mean(lengths == 1) == pytest.approx(1 / mean_block, rel=0.06)


def test_indices_are_blocks_of_the_input():
    n = 50
    idx = stationary_bootstrap_indices(n, 5, 200, seed=9)
    assert idx.shape == (200, n) and idx.dtype == np.int64
    assert idx.min() >= 0 and idx.max() < n
    # Starting positions are uniform: every index is used, none strongly favoured.
    counts = np.bincount(idx.ravel(), minlength=n)
    assert counts.min() > 0.7 * counts.mean() and counts.max() < 1.3 * counts.mean()


def test_paths_draw_every_value_from_the_input():
    values = _daily(np.random.default_rng(0).normal(0, 0.02, 40))
    idx = stationary_bootstrap_indices(40, 4, 25, seed=5)
    paths = values.to_numpy()[idx]
    assert np.isin(paths, values.to_numpy()).all()
    # and in blocks: each step either continues the block (next input value, wrapping) or restarts.
    cont = idx[:, 1:] == (idx[:, :-1] + 1) % 40
    assert 0.6 < cont.mean() < 0.9  # 1 - 1/4 = 0.75 continue on average


def test_reproducible_and_seed_dependent(monkeypatch):
    a = stationary_bootstrap_indices(500, 7, 40, seed=42)
    b = stationary_bootstrap_indices(500, 7, 40, seed=42)
    c = stationary_bootstrap_indices(500, 7, 40, seed=43)
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.9
    # More paths extend the same sample; the chunking (a memory detail) does not change anything.
    np.testing.assert_array_equal(stationary_bootstrap_indices(500, 7, 100, seed=42)[:40], a)
    monkeypatch.setattr(bs, "_CHUNK_ELEMENTS", 1234)
    np.testing.assert_array_equal(stationary_bootstrap_indices(500, 7, 40, seed=42), a)


# ------------------------------------------------------------------------------------------------ paths

def test_path_growth_hand_worked():
    """values (0.10, -0.20, 0.05, 0.10):
    path [0, 1, 2, 3]: equity 1.1, 0.88, 0.924, 1.0164 -> total 0.0164; peak 1.1, dd 0.88 / 1.1 - 1 = -0.20
    path [1, 1, 0, 3]: equity 0.8, 0.64, 0.704, 0.7744 -> total -0.2256; peak 1 (the start), dd -0.36
    path [3, 0, 1, 2]: equity 1.1, 1.21, 0.968, 1.0164 -> total 0.0164; dd 0.968 / 1.21 - 1 = -0.20"""
    values = np.array([0.10, -0.20, 0.05, 0.10])
    idx = np.array([[0, 1, 2, 3], [1, 1, 0, 3], [3, 0, 1, 2]], dtype=np.int64)
    total, mdd = np.empty(3), np.empty(3)
    path_growth_nb(values, idx, total, mdd)
    np.testing.assert_allclose(total, [0.0164, -0.2256, 0.0164], rtol=1e-12)
    np.testing.assert_allclose(mdd, [-0.20, -0.36, -0.20], rtol=1e-12)


def test_bootstrap_returns_hand_worked_cagr_and_breakers(monkeypatch):
    """The same three paths through bootstrap_returns (indices fixed), 4 bars at 2 bars a year = 2 years:
    CAGR = sqrt(1 + total) - 1: sqrt(1.0164) - 1 = 0.0081658, sqrt(0.7744) - 1 = 0.88 - 1 = -0.12.
    Breakers at 0.10/0.15/0.20/0.25: drawdowns of 20 % reach L1-L3 (not L4), 36 % reaches all four."""
    fixed = np.array([[0, 1, 2, 3], [1, 1, 0, 3], [3, 0, 1, 2]], dtype=np.int64)
    monkeypatch.setattr(bs, "_index_chunks", lambda n, m, k, seed: iter([(0, fixed)]))
    df = bootstrap_returns(np.array([0.10, -0.20, 0.05, 0.10]), n_paths=3, mean_block=2, seed=0,
                           periods_per_year=2)
    np.testing.assert_allclose(df["cagr"], [math.sqrt(1.0164) - 1, -0.12, math.sqrt(1.0164) - 1], rtol=1e-12)
    assert list(df.columns) == ["total_return", "cagr", "max_drawdown", "hit_0.10", "hit_0.15", "hit_0.20",
                                "hit_0.25"]
    # 0.2 is computed as 0.88 / 1.1 - 1: check the level logic on the 36 % path and below/above 20 %
    assert df.loc[1, ["hit_0.10", "hit_0.15", "hit_0.20", "hit_0.25"]].tolist() == [True] * 4
    assert df.loc[0, ["hit_0.10", "hit_0.15", "hit_0.25"]].tolist() == [True, True, False]
    s = bootstrap_summary(df)
    assert s["p_hit_0.25"] == pytest.approx(1 / 3)
    assert s["p_hit_0.10"] == 1.0
    assert s["p_loss"] == pytest.approx(1 / 3)
    assert s["cagr_q50"] == pytest.approx(math.sqrt(1.0164) - 1)


def test_constant_returns_every_path_identical():
    """Whatever the blocks, 1 % a day for 365 days compounds to 1.01**365 - 1 with no drawdown."""
    df = bootstrap_returns(_daily(np.full(365, 0.01)), n_paths=50, mean_block=10, seed=1)
    assert df.attrs["periods_per_year"] == 365.0 and df.attrs["years"] == pytest.approx(1.0)
    np.testing.assert_allclose(df["total_return"], 1.01 ** 365 - 1, rtol=1e-10)
    np.testing.assert_allclose(df["cagr"], 1.01 ** 365 - 1, rtol=1e-10)
    assert (df["max_drawdown"] == 0).all() and not df.filter(like="hit_").to_numpy().any()


def test_bootstrap_returns_equals_compounding_the_indexed_paths():
    r = _daily(np.random.default_rng(2).normal(0.0005, 0.03, 400))
    df = bootstrap_returns(r, n_paths=30, mean_block=6, seed=77)
    paths = r.to_numpy()[stationary_bootstrap_indices(400, 6, 30, seed=77)]
    eq = np.cumprod(1 + paths, axis=1)
    peak = np.maximum.accumulate(np.maximum(eq, 1.0), axis=1)
    np.testing.assert_allclose(df["total_return"], eq[:, -1] - 1, rtol=1e-10)
    np.testing.assert_allclose(df["max_drawdown"], np.minimum((eq / peak).min(axis=1) - 1, 0), rtol=1e-10)
    np.testing.assert_allclose(df["cagr"], eq[:, -1] ** (365 / 400) - 1, rtol=1e-10)


def test_bootstrap_returns_reproducible():
    r = _daily(np.random.default_rng(3).normal(0.001, 0.03, 500))
    a = bootstrap_returns(r, n_paths=200, mean_block=10, seed=11)
    b = bootstrap_returns(r, n_paths=200, mean_block=10, seed=11)
    c = bootstrap_returns(r, n_paths=200, mean_block=10, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["cagr"], c["cagr"])
    pd.testing.assert_series_equal(bootstrap_summary(a), bootstrap_summary(b))


def test_progress_counts_paths_on_stderr_and_changes_nothing(monkeypatch, capsys):
    r = _daily(np.random.default_rng(3).normal(0.001, 0.03, 500))
    quiet = bootstrap_returns(r, n_paths=200, mean_block=10, seed=11)
    monkeypatch.setattr(bs, "_CHUNK_ELEMENTS", 500 * 50)  # 50 paths a chunk: four updates
    shown = bootstrap_returns(r, n_paths=200, mean_block=10, seed=11, progress=True)
    err = capsys.readouterr().err
    pd.testing.assert_frame_equal(shown, quiet)
    assert [f"{k}/200 paths" in err for k in (50, 100, 150, 200)] == [True] * 4
    assert err.endswith("\n")
    bootstrap_trades(r, n_paths=20, seed=0)
    assert capsys.readouterr().err == ""  # off by default


def test_arguments_can_be_checked_before_the_series_exists():
    assert check_bootstrap_arguments(100, n_paths=10, mean_block=5, seed=3) == (10, 5.0, 3)
    with pytest.raises(ConfigError, match="mean_block must be a number between 1 and the series length 100"):
        check_bootstrap_arguments(100, n_paths=10, mean_block=500, seed=3)
    with pytest.raises(ConfigError, match="n_paths must be an integer >= 1"):
        check_bootstrap_arguments(100, n_paths=0, mean_block=5, seed=3)
    with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
        check_bootstrap_arguments(100, n_paths=10, mean_block=5, seed=-1)


@given(st.integers(0, 2**32 - 1))
def test_breaker_probability_monotone_in_level(seed):
    r = _daily(np.random.default_rng(seed).normal(0.0005, 0.03, 300))
    levels = np.round(np.linspace(0.05, 0.6, 12), 2)
    s = bootstrap_summary(bootstrap_returns(r, n_paths=100, mean_block=5, seed=seed, breaker_levels=levels))
    p = np.array([s[f"p_hit_{lv:.2f}"] for lv in levels])
    assert (np.diff(p) <= 0).all()
    assert p[0] > 0  # 300 days at 3 % daily vol always see a 5 % drawdown


def test_default_levels_follow_risk_config():
    df = bootstrap_returns(np.random.default_rng(0).normal(0, 0.02, 100), n_paths=5, mean_block=3, seed=0,
                           periods_per_year=365)
    assert df.attrs["breaker_levels"] == RiskConfig().breaker_levels
    assert [c for c in df.columns if c.startswith("hit_")] == [f"hit_{x:.2f}" for x in RiskConfig().breaker_levels]


# ------------------------------------------------------------------------------------------------ trades

def test_bootstrap_trades_from_a_trades_frame():
    trades = pd.DataFrame({
        "entry_time": pd.to_datetime(["2020-01-01", "2020-06-01", "2021-01-01", "2021-06-01"], utc=True),
        "exit_time": pd.to_datetime(["2020-03-01", "2020-09-01", "2022-01-01", None], utc=True),
        "return": [0.10, -0.20, 0.05, 0.50],  # the last trade is still open: dropped
    })
    df = bootstrap_trades(trades, n_paths=40, mean_block=1, seed=4)
    assert df.attrs["n_periods"] == 3
    assert df.attrs["years"] == pytest.approx(731 / 365)  # 2020-01-01 .. 2022-01-01
    # Every path compounds three of the closed trades' returns: its total is a product of their factors.
    factors = np.array([1.10, 0.80, 1.05])
    possible = {round(float(np.prod(factors[list(c)])) - 1, 12)
                for c in np.array(np.meshgrid(*[range(3)] * 3)).T.reshape(-1, 3)}
    assert set(np.round(df["total_return"], 12)) <= possible
    np.testing.assert_allclose(df["cagr"], (1 + df["total_return"]) ** (365 / 731) - 1, rtol=1e-12)


def test_bootstrap_trades_series_and_years():
    s = pd.Series([0.02, -0.01, 0.03, -0.04, 0.01],
                  index=pd.date_range("2020-01-01", periods=5, freq="90D"))
    df = bootstrap_trades(s, n_paths=10, mean_block=2, seed=0)
    assert df.attrs["years"] == pytest.approx(360 / 365)
    df2 = bootstrap_trades(s.to_numpy(), n_paths=10, mean_block=2, seed=0, years=360 / 365)
    pd.testing.assert_frame_equal(df, df2)
    with pytest.raises(DataError, match="years.*Fix: pass years="):
        bootstrap_trades(s.to_numpy(), n_paths=10, seed=0)


# ------------------------------------------------------------------------------------------------ errors

def test_errors():
    r = _daily([0.01, np.nan, 0.02, 0.0])
    with pytest.raises(DataError, match="NaN.*2020-01-02.*Fix:"):
        bootstrap_returns(r, n_paths=5, mean_block=2, seed=0)
    with pytest.raises(DataError, match="periods_per_year"):
        bootstrap_returns(np.zeros(10), n_paths=5, mean_block=2, seed=0)
    ok = _daily(np.zeros(10))
    with pytest.raises(ConfigError, match="mean_block"):
        bootstrap_returns(ok, n_paths=5, mean_block=0.5, seed=0)
    with pytest.raises(ConfigError, match="mean_block"):
        bootstrap_returns(ok, n_paths=5, mean_block=11, seed=0)
    with pytest.raises(ConfigError, match="seed"):
        bootstrap_returns(ok, n_paths=5, mean_block=2, seed=None)
    with pytest.raises(ConfigError, match="n_paths"):
        bootstrap_returns(ok, n_paths=0, mean_block=2, seed=0)
    with pytest.raises(ConfigError, match="breaker_levels"):
        bootstrap_returns(ok, n_paths=5, mean_block=2, seed=0, breaker_levels=[10])
    with pytest.raises(ConfigError, match="n must be"):
        stationary_bootstrap_indices(1, 1, 5, 0)
    with pytest.raises(DataError, match="'return'"):
        bootstrap_trades(pd.DataFrame({"pnl": [1.0, 2.0]}), n_paths=5, seed=0, years=1)
    with pytest.raises(DataError, match="bootstrap_summary"):
        bootstrap_summary(pd.DataFrame({"x": [1]}))
