"""Multi-decade studies: one independent history per seed, summarised as a distribution."""
import pytest

import eternal_engine as ee
from eternal_engine.errors import ConfigError
from eternal_engine.research.studies import multi_decade_study


def test_each_row_is_the_backtest_of_its_seed_and_the_summary_spans_them():
    st = multi_decade_study(years=30, seeds=[3, 5, 8])
    assert list(st.runs.index) == [3, 5, 8]
    r = ee.backtest(ee.synthetic(years=30, freq="1D", seed=5))
    s = r.stats()
    for k in ("cagr", "sharpe", "max_drawdown", "money_weighted_return", "final_equity"):
        assert st.runs.loc[5, k] == pytest.approx(s[k], rel=1e-12)
    assert st.runs.loc[5, "contributions"] == pytest.approx(1000.0 * (30 * 12 - 1), abs=1000.0)  # monthly DCA
    summ = st.summary(quantiles=(0.0, 1.0))
    assert summ.loc["q00", "cagr"] == pytest.approx(st.runs["cagr"].min())
    assert summ.loc["q100", "cagr"] == pytest.approx(st.runs["cagr"].max())
    assert 0.0 <= summ.loc["p_any", "halts"] <= 1.0
    assert st.runs["cagr"].nunique() == 3  # different histories


def test_bad_study_arguments():
    with pytest.raises(ConfigError, match="seeds is empty"):
        multi_decade_study(seeds=[])
    with pytest.raises(ConfigError, match="years must be > 0"):
        multi_decade_study(years=0, seeds=[1])
