"""Parameter sweeps: many configurations of the same backtest, statistics only, in parallel.

    >>> res = sweep(market, grid={"trend.sma_slow": [100, 150, 200], "trend.atr_stop_mult": [2.0, 3.0]})
    >>> res.table.head()          # one row per combination: parameters, statistics, config hash
    >>> res.heatmap("trend.sma_slow", "trend.atr_stop_mult", "sharpe")

Each combination runs the one simulator (`eternal_engine.sim.nb.simulate_nb`, or its copy compiled for TREND alone,
`simulate_trend_nb`) inside one parallel Numba loop over combinations (`research.batch`): inputs shared between
combinations are built once (TREND's indicators once per window), and only each combination's statistics (computed
in the loop from its time-weighted returns, definitions as in `eternal_engine.metrics`) and its daily returns
(float32, for the overfitting statistics) are kept, so memory grows with the number of combinations, not with
combinations x bars. Any ``concurrent.futures.Executor`` can be passed instead, e.g. Dask's
``Client(...).get_executor()``: the work is cut into chunks of combinations and every task carries the market data
once plus its chunk's parameters.
"""
from __future__ import annotations

import contextlib
import gc
import itertools
import math
import os
import sys
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eternal_engine._hints import did_you_mean
from eternal_engine._threads import beside
from eternal_engine.config import ENGINES, Config
from eternal_engine.errors import ConfigError
from eternal_engine.research.batch import day_last_bars, run_batch
from eternal_engine.research.sweep_nb import RUN_STATS, SWEEP_STATS

OBJECTIVES = SWEEP_STATS
_COUNTS = ("n_trades", "max_breaker_level", "liquidations")  # whole numbers in the table
SHARED_TABLES_MB = 256  # TREND's indicator tables are built once per sweep up to this size (`_shared_trend_tables`)


@dataclass
class SweepResult:
    """``table``: parameters, statistics and config hash per combination, best ``objective`` first. The
    statistics are `Result.stats`' of that combination's backtest: of its returns (`SWEEP_STATS`, the
    possible objectives) and of its trading (`RUN_STATS`: trades, breaker, fees, funding, time in market);
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


@contextlib.contextmanager
def _paused_gc():
    """Python's cyclic garbage collector off while a sweep builds its configs, runs its local batches and its
    result table (no reference cycles among them): those allocations trigger collections, and each older-
    generation one scans every object of the process, Numba's compiled code included. They once took about a
    fifth of a 10,000-combination sweep's time; the young ones left scanned the live configs (~10 ms)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


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
    names = check_engines(ENGINES if engines is None else engines)
    if len(data.index) < 2:
        raise ConfigError(f"the data holds {len(data.index)} bar(s): a sweep needs at least 2")
    combos = combinations_of(grid) if combinations is None else [dict(c) for c in combinations]
    if not combos:
        raise ConfigError("combinations is empty")
    daily = np.empty((len(combos), len(day_last_bars(data.index))), dtype=np.float32)  # every row is written
    built = threading.Event()
    with _paused_gc(), beside(lambda: _fault_in(daily, built), name="ee-fault-in"):
        try:
            configs = [config.with_overrides(c) for c in combos]  # validates every combination up front
            hashes = [c.config_hash() for c in configs]
        finally:
            built.set()
    params = tuple(dict.fromkeys(k for c in combos for k in c))
    if "trend" in names:
        from eternal_engine.engines.trend import warmup

        need = max(warmup(c.trend) for c in configs)
        if len(data.index) <= need:
            raise ConfigError(f"the data holds {len(data.index)} bars but TREND's indicators need {need} to warm up "
                              "(trend.sma_slow, 2 x adx_window): give it more data or lower trend.sma_slow in the grid")

    bar = _Progress(len(combos), progress)
    stats = np.empty((len(combos), len(SWEEP_STATS) + len(RUN_STATS)))
    try:
        if executor is None:  # one process: each chunk runs in parallel on all cores inside Numba
            step = chunk_size or max(1000, math.ceil(len(combos) / 10))  # fewer chunks: less waiting at their ends
            with _paused_gc():
                tables, rows = _shared_trend_tables(data, configs) if "trend" in names else (None, None)
                for i in range(0, len(combos), step):
                    j = min(i + step, len(combos))
                    run_batch(data, configs[i:j], combos[i:j], names, stats=stats[i:j], daily=daily[i:j],
                              trend_tables=None if tables is None else (tables, rows[i:j]))
                    bar.step(j - i)
        else:  # the collector stays on while remote work (possibly hours of it) is awaited
            step = chunk_size or max(1, math.ceil(len(combos) / (4 * (os.cpu_count() or 1))))
            base = config.to_dict()
            futures = [(i, executor.submit(run_chunk, data, base, names, combos[i:i + step]))
                       for i in range(0, len(combos), step)]
            for i, fut in futures:
                s, d = fut.result()
                stats[i:i + len(s)], daily[i:i + len(s)] = s, d
                bar.step(len(s))
    finally:
        bar.close()

    with _paused_gc():
        table = pd.DataFrame({**{p: [c.get(p) for c in combos] for p in params},
                              **{name: stats[:, k].astype(np.int64) if name in _COUNTS else stats[:, k]
                                 for k, name in enumerate(SWEEP_STATS + RUN_STATS)}})
        table.insert(0, "combo", np.arange(len(combos)))
        table["config_hash"] = hashes
        table = table.sort_values(objective, ascending=objective == "volatility_ann", na_position="last",
                                  kind="stable").reset_index(drop=True)
    days = pd.date_range(data.index[0].tz_convert("UTC").tz_localize(None).normalize(), periods=daily.shape[1],
                         freq="D")
    daily_df = pd.DataFrame(daily.T, index=days, columns=range(len(combos)), copy=False)  # pandas stores it as is
    return SweepResult(table, daily_df, objective, params, config)


def _fault_in(a: np.ndarray, stop: threading.Event, piece: int = 4 * 2**20) -> None:
    """First-touch ``a`` on another core while the configs are built, a piece at a time until ``stop`` is set:
    first-touching 150 MB of fresh memory can cost as much as building 10,000 configs (2-3 ms/MB on this VM,
    far less at other times), and the rest is touched by the kernel's own writes on every core rather than
    waited for here. numpy drops the GIL while filling."""
    flat = a.reshape(-1)
    step = max(1, piece // a.itemsize)
    for i in range(0, flat.size, step):
        if stop.is_set():
            return
        flat[i:i + step] = np.nan


def _shared_trend_tables(data, configs: list) -> tuple:
    """TREND's indicator tables for all ``configs`` at once (each window computed once, not once per chunk) if
    they take at most `SHARED_TABLES_MB`; else ``(None, None)``: each chunk then builds the tables of its own
    windows, so memory stays bounded by a chunk's windows (a sweep over thousands of distinct windows)."""
    from eternal_engine.engines import trend as trend_engine

    trends = [c.trend for c in configs]
    tables = (len({w for t in trends for w in (t.sma_fast, t.sma_slow)}) + len({t.atr_window for t in trends})
              + 2 * len({t.adx_window for t in trends}))  # ADX and its float32 confidence: under two tables
    if tables * data.arrays.close.nbytes > SHARED_TABLES_MB * 2**20:
        return None, None
    return trend_engine.indicator_tables(data, trends)


def run_chunk(data, base: dict, engines, combos: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Statistics and daily returns of ``combos`` (override dicts on the ``base`` config dict) on ``data``
    (see `run_batch`). A plain function of picklable arguments, so any executor can run it."""
    base_cfg = Config.from_dict(base)
    return run_batch(data, [base_cfg.with_overrides(c) for c in combos], combos, tuple(engines))


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
