"""The public API contract and the README's promises."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import eternal_engine as ee

README = Path(__file__).parents[1] / "README.md"


def test_import_is_lazy_no_pandas_no_numba():
    code = "import sys, eternal_engine; print(sorted(m for m in ('pandas', 'numba', 'quantstats') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_backtest_result_contract():
    r = ee.backtest(ee.load_sample(), start="2018-01-01", end="2021-12-31")
    assert isinstance(r, ee.BacktestResult)
    assert isinstance(r.equity, pd.Series) and isinstance(r.returns, pd.Series)
    assert r.equity.index[0] == pd.Timestamp("2018-01-01", tz="UTC")
    assert r.equity.index[-1] == pd.Timestamp("2021-12-31", tz="UTC")
    assert {"symbol", "side", "qty", "price", "fee"} <= set(r.orders.columns)
    assert set(r.orders["side"]) <= {"buy", "sell"} and (r.orders["qty"] > 0).all()
    assert isinstance(r.orders.index, pd.DatetimeIndex)
    assert isinstance(r.positions, pd.DataFrame) and isinstance(r.trades, pd.DataFrame)
    # time-weighted returns: DCA contributions add to equity but are never a return
    c = r.contributions
    assert c.sum() == 12_000 * 4 - 1_000  # monthly 1,000 from Feb 2018 to Dec 2021
    prev = r.equity.shift(1).fillna(100_000)
    np.testing.assert_allclose(r.returns, (r.equity - c) / prev - 1, rtol=1e-12)
    s = r.stats()
    for key in ("total_return", "cagr", "volatility_ann", "sharpe", "sortino", "max_drawdown", "calmar",
                "win_rate", "n_periods"):
        assert key in s.index


def test_backtest_accepts_dict_and_yaml_configs(tmp_path):
    m = ee.load_sample().slice(end="2019-12-31")
    a = ee.backtest(m, {"trend": {"sma_slow": 100}})
    y = tmp_path / "c.yaml"
    y.write_text("trend:\n  sma_slow: 100\n")
    b = ee.backtest(m, str(y))
    pd.testing.assert_series_equal(a.equity, b.equity)
    with pytest.raises(ee.DataError, match="MarketData"):
        ee.backtest(m.close)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    text = README.read_text()
    main = re.search(r"<!-- main-command -->\s*```bash\n(.+?)\n```", text).group(1)
    test = re.search(r"<!-- test-command -->\s*```bash\n(.+?)\n```", text).group(1)
    assert "eternal-engine backtest" in main and "report.html" in main
    assert "pytest" in test
    ci = (README.parent / ".ci" / "run").read_text()
    assert "test-command" in ci


def test_readme_tour_runs(tmp_path, monkeypatch):
    block = re.search(r"## A short tour\s*```python\n(.+?)\n```", README.read_text(), re.S).group(1)
    block = block.replace("years=30", "years=1")  # same code, smaller market
    monkeypatch.chdir(README.parent)
    block = block.replace('"report.html"', repr(str(tmp_path / "report.html")))
    exec(compile(block, "README tour", "exec"), {})
    assert (tmp_path / "report.html").exists()


def test_stats_trade_and_exposure_figures_match_the_frames():
    from eternal_engine.metrics import trade_stats

    r = ee.backtest(ee.load_sample())
    s = r.stats()
    gross = (r.positions.abs() * r.market.close).sum(axis=1) / r.equity
    assert s["exposure_avg"] == pytest.approx(gross.mean(), rel=1e-12)
    assert s["time_in_market"] == pytest.approx((gross > 0).mean(), rel=1e-12)
    t = trade_stats(r.trades)
    for key in ("win_rate", "avg_return", "profit_factor", "expectancy", "avg_bars_held"):
        assert s[f"trade_{key}"] == pytest.approx(t[key], rel=1e-12)
    assert s["n_trades"] == t["n_trades"] == len(r.trades)
