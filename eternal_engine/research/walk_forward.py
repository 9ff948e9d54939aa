"""Walk-forward validation: choose parameters on a training window only, trade them on the next window.

    >>> wf = walk_forward(market, grid={"trend.sma_slow": [100, 150, 200]}, train="730D", test="180D", purge="7D")
    >>> wf.folds            # per fold: windows, chosen parameters, in-sample vs out-of-sample, efficiency
    >>> wf.oos_equity       # the out-of-sample windows stitched together

Calendar splits: fold k trains on ``[s_k, s_k + train)``, skips ``purge`` (so no training bar sits next to a
test bar), and tests on the following ``test``. Rolling windows move ``s_k`` forward by ``test``; anchored ones
keep ``s_0`` and grow. The chosen configuration (best ``objective`` on the training window) is then run from
the fold's training start to its test end and only the test window's returns count: the strategy enters the test
window holding what it would hold, its indicators warm, and no test bar ever informs a choice.
Walk-forward efficiency per fold is out-of-sample CAGR over in-sample CAGR (Pardo's ratio of annualised
returns; NaN when the in-sample CAGR is not positive). ``is_trades`` / ``oos_trades`` count the trades entered
in each window (a fold's figures from a handful of trades say little).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from eternal_engine._hints import did_you_mean
from eternal_engine.config import Config
from eternal_engine.errors import ConfigError
from eternal_engine.research.sweep import OBJECTIVES, combinations_of, sweep
from eternal_engine.research.sweep_nb import SWEEP_STATS


@dataclass
class WalkForwardResult:
    folds: pd.DataFrame
    oos_returns: pd.Series
    objective: str

    @property
    def oos_equity(self) -> pd.Series:
        return (1.0 + self.oos_returns).cumprod().rename("oos_equity")

    def oos_stats(self) -> pd.Series:
        from eternal_engine.metrics import stats

        return stats(self.oos_returns)


def _delta(value, name) -> pd.Timedelta:
    try:
        d = pd.Timedelta(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name}={value!r} is not a duration; use e.g. '365D' or '12h'") from e
    if d < pd.Timedelta(0):
        raise ConfigError(f"{name} must not be negative, got {value!r}")
    return d


def warmup_bars(config: Config, combos: list[dict]) -> int:
    """Bars the indicators need before TREND can signal, over every combination."""
    from eternal_engine.engines.trend import warmup

    return max(warmup(config.with_overrides(c).trend) for c in combos or [{}])


def check_warmup(config: Config, combos: list[dict], n_bars: int, bar: pd.Timedelta | None, where: str) -> None:
    """`ConfigError` unless ``n_bars`` bars (of ``where``, bars of length ``bar``) exceed the warm-up of every
    combination."""
    need = warmup_bars(config, combos)
    if n_bars <= need:
        span = f"{need * bar}" if bar is not None else f"{need} bars"
        raise ConfigError(f"{where} holds {n_bars} bars but the indicators need {need} to warm up "
                          f"(trend.sma_slow, 2 x adx_window): give it more than {span} of data or lower "
                          "trend.sma_slow in the grid")


def splits(index: pd.DatetimeIndex, train, test, purge, anchored: bool) -> list[tuple]:
    """``(train_start, train_end, test_start, test_end)`` per fold (ends exclusive), within ``index``."""
    start, last = index[0], index[-1]
    out = []
    k = 0
    while True:
        s = start if anchored else start + k * test
        train_end = start + train + k * test if anchored else s + train
        test_start = train_end + purge
        test_end = test_start + test
        if test_end > last + (index[1] - index[0] if len(index) > 1 else pd.Timedelta(0)):
            break
        out.append((s, train_end, test_start, test_end))
        k += 1
    return out


def walk_forward(data, config: Config | None = None, grid: dict | None = None, *, train="730D", test="180D",
                 anchored: bool = False, purge="0D", objective: str = "sharpe", engines=None, executor=None,
                 progress: bool = True) -> WalkForwardResult:
    """Walk-forward over calendar folds (see the module docstring). Fails before any work on an unknown grid key,
    an empty grid, windows longer than the data, or a training window too short for the indicators' warm-up."""
    from eternal_engine.research.sweep_nb import sweep_stats_nb
    from eternal_engine.sim import simulate

    config = config or Config()
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective {objective!r} is not a statistic{did_you_mean(objective, OBJECTIVES)}")
    combos = combinations_of(grid)
    for c in combos:
        config.with_overrides(c)  # unknown keys and bad values fail here
    train, test, purge = _delta(train, "train"), _delta(test, "test"), _delta(purge, "purge")
    if train <= pd.Timedelta(0) or test <= pd.Timedelta(0):
        raise ConfigError("train and test must be positive durations, e.g. train='730D', test='180D'")
    if len(data.index) < 2:
        raise ConfigError(f"the data hold {len(data.index)} bar(s): walk-forward needs a history to split")
    span = data.index[-1] - data.index[0]
    if train + purge + test > span:
        raise ConfigError(f"train + purge + test = {train + purge + test} is longer than the data "
                          f"({span}, {data.index[0]:%Y-%m-%d} .. {data.index[-1]:%Y-%m-%d}): shorten the windows "
                          "or load more data")
    bar = data.index[1] - data.index[0]
    if test < bar:
        raise ConfigError(f"test={test} is shorter than one bar ({bar}): a test window must hold bars")
    check_warmup(config, combos, int(train / bar), bar, f"train={train}")
    folds = splits(data.index, train, test, purge, anchored)
    ppy = None
    rows, pieces = [], []
    for k, (s, te, ts, tx) in enumerate(folds):
        res = sweep(data.slice(s, te - bar), config, combinations=combos, engines=engines, objective=objective,
                    executor=executor, progress=False)
        best = res.table.iloc[0]
        chosen = {p: _plain(best[p]) for p in res.params}
        run = simulate(data.slice(s, tx - bar), config.with_overrides(chosen), engines=engines)
        r = run.returns
        oos = r[(r.index >= ts) & (r.index < tx)]
        oos_trades = int((run.trade_records["entry_bar"] >= r.index.searchsorted(ts)).sum())
        if ppy is None:
            from eternal_engine.metrics import periods_per_year_for

            ppy = periods_per_year_for(data.index)
        o = dict(zip(SWEEP_STATS, sweep_stats_nb(oos.to_numpy(), ppy, np.empty(len(SWEEP_STATS)))))
        is_cagr, oos_cagr = float(best["cagr"]), o["cagr"]
        rows.append({
            "fold": k, "train_start": s, "train_end": te, "test_start": ts, "test_end": tx, **chosen,
            f"is_{objective}": float(best[objective]), f"oos_{objective}": o[objective],
            "is_cagr": is_cagr, "oos_cagr": oos_cagr,
            "wfe": oos_cagr / is_cagr if is_cagr > 0 else np.nan,
            "is_trades": int(best["n_trades"]), "oos_trades": oos_trades,
            "config_hash": best["config_hash"],
        })
        pieces.append(oos)
        if progress:
            import sys

            print(f"\rwalk-forward: fold {k + 1}/{len(folds)}", end="", file=sys.stderr, flush=True)
    if progress:
        import sys

        print(file=sys.stderr)
    oos_returns = pd.concat(pieces).rename("oos_returns") if pieces else pd.Series(dtype=float)
    return WalkForwardResult(pd.DataFrame(rows), oos_returns, objective)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v
