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

Modules: ``sharpe`` (PSR, E[max SR], DSR), ``pbo`` (CSCV), ``_inputs`` (the checks and moments they share).
"""
from eternal_engine.research.overfitting.pbo import PBOResult, check_n_splits, probability_of_backtest_overfitting
from eternal_engine.research.overfitting.sharpe import (
    EULER_GAMMA, DeflatedSharpe, deflated_sharpe_ratio, expected_max_sharpe, probabilistic_sharpe_ratio,
    sharpe_ratio,
)

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
