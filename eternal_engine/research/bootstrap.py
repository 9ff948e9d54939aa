"""Monte Carlo robustness: stationary block bootstrap of bar returns and of trade sequences.

The stationary bootstrap (Politis & Romano 1994) resamples a series in blocks of random, geometrically
distributed length with mean ``mean_block``, each starting at a uniformly random position and wrapping
around the end of the series. Blocks keep the short-range dependence (volatility clusters, trend runs) that
an iid resampling would destroy, and the resampled series is stationary. ``mean_block = 1`` is the iid
bootstrap.

Each path is as long as the input and is compounded from equity 1. Per path:

==================  ============================================================================================
``total_return``    ``prod(1 + r) - 1`` of the resampled returns
``cagr``            ``(1 + total_return) ** (1 / years) - 1`` with the years the input covers
                    (``n / periods_per_year`` for bars, as ``eternal_engine.metrics``; the ``years`` spanned
                    for trades); NaN if terminal wealth is negative
``max_drawdown``    ``min(equity / running_peak) - 1``, a fraction <= 0, starting equity 1 counting as a peak
``hit_<level>``     whether the drawdown reached each breaker level: ``-max_drawdown >= level`` (the breaker's
                    ``dd >= l`` test). Levels default to ``RiskConfig().breaker_levels`` (0.10, 0.15, 0.20,
                    0.25: L1..L4), giving columns ``hit_0.10`` .. ``hit_0.25``
==================  ============================================================================================

:func:`bootstrap_summary` turns the paths into quantiles and probabilities (``p_hit_0.10``, ``p_loss``, ...).

Caveats, so the numbers are read right: the bootstrap resamples the returns of the run you give it, breaker
and all; it does not re-simulate the breaker (a path that reaches L4 keeps trading in the resampled returns,
where the real system would have stopped), so ``p_hit`` is the probability that the *drawdown path* reaches
the level. For trades, drawdowns are seen at trade closes only (not inside a trade), and compounding
``trade_returns`` assumes each is a return on the whole account: pass returns on equity (P&L over the equity
at entry), not ``result.trades['return']`` (P&L over the position's notional), when the position was a
fraction of the account.

**Reproducibility.** Output is a function of ``(seed, input, mean_block, n_paths)`` only: numpy's
``SeedSequence(seed)`` spawns two PCG64 streams, one for the block-restart uniforms and one for the block
starts, drawn path after path, and the numba kernels take them as inputs. Path ``i`` does not depend on
``n_paths``: asking for more paths extends the same sample.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import pandas as pd

from eternal_engine.config import RiskConfig
from eternal_engine.errors import ConfigError, DataError
from eternal_engine.metrics import _resolve_ppy
from eternal_engine.research.bootstrap_nb import path_growth_nb, stationary_indices_nb

__all__ = [
    "stationary_bootstrap_indices",
    "bootstrap_returns",
    "bootstrap_trades",
    "bootstrap_summary",
    "check_bootstrap_arguments",
    "DEFAULT_QUANTILES",
]

DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""Quantiles reported by :func:`bootstrap_summary` unless told otherwise."""

_CHUNK_ELEMENTS = 1 << 20  # paths are generated in chunks of about this many bars (memory bound only)
_DAYS_PER_YEAR = 365.0


# --------------------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------------------

def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_mean_block(mean_block, n: int) -> float:
    try:
        m = float(mean_block)
    except (TypeError, ValueError):
        m = math.nan
    if not (math.isfinite(m) and 1.0 <= m <= n):
        raise ConfigError(
            f"mean_block must be a number between 1 and the series length {n}, got {mean_block!r}: "
            "1 is the iid bootstrap; a few times the autocorrelation length keeps the dependence "
            "(e.g. 5-20 daily bars, n ** (1/3) as a rule of thumb)"
        )
    return m


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}: results are reproducible "
                          "only from an explicit seed")
    return int(seed)


def check_bootstrap_arguments(n: int, *, n_paths, mean_block, seed) -> tuple[int, float, int]:
    """``(n_paths, mean_block, seed)`` validated for a series of ``n`` values, else `ConfigError` saying what
    to pass. Call it before the work that makes the series (the CLI does, before its backtest)."""
    return _check_int("n_paths", n_paths, 1), _check_mean_block(mean_block, n), _check_seed(seed)


def _levels(breaker_levels) -> tuple[float, ...]:
    if breaker_levels is None:
        return tuple(float(x) for x in RiskConfig().breaker_levels)
    try:
        levels = tuple(float(x) for x in breaker_levels)
    except (TypeError, ValueError):
        raise ConfigError(f"breaker_levels must be drawdown fractions, got {breaker_levels!r}") from None
    if not levels or not all(0.0 < x <= 1.0 for x in levels):
        raise ConfigError(f"breaker_levels must be drawdown fractions in (0, 1], got {breaker_levels!r} "
                          "(0.10 = a 10 % drawdown)")
    return levels


def _level_name(level: float) -> str:
    return f"hit_{level:.2f}" if round(level, 2) == level else f"hit_{level:g}"


def _values(x, what: str) -> np.ndarray:
    if isinstance(x, pd.DataFrame):
        raise DataError(f"{what} must be one column, got a DataFrame",
                        fix="pass a Series (e.g. result.returns) or a 1-D array")
    try:
        a = (x.to_numpy(dtype=np.float64, na_value=np.nan) if isinstance(x, pd.Series)
             else np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError) as e:
        raise DataError(f"{what} are not numeric", fix="pass float returns (fractions, 0.01 = 1%)") from e
    if a.ndim != 1:
        raise DataError(f"{what} must be one-dimensional, got shape {a.shape}", fix="pass one column")
    if a.size < 2:
        raise DataError(f"{what} need at least 2 values to resample, got {a.size}",
                        fix="pass a longer series")
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        label = x.index[i] if isinstance(x, pd.Series) else i
        raise DataError(f"{what} contain {'NaN' if np.isnan(a[i]) else 'infinite'} values",
                        timestamp=label,
                        fix="fill or drop the missing values deliberately before resampling "
                            "(e.g. .fillna(0.0) if the strategy was flat)")
    return a


# --------------------------------------------------------------------------------------------------------------
# Index generation
# --------------------------------------------------------------------------------------------------------------

def _index_chunks(n: int, mean_block: float, n_paths: int, seed: int):
    """Yield ``(first_path, idx)`` chunks of stationary-bootstrap indices, idx shaped (k, n)."""
    g_restart, g_start = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    p = 1.0 / mean_block
    k_max = max(1, _CHUNK_ELEMENTS // n)
    for lo in range(0, n_paths, k_max):
        k = min(k_max, n_paths - lo)
        u = g_restart.random((k, n))  # sequential stream: the same values whatever the chunking
        n_blocks = k + int(np.count_nonzero(u[:, 1:] < p))
        start_u = g_start.random(n_blocks)
        idx = np.empty((k, n), dtype=np.int64)
        used = stationary_indices_nb(u, start_u, p, idx)
        assert used == n_blocks
        yield lo, idx


def stationary_bootstrap_indices(n: int, mean_block: float, n_paths: int, seed: int) -> np.ndarray:
    """Indices of ``n_paths`` stationary-bootstrap resamples of a series of length ``n`` (Politis & Romano
    1994), an int64 array of shape ``(n_paths, n)``: ``values[idx]`` are the resampled paths.

    Each path starts a block at a uniformly random position; at every following step, with probability
    ``1 / mean_block`` a new block starts at a fresh random position, otherwise the block continues with the
    next index (wrapping from ``n - 1`` to 0). Block lengths are geometric with mean ``mean_block``.

    Same arguments, same indices (see the module docstring); different seeds give different indices.

    Raises:
        ConfigError: ``n < 2``, ``mean_block`` outside [1, n], ``n_paths < 1``, a seed that is not a
            non-negative integer.
    """
    n = _check_int("n", n, 2)
    m = _check_mean_block(mean_block, n)
    n_paths = _check_int("n_paths", n_paths, 1)
    seed = _check_seed(seed)
    out = np.empty((n_paths, n), dtype=np.int64)
    for lo, idx in _index_chunks(n, m, n_paths, seed):
        out[lo:lo + idx.shape[0]] = idx
    return out


# --------------------------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------------------------

class _Progress:
    """``montecarlo: done/total paths, elapsed, ~left`` on one stderr line, as the sweep's bar."""

    def __init__(self, total: int, on: bool):
        self.total, self.on, self.t0 = total, on, time.perf_counter()

    def show(self, done: int) -> None:
        if self.on:
            dt = time.perf_counter() - self.t0
            print(f"\rmontecarlo: {done}/{self.total} paths, {dt:.1f}s, ~{dt / done * (self.total - done):.0f}s "
                  "left ", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.on:
            print(file=sys.stderr, flush=True)


def _paths(values: np.ndarray, *, years: float, n_paths, mean_block, seed, breaker_levels,
           attrs: dict, progress: bool) -> pd.DataFrame:
    n = values.size
    n_paths, m, seed = check_bootstrap_arguments(n, n_paths=n_paths, mean_block=mean_block, seed=seed)
    levels = _levels(breaker_levels)
    total = np.empty(n_paths)
    mdd = np.empty(n_paths)
    bar = _Progress(n_paths, progress)
    for lo, idx in _index_chunks(n, m, n_paths, seed):
        k = idx.shape[0]
        path_growth_nb(values, idx, total[lo:lo + k], mdd[lo:lo + k])
        bar.show(lo + k)
    bar.close()
    wealth = 1.0 + total
    with np.errstate(invalid="ignore"):
        cagr = np.where(wealth >= 0, np.power(np.maximum(wealth, 0.0), 1.0 / years) - 1.0, np.nan)
    cols = {"total_return": total, "cagr": cagr, "max_drawdown": mdd}
    for level in levels:
        cols[_level_name(level)] = -mdd >= level
    df = pd.DataFrame(cols, index=pd.RangeIndex(n_paths, name="path"))
    df.attrs.update(attrs, n_periods=n, years=years, mean_block=m, n_paths=n_paths, seed=seed,
                    breaker_levels=levels)
    return df


def bootstrap_returns(returns, *, n_paths: int = 1000, mean_block: float, seed: int,
                      periods_per_year: float | None = None, breaker_levels=None,
                      progress: bool = False) -> pd.DataFrame:
    """Stationary block bootstrap of per-bar returns: one row per path with ``total_return``, ``cagr``,
    ``max_drawdown`` and ``hit_<level>`` for each breaker level (see the module docstring).

    Args:
        returns: per-bar simple returns (Series, e.g. ``result.returns``, or a 1-D array), no NaN.
        n_paths: number of resampled paths, each as long as ``returns``.
        mean_block: mean block length in bars (>= 1; 1 = iid bootstrap).
        seed: non-negative integer; the same seed gives the same frame.
        periods_per_year: bars per year for the CAGR; ``None`` infers it from a DatetimeIndex (365 for daily
            bars, as :func:`eternal_engine.metrics.periods_per_year_for`).
        breaker_levels: drawdown fractions; default ``RiskConfig().breaker_levels`` (0.10, 0.15, 0.20, 0.25).
        progress: print paths done, elapsed and remaining time on stderr (the output does not change).

    Returns:
        A DataFrame indexed by ``path``; ``attrs`` record the inputs (seed, mean_block, n_paths, n_periods,
        years, periods_per_year, breaker_levels, source). Summarise with :func:`bootstrap_summary`.

    Raises:
        DataError: NaN/inf (naming the first timestamp), fewer than 2 bars, no DatetimeIndex to infer
            ``periods_per_year`` from.
        ConfigError: invalid ``n_paths``, ``mean_block``, ``seed``, ``periods_per_year`` or levels.
    """
    values = _values(returns, "returns")
    if periods_per_year is None:
        if not isinstance(returns, pd.Series) or not isinstance(returns.index, pd.DatetimeIndex):
            raise DataError("cannot infer periods_per_year without a DatetimeIndex",
                            fix="pass periods_per_year= (365 for daily bars, 8760 for hourly)")
    ppy = _resolve_ppy(periods_per_year, returns.index if isinstance(returns, pd.Series) else None)
    return _paths(values, years=values.size / ppy, n_paths=n_paths, mean_block=mean_block, seed=seed,
                  breaker_levels=breaker_levels, attrs={"source": "returns", "periods_per_year": ppy},
                  progress=progress)


def bootstrap_trades(trade_returns, *, n_paths: int = 1000, mean_block: float = 1.0, seed: int,
                     years: float | None = None, breaker_levels=None, progress: bool = False) -> pd.DataFrame:
    """Stationary block bootstrap of a trade sequence, compounding one trade return after another: the
    same columns as :func:`bootstrap_returns`, with drawdowns seen at trade closes.

    Args:
        trade_returns: returns per trade in order of exit (fractions of the *account*; see the module
            docstring): a Series, a 1-D array, or a trades DataFrame with a ``return`` column (rows with a
            missing ``exit_time``, i.e. open trades, are dropped).
        n_paths, seed: as :func:`bootstrap_returns`.
        mean_block: mean block length in trades; default 1, the iid trade shuffle-with-replacement (trades
            are usually far less autocorrelated than bars; raise it for streaky strategies).
        years: the time the original trades span, for the CAGR (each path is as many trades, so as many
            years). ``None`` takes it from the data: ``exit_time.max() - entry_time.min()`` of a trades
            frame, or first to last timestamp of a Series with a DatetimeIndex, over 365 days.
        breaker_levels, progress: as :func:`bootstrap_returns`.

    Raises:
        DataError: NaN/inf, fewer than 2 trades, a frame without ``return``, no way to know ``years``.
        ConfigError: invalid ``years``, ``n_paths``, ``mean_block``, ``seed`` or levels.
    """
    span = None
    x = trade_returns
    if isinstance(x, pd.DataFrame):
        if "return" not in x.columns:
            raise DataError("trades frame has no 'return' column",
                            fix="pass result.trades, a frame with a 'return' column, or a Series of returns")
        if "exit_time" in x.columns:
            x = x[x["exit_time"].notna()]
            if "entry_time" in x.columns and len(x):
                span = pd.Timestamp(x["exit_time"].max()) - pd.Timestamp(x["entry_time"].min())
            x = x.sort_values("exit_time", kind="stable")
        x = x["return"]
    elif isinstance(x, pd.Series) and isinstance(x.index, pd.DatetimeIndex) and len(x) > 1:
        span = x.index.max() - x.index.min()
    values = _values(x, "trade returns")
    if years is None:
        if span is None or not span > pd.Timedelta(0):
            raise DataError("cannot tell how many years the trades span (needed for the CAGR)",
                            fix="pass years=, or a trades frame with entry_time/exit_time, or a Series "
                                "indexed by exit time")
        y = span / pd.Timedelta(days=_DAYS_PER_YEAR)
    else:
        try:
            y = float(years)
        except (TypeError, ValueError):
            y = math.nan
        if not (math.isfinite(y) and y > 0):
            raise ConfigError(f"years must be a positive number, got {years!r}")
    return _paths(values, years=y, n_paths=n_paths, mean_block=mean_block, seed=seed,
                  breaker_levels=breaker_levels, attrs={"source": "trades"}, progress=progress)


# --------------------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------------------

def bootstrap_summary(paths: pd.DataFrame, quantiles=DEFAULT_QUANTILES) -> pd.Series:
    """Quantiles and probabilities of a frame from :func:`bootstrap_returns` / :func:`bootstrap_trades`.

    Keys: ``n_paths``; ``cagr_mean``, ``cagr_q05`` .. ``cagr_q95`` and the same for ``max_drawdown`` and
    ``total_return`` (``q05`` = the 5 % quantile; quantiles of ``max_drawdown`` are of the signed fraction,
    so ``max_drawdown_q05`` is the bad tail); ``p_loss`` = share of paths ending below their start;
    ``p_hit_<level>`` = share of paths whose drawdown reached each breaker level. NaN CAGRs (paths wiped out)
    are left out of the CAGR quantiles.
    """
    if not isinstance(paths, pd.DataFrame) or "max_drawdown" not in paths.columns:
        raise DataError("bootstrap_summary needs the frame returned by bootstrap_returns / bootstrap_trades",
                        fix="pass the output of bootstrap_returns(...) unchanged")
    try:
        qs = [float(q) for q in quantiles]
    except (TypeError, ValueError):
        raise ConfigError(f"quantiles must be numbers in [0, 1], got {quantiles!r}") from None
    if not all(0.0 <= q <= 1.0 for q in qs):
        raise ConfigError(f"quantiles must be numbers in [0, 1], got {quantiles!r}")
    out: dict[str, float] = {"n_paths": float(len(paths))}
    for col in ("cagr", "max_drawdown", "total_return"):
        v = paths[col].to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        out[f"{col}_mean"] = float(v.mean()) if v.size else math.nan
        vals = np.quantile(v, qs) if v.size else [math.nan] * len(qs)
        for q, val in zip(qs, vals):
            out[f"{col}_q{q * 100:02.0f}" if round(q * 100) == q * 100 else f"{col}_q{q * 100:g}"] = float(val)
    out["p_loss"] = float((paths["total_return"] < 0).mean())
    for col in paths.columns:
        if col.startswith("hit_"):
            out[f"p_{col}"] = float(paths[col].mean())
    return pd.Series(out, name="bootstrap")
