"""Multi-decade studies: the whole four-engine system over many synthetic histories, as a distribution.

    >>> study = multi_decade_study(years=40, seeds=range(20))
    >>> study.runs        # one row per seed: CAGR, money-weighted return, drawdown, breaker trips, ...
    >>> study.summary()   # quantiles across seeds

One path proves little: a regime-switching market of 30-50 years holds several crashes and manias, and where
they fall changes everything for a drawdown ladder. Each seed is an independent `synthetic` history (same
calibration); contributions follow the config's monthly DCA, so the money-weighted return is reported next to
the time-weighted figures.
"""
from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd

from eternal_engine.config import Config
from eternal_engine.errors import ConfigError

COLUMNS = ("cagr", "sharpe", "max_drawdown", "money_weighted_return", "final_equity", "contributions",
           "max_breaker_level", "halts", "liquidations")


@dataclass
class StudyResult:
    runs: pd.DataFrame
    years: float
    freq: str

    def summary(self, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95)) -> pd.DataFrame:
        """Quantiles across seeds, and (row ``p_any``) the share of seeds with at least one L4 halt or
        liquidation."""
        q = self.runs[list(COLUMNS)].astype(float).quantile(list(quantiles))
        q.index = [f"q{int(x * 100):02d}" for x in quantiles]
        share = pd.DataFrame([[float("nan")] * len(COLUMNS)], columns=list(COLUMNS), index=["p_any"])
        share.loc["p_any", "halts"] = float((self.runs["halts"] > 0).mean())
        share.loc["p_any", "liquidations"] = float((self.runs["liquidations"] > 0).mean())
        return pd.concat([q, share])


def one_run(seed: int, years: float, freq: str, config_dict: dict, engines) -> dict:
    """Statistics of the system on ``synthetic(years, freq, seed)`` (a plain function: any executor runs it)."""
    import eternal_engine as ee
    from eternal_engine.sim.records import EV_HALT

    cfg = Config.from_dict(config_dict)
    r = ee.backtest(ee.synthetic(years=years, freq=freq, seed=seed), cfg, engines=engines)
    s = r.stats()
    return {"seed": seed, **{k: s[k] for k in COLUMNS if k in s.index},
            "halts": int((r.event_records["kind"] == EV_HALT).sum())}


def multi_decade_study(years: float = 40.0, seeds=range(20), *, freq: str = "1D", config: Config | None = None,
                       engines=None, executor: Executor | None = None) -> StudyResult:
    """Run the system on one synthetic history per seed; see the module docstring."""
    seeds = list(seeds)
    if not seeds:
        raise ConfigError("seeds is empty: pass e.g. range(20)")
    if not years > 0:
        raise ConfigError(f"years must be > 0, got {years!r}")
    cfg = (config or Config()).to_dict()
    own = executor is None
    pool = ThreadPoolExecutor() if own else executor
    try:
        rows = list(pool.map(one_run, seeds, [years] * len(seeds), [freq] * len(seeds), [cfg] * len(seeds),
                             [engines] * len(seeds)))
    finally:
        if own:
            pool.shutdown()
    return StudyResult(pd.DataFrame(rows).set_index("seed"), years, freq)
