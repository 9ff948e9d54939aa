"""Research at scale: statistics for judging sweeps and Monte Carlo robustness of a backtest.

Submodules (imported on demand, so ``import eternal_engine.research`` stays cheap):

- :mod:`eternal_engine.research.sweep`: ``sweep(data, config, grid)`` over parameter combinations, statistics
  only, threads or any executor (Dask), with the deflated Sharpe ratio and PBO of every sweep.
- :mod:`eternal_engine.research.walk_forward`: rolling or anchored calendar folds with a purge gap, parameters
  chosen on training windows only, stitched out-of-sample returns and walk-forward efficiency.
- :mod:`eternal_engine.research.overfitting`: probabilistic and deflated Sharpe ratios (Bailey & López de
  Prado 2012, 2014), the expected maximum Sharpe of a sweep under the null, and the probability of backtest
  overfitting by combinatorially symmetric cross-validation (Bailey, Borwein, López de Prado & Zhu 2015).
- :mod:`eternal_engine.research.bootstrap`: stationary block bootstrap (Politis & Romano 1994) of bar returns
  and of trade sequences: distributions of CAGR and max drawdown, and the probability of reaching each
  drawdown circuit-breaker level. Seeded and reproducible.
"""
