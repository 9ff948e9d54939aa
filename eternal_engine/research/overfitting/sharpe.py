"""PSR, the expected maximum Sharpe ratio of N trials under the null, and the deflated Sharpe ratio (formulas
and conventions: the package's docstring)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from eternal_engine.errors import ConfigError, DataError
from eternal_engine.research.overfitting._inputs import (
    as_float_array, check_finite, finite_number, moments, returns_1d,
)

EULER_GAMMA = 0.5772156649015329
"""The Euler–Mascheroni constant γ."""


def sharpe_ratio(returns) -> float | np.ndarray:
    """Per-period Sharpe ratio ``mean / std(ddof=1)`` (risk-free 0, not annualised) of 1-D returns, or of
    each column of a 2-D array / DataFrame (returns an array then). `DataError` on NaN/inf or fewer than 2
    rows; a column with zero volatility gives NaN."""
    a = as_float_array(returns, "returns")
    if a.ndim not in (1, 2) or a.shape[0] < 2:
        raise DataError(f"returns must be 1-D or 2-D with at least 2 rows, got shape {a.shape}",
                        fix="pass per-period returns, one column per configuration")
    check_finite(a, returns, "returns")
    std = a.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = np.where(std > 0, a.mean(axis=0) / np.where(std > 0, std, 1.0), np.nan)
    return float(sr) if a.ndim == 1 else sr


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
    n = finite_number("n_trials", n_trials, minimum=1.0)
    v = finite_number("sr_variance", sr_variance, minimum=0.0)
    mu = finite_number("sr_mean", sr_mean)
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
    ppy = None if periods_per_year is None else finite_number("periods_per_year", periods_per_year,
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
        sr = finite_number("sr", returns_or_sr) * scale_sr
        if n_obs is None:
            raise ConfigError("a Sharpe ratio given as a number needs n_obs= (the number of return "
                              "observations behind it); or pass the returns themselves")
        n = finite_number("n_obs", n_obs, minimum=1.0, strict=True)
        sk = 0.0 if skew is None else finite_number("skew", skew)
        ku = 3.0 if kurtosis is None else finite_number("kurtosis", kurtosis)
        if kurtosis is not None and excess_kurtosis:
            ku += 3.0
    else:
        for name, v in (("n_obs", n_obs), ("skew", skew), ("kurtosis", kurtosis)):
            if v is not None:
                raise ConfigError(f"{name} is measured from the returns you passed; do not pass {name}= too")
        a = as_float_array(returns_or_sr, "returns")
        if a.ndim == 2:
            if a.shape[1] < 2:
                raise DataError(f"a sweep needs at least 2 configurations (columns), got {a.shape[1]}",
                                fix="pass a 1-D return series for a single strategy")
            if a.shape[0] < 2:
                raise DataError("returns need at least 2 observations", fix="pass a longer return series")
            check_finite(a, returns_or_sr, "returns")
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
            a = returns_1d(a[:, j])
        else:
            a = returns_1d(returns_or_sr)
        sr, sk, ku = moments(a)
        n = float(a.size)

    if sr_variance is not None:
        v = finite_number("sr_variance", sr_variance, minimum=0.0) * scale_var
    elif ts is not None:
        v = float(np.var(ts, ddof=1))
    else:
        raise ConfigError("deflated_sharpe_ratio needs the trials' dispersion: pass sr_variance= (variance "
                          "of the trials' Sharpe ratios) or trial_sharpes= (all of them)")
    if n_trials is None:
        if ts is None:
            raise ConfigError("deflated_sharpe_ratio needs n_trials= (how many configurations were tried)")
        n_trials = ts.size
    n_tr = finite_number("n_trials", n_trials, minimum=1.0)

    sr0 = expected_max_sharpe(n_tr, v)
    dsr = probabilistic_sharpe_ratio(sr, sr0, n, sk, ku)
    var_term = 1.0 - sk * sr + (ku - 1.0) / 4.0 * sr * sr
    z = (sr - sr0) * math.sqrt(n - 1.0) / math.sqrt(var_term)
    return DeflatedSharpe(dsr=dsr, sr=sr, sr0=sr0, n_obs=int(round(n)), skew=sk, kurtosis=ku, n_trials=n_tr,
                          sr_variance=v, z=z, best=best)
