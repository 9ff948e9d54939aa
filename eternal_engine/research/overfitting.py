"""Overfitting statistics for the best of a sweep: PSR, expected maximum Sharpe, DSR and PBO by CSCV.

Conventions (read these before passing numbers):

* **Sharpe ratios are per period and not annualised**: ``mean(r) / std(r, ddof=1)`` of the per-bar (or
  per-trade) returns, risk-free rate 0. An annualised Sharpe ratio ``SR_a`` with ``P`` periods per year is
  ``SR_a / sqrt(P)`` per period, and a variance of annualised Sharpe ratios is ``V_a / P`` per period;
  :func:`deflated_sharpe_ratio` does this conversion for you when you pass ``periods_per_year``.
* **Kurtosis is raw (non-excess)**: 3 for a normal distribution, as in the papers' formulas. Pass
  ``excess_kurtosis=True`` if yours is excess kurtosis (pandas' ``Series.kurt`` and
  ``eternal_engine.metrics.stats()['kurtosis']`` are excess; 0 for a normal distribution); 3 is then added.
* Skewness and kurtosis computed here from returns are the moment (biased, population) estimators, as in
  López de Prado's reference code: ``m3 / m2**1.5`` and ``m4 / m2**2`` with ``m_k = mean((r - mean(r))**k)``.

Formulas:

* **PSR** (Bailey & López de Prado 2012, "The Sharpe ratio efficient frontier"): the probability that the
  true Sharpe ratio exceeds ``sr_benchmark`` given an estimate ``sr`` from ``n`` observations,
  ``PSR = Φ((sr - sr*) sqrt(n - 1) / sqrt(1 - γ3 sr + (γ4 - 1) / 4 sr²))``.
* **Expected maximum Sharpe under the null** (the False Strategy theorem, Bailey & López de Prado 2014):
  ``E[max SR] ≈ sqrt(V) ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))`` for ``N`` independent trials whose
  Sharpe estimates have variance ``V`` and true value 0; ``γ`` is the Euler–Mascheroni constant.
* **DSR** (Bailey & López de Prado 2014, "The Deflated Sharpe Ratio"): the PSR of the selected strategy
  against ``sr0 = E[max SR]`` instead of 0.
* **PBO by CSCV** (Bailey, Borwein, López de Prado & Zhu 2015, "The probability of backtest overfitting"):
  the rows of a T x N matrix of per-period returns of N configurations are cut into S equal blocks; for each
  of the C(S, S/2) ways to choose half of the blocks as in-sample (IS), the rest being out-of-sample (OOS),
  the configuration with the best IS metric is found, its OOS relative rank ``ω = rank / (N + 1)`` taken and
  turned into a logit ``λ = ln(ω / (1 - ω))``. PBO is the share of combinations with ``λ <= 0``: how often
  the IS winner does no better than the OOS median.

Arrays of data (returns, performance matrices) that cannot be used raise
:class:`~eternal_engine.errors.DataError`; bad arguments raise :class:`~eternal_engine.errors.ConfigError`.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import norm

from eternal_engine._hints import did_you_mean
from eternal_engine.errors import ConfigError, DataError

__all__ = [
    "EULER_GAMMA",
    "DeflatedSharpe",
    "PBOResult",
    "sharpe_ratio",
    "probabilistic_sharpe_ratio",
    "expected_max_sharpe",
    "deflated_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "check_n_splits",
]

EULER_GAMMA = 0.5772156649015329
"""The Euler–Mascheroni constant γ."""

_METRICS = ("sharpe", "mean", "total_return")


# --------------------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------------------

def _finite_number(name: str, value, *, minimum: float | None = None, strict: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        raise ConfigError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return v


def _returns_1d(returns, what: str = "returns") -> np.ndarray:
    a = _as_float_array(returns, what)
    if a.ndim != 1:
        raise DataError(f"{what} must be one-dimensional, got shape {a.shape}",
                        fix="pass one column of per-period returns")
    if a.size < 2:
        raise DataError(f"{what} need at least 2 observations for a Sharpe ratio, got {a.size}",
                        fix="pass a longer return series")
    _check_finite(a, returns, what)
    return a


def _as_float_array(x, what: str) -> np.ndarray:
    try:
        if isinstance(x, (pd.Series, pd.DataFrame)):
            return x.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what} are not numeric", fix="pass float returns (fractions, 0.01 = 1%)") from e


def _check_finite(a: np.ndarray, original, what: str) -> None:
    bad = ~np.isfinite(a)
    if not bad.any():
        return
    pos = np.argwhere(bad)[0]
    row = int(pos[0])
    label = original.index[row] if isinstance(original, (pd.Series, pd.DataFrame)) else row
    where = f"row {label!r}"
    if a.ndim == 2:
        col = int(pos[1])
        clabel = original.columns[col] if isinstance(original, pd.DataFrame) else col
        where += f", column {clabel!r}"
    kind = "NaN" if np.isnan(a[tuple(pos)]) else "infinite"
    raise DataError(f"{what} contain {kind} values (first at {where})",
                    fix="fill or drop the missing periods deliberately (e.g. .fillna(0.0) where a "
                        "configuration was flat) before testing for overfitting")


def _moments(a: np.ndarray) -> tuple[float, float, float]:
    """Per-period Sharpe (ddof=1), moment skewness and raw kurtosis of a 1-D array."""
    mean = float(a.mean())
    d = a - mean
    m2 = float(np.dot(d, d)) / a.size
    if m2 == 0.0 or a.min() == a.max():
        raise DataError("returns are constant: the Sharpe ratio, skewness and kurtosis are undefined",
                        fix="pass the returns of a strategy that traded")
    d2 = d * d
    m3 = float(np.dot(d2, d)) / a.size
    m4 = float(np.dot(d2, d2)) / a.size
    std = math.sqrt(m2 * a.size / (a.size - 1))
    return mean / std, m3 / m2 ** 1.5, m4 / (m2 * m2)


def sharpe_ratio(returns) -> float | np.ndarray:
    """Per-period Sharpe ratio ``mean / std(ddof=1)`` (risk-free 0, not annualised) of 1-D returns, or of
    each column of a 2-D array / DataFrame (returns an array then). `DataError` on NaN/inf or fewer than 2
    rows; a column with zero volatility gives NaN."""
    a = _as_float_array(returns, "returns")
    if a.ndim not in (1, 2) or a.shape[0] < 2:
        raise DataError(f"returns must be 1-D or 2-D with at least 2 rows, got shape {a.shape}",
                        fix="pass per-period returns, one column per configuration")
    _check_finite(a, returns, "returns")
    std = a.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = np.where(std > 0, a.mean(axis=0) / np.where(std > 0, std, 1.0), np.nan)
    return float(sr) if a.ndim == 1 else sr


# --------------------------------------------------------------------------------------------------------------
# PSR, E[max SR], DSR
# --------------------------------------------------------------------------------------------------------------

def probabilistic_sharpe_ratio(sr, sr_benchmark=0.0, n=None, skew=0.0, kurtosis=3.0, *,
                               excess_kurtosis: bool = False):
    """Probability that the true Sharpe ratio exceeds ``sr_benchmark`` (Bailey & López de Prado 2012).

    ``PSR = Φ((sr - sr_benchmark) * sqrt(n - 1) / sqrt(1 - skew * sr + (kurtosis - 1) / 4 * sr**2))``.

    Args:
        sr: the observed Sharpe ratio, **per period** (not annualised).
        sr_benchmark: the benchmark Sharpe ratio, per period (0: "is there any skill at all").
        n: number of return observations behind ``sr`` (> 1).
        skew: skewness of the returns (0 for normal returns).
        kurtosis: **raw** kurtosis of the returns (3 for normal returns), unless ``excess_kurtosis``.
        excess_kurtosis: ``True`` if ``kurtosis`` is excess kurtosis (normal = 0); 3 is added.

    Arguments broadcast as numpy arrays; returns a float for scalar inputs, else an array.

    Raises:
        ConfigError: non-finite inputs, ``n <= 1``, or a kurtosis below ``1 + skew**2`` (impossible for any
            distribution; usually excess kurtosis passed as raw).
    """
    if n is None:
        raise ConfigError("probabilistic_sharpe_ratio needs n, the number of return observations")
    arrs = [np.asarray(v, dtype=np.float64) for v in (sr, sr_benchmark, n, skew, kurtosis)]
    for name, v in zip(("sr", "sr_benchmark", "n", "skew", "kurtosis"), arrs):
        if not np.isfinite(v).all():
            raise ConfigError(f"{name} must be finite, got {v!r}")
    sr_, srb, n_, sk, ku = arrs
    if excess_kurtosis:
        ku = ku + 3.0
    if (n_ <= 1).any():
        raise ConfigError(f"n must be > 1 observations, got {n!r}")
    if (ku < 1.0 + sk * sk - 1e-12).any():
        raise ConfigError(
            f"kurtosis {kurtosis!r} is below 1 + skew**2 (skew {skew!r}), impossible for raw kurtosis; "
            "if you passed excess kurtosis (normal = 0, as pandas' .kurt()), set excess_kurtosis=True"
        )
    var_term = 1.0 - sk * sr_ + (ku - 1.0) / 4.0 * sr_ * sr_
    z = (sr_ - srb) * np.sqrt(n_ - 1.0) / np.sqrt(np.maximum(var_term, 1e-300))
    out = norm.cdf(z)
    return float(out) if np.ndim(out) == 0 else out


def expected_max_sharpe(n_trials, sr_variance, sr_mean: float = 0.0) -> float:
    """Expected maximum of ``n_trials`` independent Sharpe estimates under the null (False Strategy theorem).

    ``E[max] ≈ sr_mean + sqrt(sr_variance) * ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))`` with ``γ`` the
    Euler–Mascheroni constant (:data:`EULER_GAMMA`); Bailey & López de Prado (2014), eq. for ``SR0``.

    The approximation comes from extreme-value theory and is meant for ``N >> 1``: at N = 10 it is within a
    few percent of the exact expectation, at N = 2 it is poor (0.52 σ vs the exact 0.56 σ). For
    ``n_trials == 1`` the expected maximum of one estimate is its mean, so ``sr_mean`` is returned (the
    formula itself would give -inf). ``n_trials`` may be fractional (an effective number of independent
    trials); just above 1 the approximation dips below zero, while the maximum of N >= 1 estimates is never
    expected below their mean, so the result is floored at ``sr_mean`` (this keeps it non-decreasing in N).
    Units follow ``sr_variance``: per-period variance gives a per-period Sharpe.

    Raises:
        ConfigError: ``n_trials < 1``, a negative or non-finite ``sr_variance``.
    """
    n = _finite_number("n_trials", n_trials, minimum=1.0)
    v = _finite_number("sr_variance", sr_variance, minimum=0.0)
    mu = _finite_number("sr_mean", sr_mean)
    if n == 1.0:
        return mu
    z = (1.0 - EULER_GAMMA) * norm.ppf(1.0 - 1.0 / n) + EULER_GAMMA * norm.ppf(1.0 - 1.0 / (n * math.e))
    return mu + math.sqrt(v) * max(float(z), 0.0)


@dataclass(frozen=True)
class DeflatedSharpe:
    """Result of :func:`deflated_sharpe_ratio`. Every Sharpe figure is per period (not annualised).

    Attributes:
        dsr: the deflated Sharpe ratio, a probability in [0, 1]: PSR of ``sr`` against ``sr0``.
        sr: the selected strategy's Sharpe ratio.
        sr0: the expected maximum Sharpe of ``n_trials`` null trials (:func:`expected_max_sharpe`).
        n_obs, skew, kurtosis: the PSR inputs (kurtosis raw: 3 = normal).
        n_trials: the number of (effectively independent) trials deflated for.
        sr_variance: the variance of the trials' Sharpe ratios.
        z: the standardised statistic, ``dsr = Φ(z)``.
        best: the column label of the selected configuration when a sweep matrix was passed, else None.
    """

    dsr: float
    sr: float
    sr0: float
    n_obs: int
    skew: float
    kurtosis: float
    n_trials: float
    sr_variance: float
    z: float
    best: object = None


def deflated_sharpe_ratio(returns_or_sr, *, n_trials=None, sr_variance=None, trial_sharpes=None,
                          n_obs=None, skew=None, kurtosis=None, excess_kurtosis: bool = False,
                          periods_per_year=None) -> DeflatedSharpe:
    """Deflated Sharpe ratio of the best of a sweep (Bailey & López de Prado 2014).

    ``returns_or_sr`` is one of:

    * a **number**: the selected strategy's Sharpe ratio (per period, or annualised with
      ``periods_per_year``); then ``n_obs`` is required and ``skew`` / ``kurtosis`` default to the normal
      0 / 3;
    * **1-D returns** (Series or array) of the selected strategy: Sharpe, skewness and kurtosis are measured
      from them (do not pass ``n_obs``, ``skew`` or ``kurtosis`` too);
    * a **2-D sweep** (DataFrame or array, T periods x N configurations): the configuration with the highest
      Sharpe ratio is selected (``best``), ``trial_sharpes`` are the N column Sharpe ratios and
      ``n_trials`` defaults to N.

    The null's dispersion comes from ``sr_variance`` (variance of the trials' Sharpe ratios) or from
    ``trial_sharpes`` (its sample variance, ddof=1); ``n_trials`` defaults to ``len(trial_sharpes)``. Pass a
    smaller ``n_trials`` for the effective number of independent trials when configurations are correlated.

    ``periods_per_year``: if given, every Sharpe figure you *pass as numbers* (``returns_or_sr`` when a
    number, ``sr_variance``, ``trial_sharpes``) is annualised with this many periods per year and is
    converted to per period (``SR / sqrt(P)``, ``V / P``). Figures measured from returns are per period
    already. The result is always per period.

    Example (the paper's numerical example: 100 trials, annualised Sharpe variance 0.5, a selected
    annualised Sharpe of 2.5 over 1,250 daily observations, skew -3, kurtosis 10, 250 days a year):

        deflated_sharpe_ratio(2.5, n_trials=100, sr_variance=0.5, n_obs=1250, skew=-3, kurtosis=10,
                              periods_per_year=250)   # dsr ≈ 0.9004, sr0 ≈ 0.1132 per day

    Raises:
        ConfigError: a missing or invalid argument (with what to pass instead).
        DataError: returns with NaN/inf, fewer than 2 observations or constant.
    """
    ppy = None if periods_per_year is None else _finite_number("periods_per_year", periods_per_year,
                                                               minimum=0.0, strict=True)
    scale_sr = 1.0 / math.sqrt(ppy) if ppy else 1.0
    scale_var = 1.0 / ppy if ppy else 1.0
    best = None

    if trial_sharpes is not None:
        ts = np.asarray(trial_sharpes, dtype=np.float64).ravel() * scale_sr
        if ts.size < 2 or not np.isfinite(ts).all():
            raise ConfigError("trial_sharpes must hold at least 2 finite Sharpe ratios, one per trial")
    else:
        ts = None

    if np.ndim(returns_or_sr) == 0 and not isinstance(returns_or_sr, (pd.Series, pd.DataFrame)):
        sr = _finite_number("sr", returns_or_sr) * scale_sr
        if n_obs is None:
            raise ConfigError("a Sharpe ratio given as a number needs n_obs= (the number of return "
                              "observations behind it); or pass the returns themselves")
        n = _finite_number("n_obs", n_obs, minimum=1.0, strict=True)
        sk = 0.0 if skew is None else _finite_number("skew", skew)
        ku = 3.0 if kurtosis is None else _finite_number("kurtosis", kurtosis)
        if kurtosis is not None and excess_kurtosis:
            ku += 3.0
    else:
        for name, v in (("n_obs", n_obs), ("skew", skew), ("kurtosis", kurtosis)):
            if v is not None:
                raise ConfigError(f"{name} is measured from the returns you passed; do not pass {name}= too")
        a = _as_float_array(returns_or_sr, "returns")
        if a.ndim == 2:
            if a.shape[1] < 2:
                raise DataError(f"a sweep needs at least 2 configurations (columns), got {a.shape[1]}",
                                fix="pass a 1-D return series for a single strategy")
            if a.shape[0] < 2:
                raise DataError("returns need at least 2 observations", fix="pass a longer return series")
            _check_finite(a, returns_or_sr, "returns")
            col_sr = sharpe_ratio(a)
            if np.isnan(col_sr).all():
                raise DataError("every configuration has constant returns", fix="pass strategies that traded")
            j = int(np.nanargmax(col_sr))
            if isinstance(returns_or_sr, pd.DataFrame):
                best = returns_or_sr.columns[j]
            else:
                best = j
            if ts is None:
                ts = col_sr[np.isfinite(col_sr)]
            a = _returns_1d(a[:, j])
        else:
            a = _returns_1d(returns_or_sr)
        sr, sk, ku = _moments(a)
        n = float(a.size)

    if sr_variance is not None:
        v = _finite_number("sr_variance", sr_variance, minimum=0.0) * scale_var
    elif ts is not None:
        v = float(np.var(ts, ddof=1))
    else:
        raise ConfigError("deflated_sharpe_ratio needs the trials' dispersion: pass sr_variance= (variance "
                          "of the trials' Sharpe ratios) or trial_sharpes= (all of them)")
    if n_trials is None:
        if ts is None:
            raise ConfigError("deflated_sharpe_ratio needs n_trials= (how many configurations were tried)")
        n_trials = ts.size
    n_tr = _finite_number("n_trials", n_trials, minimum=1.0)

    sr0 = expected_max_sharpe(n_tr, v)
    dsr = probabilistic_sharpe_ratio(sr, sr0, n, sk, ku)
    var_term = 1.0 - sk * sr + (ku - 1.0) / 4.0 * sr * sr
    z = (sr - sr0) * math.sqrt(n - 1.0) / math.sqrt(var_term)
    return DeflatedSharpe(dsr=dsr, sr=sr, sr0=sr0, n_obs=int(round(n)), skew=sk, kurtosis=ku, n_trials=n_tr,
                          sr_variance=v, z=z, best=best)


# --------------------------------------------------------------------------------------------------------------
# PBO by CSCV
# --------------------------------------------------------------------------------------------------------------

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
    a = _as_float_array(performance, "performance")
    if a.ndim != 2:
        raise DataError(f"performance must be 2-D (periods x configurations), got shape {a.shape}",
                        fix="pass a DataFrame with one column of per-period returns per configuration")
    t, n_cfg = a.shape
    if n_cfg < 2:
        raise DataError(f"performance needs at least 2 configurations (columns), got {n_cfg}",
                        fix="pass every configuration of the sweep, not only the best one")
    _check_finite(a, performance, "performance")
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
