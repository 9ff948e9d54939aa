"""Parameter sweeps: many configurations of the same backtest, statistics only, in parallel.

    >>> res = sweep(market, grid={"trend.sma_slow": [100, 150, 200], "trend.atr_stop_mult": [2.0, 3.0]})
    >>> res.table.head()          # one row per combination: parameters, statistics, config hash
    >>> res.heatmap("trend.sma_slow", "trend.atr_stop_mult", "sharpe")

Each combination runs the one simulator (`eternal_engine.sim.simulate`); only its statistics (computed by a
Numba kernel from the time-weighted returns, definitions as in `eternal_engine.metrics`) and its daily returns
(for the overfitting statistics) are kept, so memory grows with the number of combinations, not with
combinations x bars. Locally the combinations run on a thread pool (the bar loop releases the GIL). Any
``concurrent.futures.Executor`` can be passed instead, e.g. Dask's ``Client(...).get_executor()``: the work is
cut into chunks of combinations and every task carries the market data once plus its chunk's parameters.
"""
from __future__ import annotations

import itertools
import math
import os
import sys
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eternal_engine._hints import did_you_mean
from eternal_engine.config import Config
from eternal_engine.errors import ConfigError
from eternal_engine.research.sweep_nb import SWEEP_STATS

OBJECTIVES = SWEEP_STATS


@dataclass
class SweepResult:
    """``table``: parameters, statistics and config hash per combination, best ``objective`` first;
    ``daily_returns``: days x combinations (columns = the table's ``combo`` ids), for PBO and DSR."""

    table: pd.DataFrame
    daily_returns: pd.DataFrame
    objective: str
    params: tuple[str, ...]
    base_config: Config

    def best(self) -> pd.Series:
        return self.table.iloc[0]

    def best_config(self) -> Config:
        row = self.best()
        return self.base_config.with_overrides({k: _plain(row[k]) for k in self.params})

    def deflated_sharpe(self, n_trials: int | None = None):
        """Deflated Sharpe ratio of the sweep's best daily Sharpe, against all its combinations as trials
        (`research.overfitting.deflated_sharpe_ratio`; pass a smaller ``n_trials`` for correlated trials)."""
        from eternal_engine.research.overfitting import deflated_sharpe_ratio

        return deflated_sharpe_ratio(self.daily_returns.fillna(0.0), n_trials=n_trials)

    def pbo(self, n_splits: int = 16, metric: str = "sharpe"):
        """Probability of backtest overfitting of the sweep by CSCV on its daily returns
        (`research.overfitting.probability_of_backtest_overfitting`)."""
        from eternal_engine.research.overfitting import probability_of_backtest_overfitting

        return probability_of_backtest_overfitting(self.daily_returns.fillna(0.0), n_splits=n_splits,
                                                   metric=metric)

    def heatmap(self, x: str, y: str, metric: str | None = None):
        """A matplotlib Figure of ``metric`` (default: the objective) over two parameters, averaged over the
        others."""
        from matplotlib.figure import Figure

        metric = metric or self.objective
        for name in (x, y):
            if name not in self.params:
                raise ConfigError(f"{name!r} is not a swept parameter{did_you_mean(name, self.params)}")
        grid = self.table.pivot_table(index=y, columns=x, values=metric, aggfunc="mean")
        fig = Figure(figsize=(1.2 + 0.9 * grid.shape[1], 1.0 + 0.6 * grid.shape[0]))
        ax = fig.add_subplot()
        im = ax.imshow(grid.to_numpy(dtype=float), cmap="RdYlGn", aspect="auto", origin="lower")
        ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [str(i) for i in grid.index])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(metric)
        for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=8)
        fig.colorbar(im, ax=ax)
        return fig


def combinations_of(grid: dict) -> list[dict]:
    """The full product of ``grid`` (dotted key -> list of values) as a list of override dicts."""
    if not isinstance(grid, dict) or not grid:
        raise ConfigError("grid is empty: give at least one parameter with values, e.g. {'trend.sma_slow': [100, 200]}")
    keys = list(grid)
    values = []
    for k in keys:
        v = grid[k]
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            raise ConfigError(f"grid[{k!r}] must be a list of values, got {v!r}")
        v = list(v)
        if not v:
            raise ConfigError(f"grid[{k!r}] is empty: give it at least one value")
        values.append(v)
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def sweep(data, config: Config | None = None, grid: dict | None = None, *, combinations: list[dict] | None = None,
          engines=None, objective: str = "sharpe", executor: Executor | None = None, chunk_size: int | None = None,
          progress: bool = True) -> SweepResult:
    """Run every combination of ``grid`` (or the given list of ``combinations``) and rank them by ``objective``.

    Bad input fails before any work: an unknown key (with a did-you-mean hint), an empty grid, a value the
    config rejects, an unknown objective.
    """
    from eternal_engine.sim import check_engines

    config = config or Config()
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective {objective!r} is not a statistic{did_you_mean(objective, OBJECTIVES)}; "
                          f"choose one of {list(OBJECTIVES)}")
    combos = combinations_of(grid) if combinations is None else [dict(c) for c in combinations]
    if not combos:
        raise ConfigError("combinations is empty")
    params = tuple(dict.fromkeys(k for c in combos for k in c))
    hashes = [config.with_overrides(c).config_hash() for c in combos]  # validates every combination up front
    engines = check_engines(engines) if engines is not None else None

    workers = os.cpu_count() or 1
    if chunk_size is None:
        chunk_size = max(1, math.ceil(len(combos) / (4 * workers)))
    chunks = [list(range(i, min(i + chunk_size, len(combos)))) for i in range(0, len(combos), chunk_size)]
    base = config.to_dict()
    own = executor is None
    pool = ThreadPoolExecutor(max_workers=workers) if own else executor
    bar = _Progress(len(combos), progress)
    stats, daily = [None] * len(combos), [None] * len(combos)
    try:
        futures = [(idx, pool.submit(run_chunk, data, base, engines, [combos[i] for i in idx])) for idx in chunks]
        for idx, fut in futures:
            for i, (s, d) in zip(idx, fut.result()):
                stats[i], daily[i] = s, d
            bar.step(len(idx))
    finally:
        if own:
            pool.shutdown(wait=True)
        bar.close()

    table = pd.DataFrame([{**c, **dict(zip(SWEEP_STATS, s))} for c, s in zip(combos, stats)])
    table.insert(0, "combo", np.arange(len(combos)))
    table["config_hash"] = hashes
    table = table.sort_values(objective, ascending=objective == "volatility_ann", na_position="last",
                              kind="stable").reset_index(drop=True)
    daily_df = pd.concat(daily, axis=1, keys=range(len(combos))) if daily else pd.DataFrame()
    return SweepResult(table, daily_df, objective, params, config)


def run_chunk(data, base: dict, engines, combos: list[dict]) -> list[tuple[np.ndarray, pd.Series]]:
    """Run ``combos`` (override dicts on the ``base`` config dict) on ``data``: statistics and daily returns of
    each. A plain function of picklable arguments, so any executor can run it."""
    from eternal_engine.metrics import periods_per_year_for
    from eternal_engine.report import daily_returns
    from eternal_engine.research.sweep_nb import sweep_stats_nb
    from eternal_engine.sim import simulate

    base_cfg = Config.from_dict(base)
    ppy = periods_per_year_for(data.index)
    out = []
    for c in combos:
        r = simulate(data, base_cfg.with_overrides(c), engines=engines)
        rets = r.returns
        s = sweep_stats_nb(rets.to_numpy(), ppy, np.empty(len(SWEEP_STATS)))
        out.append((s, daily_returns(rets)))
    return out


class _Progress:
    def __init__(self, total: int, on: bool):
        self.total, self.done, self.on, self.t0 = total, 0, on and total > 1, time.perf_counter()

    def step(self, k: int) -> None:
        self.done += k
        if self.on:
            dt = time.perf_counter() - self.t0
            eta = dt / self.done * (self.total - self.done)
            print(f"\rsweep: {self.done}/{self.total} combinations, {dt:.1f}s, ~{eta:.0f}s left ", end="",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.on:
            print(file=sys.stderr, flush=True)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v
