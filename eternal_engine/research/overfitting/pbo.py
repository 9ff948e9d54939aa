"""The probability of backtest overfitting by combinatorially symmetric cross-validation (formulas and
conventions: the package's docstring)."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from eternal_engine._hints import did_you_mean
from eternal_engine.errors import ConfigError, DataError
from eternal_engine.research.overfitting._inputs import as_float_array, check_finite

_METRICS = ("sharpe", "mean", "total_return")


@dataclass(frozen=True)
class PBOResult:
    """Result of :func:`probability_of_backtest_overfitting`; arrays have one entry per combination.

    Attributes:
        pbo: share of combinations whose IS-best configuration ranks at or below the OOS median (logit <= 0).
        logits: ``λ = ln(ω / (1 - ω))`` with ``ω`` = OOS rank / (N + 1) of the IS-best configuration
            (average ranks for ties; rank N = best OOS).
        is_performance, oos_performance: the metric of the IS-best configuration in and out of sample
            (the performance-degradation pairs; see :attr:`degradation`).
        best_is: column position of the IS-best configuration.
        prob_oos_loss: share of combinations where the IS-best configuration's OOS metric is negative.
        n_splits, n_combinations, n_dropped: S, C(S, S/2), and the leading rows dropped so that the S blocks
            have equal length.
        metric: the metric's name.
        columns: the configurations' labels (the DataFrame's columns, else ``range(N)``).
    """

    pbo: float
    logits: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    best_is: np.ndarray
    prob_oos_loss: float
    n_splits: int
    n_combinations: int
    n_dropped: int
    metric: str
    columns: pd.Index

    @property
    def degradation(self) -> pd.DataFrame:
        """Per combination: the IS-best configuration (label), its IS and OOS metric, and the logit."""
        return pd.DataFrame({"config": self.columns[self.best_is], "is": self.is_performance,
                             "oos": self.oos_performance, "logit": self.logits})

    @property
    def degradation_slope(self) -> float:
        """Least-squares slope of OOS on IS metric of the IS-best configurations (the paper's performance
        degradation: negative when IS excellence predicts OOS disappointment). NaN if IS is constant."""
        x, y = self.is_performance, self.oos_performance
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if x.size < 2 or np.ptp(x) == 0:
            return math.nan
        xc = x - x.mean()
        return float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))


def _combination_masks(s: int) -> np.ndarray:
    """(C(s, s/2), s) float mask: 1.0 where the block is in sample; itertools' (lexicographic) order."""
    combos = list(itertools.combinations(range(s), s // 2))
    m = np.zeros((len(combos), s))
    rows = np.repeat(np.arange(len(combos)), s // 2)
    m[rows, np.asarray(combos).ravel()] = 1.0
    return m


def _sharpe_from_sums(s1: np.ndarray, s2: np.ndarray, n: int, shift: np.ndarray) -> np.ndarray:
    """Sharpe (ddof=1) from sums and sums of squares of ``x - shift`` over ``n`` rows.

    Zero volatility gives 0 for a zero mean and ±inf otherwise (a flat configuration ranks in the middle,
    not as missing)."""
    m = s1 / n
    var = (s2 - n * m * m) / (n - 1)
    mean = m + shift
    # A variance at the rounding noise of the values' magnitude counts as zero (constant columns).
    tiny = 1e-20 * (s2 / n + shift * shift)
    flat = var <= tiny
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = mean / np.sqrt(np.where(flat, 1.0, var))
    return np.where(flat, np.where(mean == 0, 0.0, np.copysign(np.inf, mean)), sr)


def check_n_splits(n_splits, n_periods: int) -> int:
    """``n_splits`` as an int if CSCV can cut ``n_periods`` rows into that many blocks (even, >= 2, at least
    2 rows a block), else `ConfigError` saying what to pass. Call it before the work that makes the rows."""
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)):
        raise ConfigError(f"n_splits must be an even integer, got {n_splits!r}")
    s = int(n_splits)
    if s < 2 or s % 2:
        raise ConfigError(f"n_splits must be an even integer >= 2, got {s}: CSCV splits the blocks into two "
                          "halves of equal size (16 is the usual choice)")
    if n_periods // s < 2:
        raise ConfigError(f"n_splits={s} is too large for {n_periods} periods: each block needs at least 2 "
                          f"rows; use n_splits <= {max(2, (n_periods // 2) // 2 * 2)} or pass more periods")
    return s


def probability_of_backtest_overfitting(performance, n_splits: int = 16,
                                        metric: str | Callable[[np.ndarray], np.ndarray] = "sharpe"
                                        ) -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

    Bailey, Borwein, López de Prado & Zhu (2015): rows of ``performance`` are split into ``n_splits`` (S)
    contiguous blocks of equal length; each of the C(S, S/2) choices of S/2 blocks is an in-sample set and
    its complement the out-of-sample set. The configuration with the best IS metric is picked; the logit of
    its OOS relative rank is recorded. PBO is the share of logits <= 0.

    Args:
        performance: T x N per-period returns of N >= 2 configurations (DataFrame or array), no NaN.
        n_splits: S, even, >= 2, with at least 2 rows per block (``T // S >= 2``). If T is not a multiple of
            S the first ``T % S`` rows are dropped. S = 16 gives 12,870 combinations.
        metric: ``"sharpe"`` (per-period mean / std, ddof=1; zero volatility counts as Sharpe 0 for a zero
            mean), ``"mean"`` (mean return), ``"total_return"`` (compounded ``prod(1 + r) - 1``; returns
            must be > -1), or a callable taking a (rows x N) array and returning N values (evaluated per
            combination: slower).

    The built-in metrics are computed from per-block sums with one matrix product per chunk of
    combinations, so S = 16 with hundreds of configurations takes a fraction of a second.

    Raises:
        ConfigError: odd, too small or too large ``n_splits``; an unknown metric.
        DataError: a non-2-D input, fewer than 2 configurations, NaN/inf (naming the first), returns <= -1
            with ``"total_return"``.
    """
    a = as_float_array(performance, "performance")
    if a.ndim != 2:
        raise DataError(f"performance must be 2-D (periods x configurations), got shape {a.shape}",
                        fix="pass a DataFrame with one column of per-period returns per configuration")
    t, n_cfg = a.shape
    if n_cfg < 2:
        raise DataError(f"performance needs at least 2 configurations (columns), got {n_cfg}",
                        fix="pass every configuration of the sweep, not only the best one")
    check_finite(a, performance, "performance")
    s = check_n_splits(n_splits, t)
    if callable(metric):
        metric_name = getattr(metric, "__name__", "custom")
    elif metric in _METRICS:
        metric_name = metric
    else:
        raise ConfigError(f"unknown metric {metric!r}{did_you_mean(metric, _METRICS)}; "
                          f"use one of {', '.join(_METRICS)} or a callable")
    columns = performance.columns if isinstance(performance, pd.DataFrame) else pd.RangeIndex(n_cfg)

    b = t // s
    dropped = t - b * s
    x = a[dropped:]
    half = b * (s // 2)
    masks = _combination_masks(s)
    n_comb = masks.shape[0]

    if metric_name == "total_return" and not callable(metric):
        if (x <= -1.0).any():
            i = int(np.argwhere(x <= -1.0)[0][0]) + dropped
            raise DataError(f"performance has a return <= -1 (row {i}): total_return cannot compound it",
                            fix="use metric='sharpe' or 'mean', or pass returns above -100%")
        logs = np.log1p(x)
        blk1 = logs.reshape(s, b, n_cfg).sum(axis=1)
    elif not callable(metric):
        shift = x.mean(axis=0)
        xc = x - shift
        blocks = xc.reshape(s, b, n_cfg)
        blk1 = blocks.sum(axis=1)
        blk2 = np.einsum("sbn,sbn->sn", blocks, blocks)
        tot2 = blk2.sum(axis=0)
    tot1 = None if callable(metric) else blk1.sum(axis=0)

    best = np.empty(n_comb, dtype=np.int64)
    is_perf = np.empty(n_comb)
    oos_perf = np.empty(n_comb)
    rank = np.empty(n_comb)
    chunk = max(1, 2_000_000 // n_cfg)
    for lo in range(0, n_comb, chunk):
        m = masks[lo:lo + chunk]
        if callable(metric):
            ins, outs = _custom_metric_chunk(metric, x, m, b, n_cfg)
        else:
            s1 = m @ blk1
            o1 = tot1 - s1
            if metric_name == "sharpe":
                s2 = m @ blk2
                ins = _sharpe_from_sums(s1, s2, half, shift)
                outs = _sharpe_from_sums(o1, tot2 - s2, half, shift)
            elif metric_name == "mean":
                ins, outs = s1 / half + shift, o1 / half + shift
            else:  # total_return: rank on log growth, report the compounded return
                ins, outs = np.expm1(s1), np.expm1(o1)
        k = np.argmax(ins, axis=1)
        rows = np.arange(k.size)
        v = outs[rows, k]
        less = np.count_nonzero(outs < v[:, None], axis=1)
        equal = np.count_nonzero(outs == v[:, None], axis=1)
        sl = slice(lo, lo + k.size)
        best[sl] = k
        is_perf[sl] = ins[rows, k]
        oos_perf[sl] = v
        rank[sl] = less + (equal + 1) / 2.0

    omega = rank / (n_cfg + 1.0)
    logits = np.log(omega / (1.0 - omega))
    return PBOResult(
        pbo=float(np.count_nonzero(logits <= 0.0)) / n_comb,
        logits=logits,
        is_performance=is_perf,
        oos_performance=oos_perf,
        best_is=best,
        prob_oos_loss=float(np.count_nonzero(oos_perf < 0.0)) / n_comb,
        n_splits=s,
        n_combinations=n_comb,
        n_dropped=dropped,
        metric=metric_name,
        columns=columns,
    )


def _custom_metric_chunk(metric, x: np.ndarray, masks: np.ndarray, b: int, n_cfg: int):
    blocks = x.reshape(masks.shape[1], b, n_cfg)
    ins = np.empty((masks.shape[0], n_cfg))
    outs = np.empty_like(ins)
    for i, m in enumerate(masks.astype(bool)):
        for out, sel in ((ins, m), (outs, ~m)):
            val = np.asarray(metric(blocks[sel].reshape(-1, n_cfg)), dtype=np.float64)
            if val.shape != (n_cfg,):
                raise ConfigError(f"metric must return one value per configuration (shape ({n_cfg},)), "
                                  f"got shape {val.shape}")
            if np.isnan(val).any():
                raise DataError("metric returned NaN for a configuration",
                                fix="make the metric return a number for every column (e.g. 0 for flat)")
            out[i] = val
    return ins, outs
