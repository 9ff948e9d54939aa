"""Plan and run a batch of configurations in `batch_nb.sweep_batch_nb` (or its TREND-alone copy): statistics
and daily returns only.

The inputs of the bar loop come in groups (`sim.build.GROUPS`), each built from a few config keys. A batch
builds one variant of a group per distinct value of its keys among the combinations (usually one, or a
handful) and TREND's indicators once per window; each combination then picks its variants by index.
"""
from __future__ import annotations

import numba
import numpy as np
from numba.typed import List

from eternal_engine.research.sweep_nb import RUN_STATS, SWEEP_STATS

NS_DAY = 86_400_000_000_000
_TREND_PARAMS = ("trend.atr_stop_mult", "trend.risk_per_trade", "trend.max_position", "trend.max_leverage",
                 "trend.allow_short")
_LISTS = ("costs", "sleeves", "tparams", "core", "funding", "tactical", "risk", "orch", "calendar", "cash", "tcols")


def day_last_bars(index) -> np.ndarray:
    """Per UTC day from the first bar's to the last's: the index of its last bar, -1 for a day without bars."""
    ts = index.as_unit("ns").asi8
    day = ts // NS_DAY - ts[0] // NS_DAY
    out = np.full(int(day[-1]) + 1, -1, dtype=np.int64)
    out[day] = np.arange(len(ts))  # later bars of a day overwrite earlier ones
    return out


def run_batch(market, configs: list, overrides: list[dict], names: tuple, *, stats=None, daily=None,
              trend_tables=None):
    """Statistics (``len(configs) x len(SWEEP_STATS + RUN_STATS)``, float64) and daily returns
    (``len(configs) x days``, float32) of every config, run on ``market`` with the engines ``names``, written
    into ``stats`` and ``daily`` if given. ``overrides[k]`` are the dotted keys that make ``configs[k]`` from
    the shared base: they decide which variants the configs share. ``trend_tables``:
    `engines.trend.indicator_tables` of these configs if the caller has them (a sweep computes them once for all
    its batches)."""
    from eternal_engine.engines import trend as trend_engine
    from eternal_engine.metrics import periods_per_year_for
    from eternal_engine.research import batch_nb
    from eternal_engine.sim import build
    from eternal_engine.sim.nb import trend_alone

    a = market.arrays
    n, m = a.close.shape
    k = len(configs)
    lists = {name: List() for name in _LISTS}
    which = np.empty((k, len(_LISTS)), dtype=np.int64)
    params = tuple(dict.fromkeys(key for over in overrides for key in over))
    trend_on = "trend" in names
    plans = [(slot, g, build.GROUPS[g], lambda cfg, g=g: build.group(g, market, cfg, names))
             for slot, g in enumerate(_LISTS) if g in build.GROUPS]
    plans.append((_LISTS.index("tparams"), "tparams", _TREND_PARAMS, lambda cfg: trend_engine.params(cfg.trend)))
    plans.append((_LISTS.index("tcols"), "tcols", ("trend.symbols",), lambda cfg: (
        trend_engine.trend_columns(market, cfg.trend) if trend_on else np.zeros(0, np.int64))))
    for slot, name, keys, make in plans:
        used = [p for p in params if _touches(p, keys)]  # the swept keys that decide this list's variant
        if not used:
            lists[name].append(make(configs[0]))
            which[:, slot] = 0
            continue
        memo: dict[tuple, int] = {}
        for c, over in enumerate(overrides):
            key = tuple((p, repr(over[p])) for p in used if p in over)
            j = memo.get(key)
            if j is None:
                j = memo[key] = len(lists[name])
                lists[name].append(make(configs[c]))
            which[c, slot] = j
    if trend_on:
        tables, rows = trend_tables or trend_engine.indicator_tables(market, [cfg.trend for cfg in configs])
        thresholds = np.array([cfg.trend.adx_threshold for cfg in configs], dtype=np.float64)
    else:
        empty = np.zeros((1, 0, m))
        tables = trend_engine.TrendTables(np.zeros((0, m)), np.zeros(m, np.int64), empty, empty, empty,
                                          empty.astype(np.float32))
        rows, thresholds = np.zeros((k, 4), dtype=np.int64), np.zeros(k)
    day_last = day_last_bars(market.index)
    stats = np.empty((k, len(SWEEP_STATS) + len(RUN_STATS))) if stats is None else stats
    daily = np.empty((k, len(day_last)), dtype=np.float32) if daily is None else daily
    # the same sleeves in every combination: TREND alone runs the loop compiled for it (`sim.nb.kernel_for`)
    kernel = batch_nb.sweep_batch_trend_nb if trend_alone(lists["sleeves"][0], len(names)) else batch_nb.sweep_batch_nb
    kernel((a.open, a.high, a.low, a.close, a.funding, a.kind, a.ts_ns), *(lists[name] for name in _LISTS), tables,
           rows, thresholds, which, np.zeros((0, m)), day_last, float(periods_per_year_for(market.index)),
           min(k, numba.get_num_threads()), stats, daily)
    return stats, daily


def _touches(key: str, keys) -> bool:
    """Whether override ``key`` sets (part of) one of the config ``keys``, or a whole section holding one."""
    return any(key == x or key.startswith(x + ".") or x.startswith(key + ".") for x in keys)
