#!/usr/bin/env python
"""Speed and memory of the TREND backtest against vectorbt's equivalent pipeline (a script, not a test).

    python benchmarks/bench_trend.py                       # 1M and 5M one-minute bars (~25 min on 2 cores)
    python benchmarks/bench_trend.py --quick               # 100k bars, smoke run (~1-2 min)
    python benchmarks/bench_trend.py --bars 2000000 --markdown-out bench.md
    python benchmarks/bench_trend.py --no-tz-aware         # skip the slow "vectorbt on a tz-aware index" rows

What is measured (see benchmarks/README.md for the meaning of every number and the caveats):

* data: ``eternal_engine.synthetic(years=N/525600, freq="1min", seed=0, symbols=("BTC",)).select(["BTC-PERP"])``;
  vectorbt gets the same closes, ``market.close["BTC-PERP"]``.
* ours is TREND alone: ``backtest(market, cfg, engines=["trend"])`` (the four-engine portfolio is measured by
  ``bench_portfolio.py``). ``cfg`` is the default config with ``trend.symbols = ["BTC-PERP"]``, so since the
  portfolio extension it includes the monthly DCA contribution (``portfolio.dca_amount``, paid into the TREND
  sleeve) and the drawdown-breaker / loss-limit governance; the sleeve gets the whole initial capital.
* sim step: ours = the ``simulate_trend_nb(...)`` call alone (the bar loop compiled for TREND alone, which
  ``backtest(engines=["trend"])`` runs), replayed with the exact arguments ``backtest()`` hands it
  (captured from a real run: TREND signals precomputed by ``engines.trend.prepare``, the other engines' inputs
  empty, calendar with DCA days); vectorbt = ``Portfolio.from_signals`` alone with entries/exits precomputed
  from the 50/200 MA crossover. ns per bar.
* whole backtest: ours = ``backtest(market, cfg, engines=["trend"])`` + ``result.stats()``; vectorbt =
  ``MA.run`` x2 + crossover signals + ``from_signals`` + ``sharpe_ratio`` / ``total_return`` / ``max_drawdown``.
  Seconds.
* peak memory: each whole pipeline once, warm, in a fresh child process (peak RSS over the RSS just before it).
* cold start: ``python -c "import ..."`` wall time, and the first backtest in a fresh process with the Numba
  cache warm (wall time of the whole child process, measured by the parent).
* floor: a bare ``@njit`` loop summing ``pos[t] * ret[t]``, ns per bar.

Every timing: one warm-up run (compilation, caches), then the best of ``--reps`` (>= 3) ``time.perf_counter``
measurements. Costs are identical on both sides: our perp taker fee and our slippage from the default config.
vectorbt runs in its default configuration. Its headline input carries a tz-naive index (the same UTC wall
times and the same closes); the tz-aware index ``market.close`` returns triggers a slow path inside vectorbt
with pandas 3 and is reported on separate, informational rows (see the README).
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # benchmarks/, for _common (already there when run as a script)
    sys.path.insert(0, _HERE)

from _common import (  # noqa: E402  (_common also puts the repository on sys.path)
    FIELDS, add_child_args, add_output_args, best_of, best_of_pair, breakdown_lines, child_env, emit,
    kernel_seconds, log, machine_info, make_parser, memory_child, parse_args, pipeline_rss, ratio, save_arrays, spy,
    time_sink, versions_text, write_json)

MINUTES_PER_YEAR = 525_600
SYMBOL = "BTC-PERP"
FAST, SLOW = 50, 200
WARM_BARS = 20_000  # size of the warm-up input used before memory measurements and slow vectorbt variants
# The informational tz-aware vectorbt rows: warm-up on WARM_BARS bars, then best of min(reps, 3) full-size runs.

ENGINES_RUN = ("trend",)  # TREND alone: the market holds BTC-PERP only, the other engines need spot columns

GOALS = {
    "sim_ns": 5.0,  # our sim step, ns per bar, at most
    "sim_ratio": 10.0,  # vectorbt from_signals time / our simulate_trend_nb time, at least
    "whole_ratio": 3.0,  # vectorbt pipeline time / our backtest + stats time, at least
    "import_s": 1.0,  # python -c "import eternal_engine", at most
    "first_s": 1.0,  # first backtest in a fresh process (Numba cache warm), at most
}


# ----------------------------------------------------------------------------------------------- set-up
def bench_config():
    """The default config (monthly DCA and breaker governance included) with TREND on BTC-PERP only and the
    Kelly term off: on minute bars TREND's first 20 trades show no edge, Kelly sizes every later entry at 0 and
    the book stays empty, which would time an idle loop rather than the engine."""
    from eternal_engine import Config

    return Config().with_overrides({"trend.symbols": [SYMBOL], "risk.kelly_min_trades": 10**9})


def trading_config():
    """`bench_config` with the breaker ladder and the loss limits out of reach: the default config parks a lone
    TREND sleeve at L2 (entries paused) once its drawdown reaches 15 %, and an empty book cannot recover, so
    most bars of a long run are idle. This variant keeps TREND trading on every bar (informational rows)."""
    return bench_config().with_overrides({"risk.breaker_levels": [0.96, 0.97, 0.98, 0.99],
                                          "risk.daily_loss_limit": 0.99, "risk.weekly_loss_limit": 0.99})


def ours_backtest(market, cfg):
    import eternal_engine as ee

    return ee.backtest(market, cfg, engines=list(ENGINES_RUN))


def costs(cfg) -> dict:
    """The cost model both sides use: our perp taker fee, our slippage, our initial capital."""
    return {"fees": float(cfg.execution.perp_taker_fee), "slippage": float(cfg.execution.slippage),
            "init_cash": float(cfg.portfolio.initial_capital)}


def make_market(n_bars: int):
    import eternal_engine as ee

    return ee.synthetic(years=n_bars / MINUTES_PER_YEAR, freq="1min", seed=0, symbols=("BTC",)).select([SYMBOL])


def vbt_close(market, tz_aware: bool):
    """``market.close[SYMBOL]``; the headline variant drops the (UTC) tz from the index, values unchanged."""
    close = market.close[SYMBOL]
    if not tz_aware:
        close = close.copy()
        close.index = close.index.tz_localize(None)
    return close


def fresh(value, keep):
    """A copy of ``value`` (arrays, namedtuples/tuples of arrays) except the arrays listed in ``keep``."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value if any(value is k for k in keep) else value.copy()
    if isinstance(value, tuple):
        items = [fresh(v, keep) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


def capture_sim_args(market, cfg) -> tuple:
    """The exact arguments `ours_backtest(market, cfg)` passes to `simulate_trend_nb`, copied before the call.

    Replay them with ``fresh(args, keep=market.arrays)``: the simulator mutates its trade state argument.
    """
    from eternal_engine.sim import nb as sim_nb

    seen = []

    def on_call(args, seconds):
        if seconds is None and not seen:
            seen.append(fresh(args, tuple(market.arrays)))
            return args

    with spy(sim_nb, "simulate_trend_nb", on_call):
        ours_backtest(market, cfg)
    if not seen:
        raise RuntimeError("backtest() did not call eternal_engine.sim.nb.simulate_trend_nb: update this benchmark")
    return seen[0]


def vbt_signals(close):
    import vectorbt as vbt

    fast = vbt.MA.run(close, FAST)
    slow = vbt.MA.run(close, SLOW)
    return fast.ma_crossed_above(slow), fast.ma_crossed_below(slow)


def vbt_from_signals(close, entries, exits, c):
    import vectorbt as vbt

    return vbt.Portfolio.from_signals(close, entries, exits, fees=c["fees"], slippage=c["slippage"],
                                      init_cash=c["init_cash"], freq="1min")


def vbt_pipeline(close, c):
    entries, exits = vbt_signals(close)
    pf = vbt_from_signals(close, entries, exits, c)
    return pf.sharpe_ratio(), pf.total_return(), pf.max_drawdown()


def ours_pipeline(market, cfg):
    result = ours_backtest(market, cfg)
    return result.stats()


# ----------------------------------------------------------------------------------------------- timing
def floor_ns(pos, ret, reps):
    import numpy as np
    from numba import njit

    @njit
    def floor_nb(pos, ret):
        acc = 0.0
        for t in range(pos.shape[0]):
            acc += pos[t] * ret[t]
        return acc

    pos, ret = np.ascontiguousarray(pos, dtype=np.float64), np.ascontiguousarray(ret, dtype=np.float64)
    return best_of(lambda _: floor_nb(pos, ret), reps) / len(pos) * 1e9


def vbt_kernel_seconds(close, entries, exits, c, reps):
    """Best time spent inside ``vectorbt.portfolio.dispatch.simulate_from_signals`` during ``from_signals``."""
    from vectorbt.portfolio import dispatch

    return kernel_seconds(dispatch, "simulate_from_signals", lambda: vbt_from_signals(close, entries, exits, c),
                          reps)


def breakdown(market, cfg, reps) -> dict:
    """Where `backtest(market, cfg)` + `stats()` spends its time (best of ``reps`` per stage), seconds.

    The real code path runs; `engines.trend.prepare` and `sim.nb.simulate_trend_nb` are timed by wrappers.
    """
    from eternal_engine.engines import trend as trend_engine
    from eternal_engine.sim import nb as sim_nb

    names = ("prepare: indicators + signals (engines.trend.prepare)", "simulate_trend_nb: the bar loop",
             "rest of backtest(): config, argument set-up, BacktestResult", "stats(): result.returns (Series)",
             "stats(): result.trades (DataFrame)", "stats(): the rest (metrics.stats, trade_stats, exposure, hash)",
             "whole: backtest() + stats()")
    best = dict.fromkeys(names, float("inf"))
    ours_pipeline(market, cfg)  # warm
    for _ in range(reps):
        spent = {"prepare": 0.0, "sim": 0.0}
        with spy(trend_engine, "prepare", time_sink(spent, "prepare")), \
                spy(sim_nb, "simulate_trend_nb", time_sink(spent, "sim")):
            t0 = time.perf_counter()
            res = ours_backtest(market, cfg)
            t1 = time.perf_counter()
            res.returns
            t2 = time.perf_counter()
            res.trades
            t3 = time.perf_counter()
            res.stats()
            t4 = time.perf_counter()
        got = (spent["prepare"], spent["sim"], (t1 - t0) - spent["prepare"] - spent["sim"], t2 - t1, t3 - t2,
               t4 - t3, t4 - t0)
        for k, v in zip(names, got):
            best[k] = min(best[k], v)
    return best


# ----------------------------------------------------------------------------------------------- memory (child)
def load_market(directory):
    import numpy as np
    import pandas as pd

    from eternal_engine.data import MarketData

    arr = {f: np.load(os.path.join(directory, f + ".npy")) for f in ("ts_ns",) + FIELDS}
    index = pd.DatetimeIndex(arr.pop("ts_ns"), tz="UTC")
    return MarketData(index, [SYMBOL], arr["open"], arr["high"], arr["low"], arr["close"], arr["volume"],
                      arr["funding"], freq="1min")


def load_close(directory, tz_aware: bool):
    import numpy as np
    import pandas as pd

    ts = np.load(os.path.join(directory, "ts_ns.npy"))
    close = np.load(os.path.join(directory, "close.npy"))[:, 0].copy()
    index = pd.DatetimeIndex(ts, tz="UTC") if tz_aware else pd.DatetimeIndex(ts)
    return pd.Series(close, index=index, name=SYMBOL)


def child_memory(pipeline: str, directory: str) -> dict:
    """Run one whole pipeline warm on the saved data and report RSS figures (MB)."""
    cfg = bench_config()
    c = costs(cfg)
    if pipeline == "ours":
        market = load_market(directory)
        small = market.slice(None, market.index[WARM_BARS - 1])
        ours_pipeline(small, cfg)
        del small
        run = lambda: ours_pipeline(market, cfg)  # noqa: E731
    else:
        import vectorbt  # noqa: F401

        close = load_close(directory, tz_aware=pipeline == "vbt_tz")
        vbt_pipeline(close.iloc[:WARM_BARS].copy(), c)
        run = lambda: vbt_pipeline(close, c)  # noqa: E731
    return pipeline_rss(run)


def memory(pipeline: str, directory: str) -> dict:
    return memory_child(__file__, pipeline, directory)


# ----------------------------------------------------------------------------------------------- cold start
def wall(argv, runs: int, warm: int = 1) -> float:
    env = child_env()
    best = float("inf")
    for k in range(warm + runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{argv} failed:\n{proc.stderr[-3000:]}")
        if k >= warm:
            best = min(best, dt)
    return best


FIRST_OURS = "import eternal_engine as ee; ee.backtest(ee.load_sample(), engines=['trend'])"
FIRST_VBT = (
    "import pandas as pd, vectorbt as vbt\n"
    "close = pd.read_pickle({path!r})\n"
    "fast = vbt.MA.run(close, {fast}); slow = vbt.MA.run(close, {slow})\n"
    "vbt.Portfolio.from_signals(close, fast.ma_crossed_above(slow), fast.ma_crossed_below(slow),\n"
    "                           fees={fees!r}, slippage={slippage!r}, init_cash={init_cash!r}, freq='1D')\n"
)


def cold_start(tmp: str, c: dict) -> dict:
    import eternal_engine as ee

    py = sys.executable
    path = os.path.join(tmp, "sample_btc_perp_close.pkl")
    ee.load_sample().close[SYMBOL].to_pickle(path)
    vbt_code = FIRST_VBT.format(path=path, fast=FAST, slow=SLOW, **c)
    return {
        "python_s": wall([py, "-c", "pass"], 5),
        "import_ours_s": wall([py, "-c", "import eternal_engine"], 5),
        "import_vbt_s": wall([py, "-c", "import vectorbt"], 5),
        "first_ours_s": wall([py, "-c", FIRST_OURS], 3),
        "first_vbt_s": wall([py, "-c", vbt_code], 3),
    }


# ----------------------------------------------------------------------------------------------- one size
def measure_size(n_target: int, reps: int, tz_aware: bool, log) -> dict:
    import numpy as np

    from eternal_engine.sim.nb import simulate_trend_nb

    cfg = bench_config()
    c = costs(cfg)
    t0 = time.perf_counter()
    market = make_market(n_target)
    n = len(market)
    log(f"[{n:,} bars] data generated in {time.perf_counter() - t0:.1f} s")
    r: dict = {"n_target": n_target, "bars": n}

    # --- sim step: ours (simulate_trend_nb alone) vs vectorbt (from_signals alone), interleaved
    sim_args = capture_sim_args(market, cfg)
    keep = tuple(market.arrays)
    close = vbt_close(market, tz_aware=False)  # headline vectorbt input: same closes, tz-naive index
    entries, exits = vbt_signals(close)
    r["sim_ours_s"], r["sim_vbt_s"] = best_of_pair(
        lambda args: simulate_trend_nb(*args), lambda _: vbt_from_signals(close, entries, exits, c), reps,
        setup_a=lambda: fresh(sim_args, keep))
    r["vbt_kernel_s"] = vbt_kernel_seconds(close, entries, exits, c, reps)
    r["vbt_n_entries"] = int(np.asarray(entries).sum())
    log(f"[{n:,}] sim step: ours {r['sim_ours_s'] / n * 1e9:.1f} ns/bar, vbt from_signals "
        f"{r['sim_vbt_s'] / n * 1e9:.1f} ns/bar (its kernel {r['vbt_kernel_s'] / n * 1e9:.1f} ns/bar)")

    # --- the same step with TREND trading on every bar (no breaker parking), informational
    busy_args = capture_sim_args(market, trading_config())
    r["sim_busy_s"] = best_of(lambda args: simulate_trend_nb(*args), reps, setup=lambda: fresh(busy_args, keep))
    del busy_args

    # --- work done by each side (for context)
    res = ours_backtest(market, cfg)
    r["n_fills"], r["n_trades"] = len(res.fill_records), len(res.trade_records)
    r["held_share"] = float((res.positions != 0).any(axis=1).mean())
    r["l2_share"] = float((res.breaker_level >= 2).mean())
    busy = ours_backtest(market, trading_config())
    r["busy_fills"], r["busy_held_share"] = len(busy.fill_records), float((busy.positions != 0).any(axis=1).mean())
    del res, busy

    # --- floor: a bare loop over a position array and a return array
    cl = market.arrays.close[:, 0]
    ret = np.empty_like(cl)
    ret[0] = 0.0
    ret[1:] = cl[1:] / cl[:-1] - 1.0
    pos = np.sign(np.sin(np.arange(n) / 997.0))  # any -1/0/+1 path: the loop's cost does not depend on it
    r["floor_ns"] = floor_ns(pos, ret, reps)

    # --- whole backtest, interleaved
    r["whole_ours_s"], r["whole_vbt_s"] = best_of_pair(lambda _: ours_pipeline(market, cfg),
                                                       lambda _: vbt_pipeline(close, c), reps)
    log(f"[{n:,}] whole: ours backtest+stats {r['whole_ours_s']:.3f} s, vbt pipeline {r['whole_vbt_s']:.3f} s")
    r["breakdown"] = breakdown(market, cfg, reps)

    # --- vectorbt on the tz-aware index exactly as market.close returns it (informational)
    if tz_aware:
        close_tz = vbt_close(market, tz_aware=True)
        small = close_tz.iloc[:WARM_BARS].copy()
        vbt_pipeline(small, c)  # compile / warm on a small input: full-size runs are slow here
        e_tz, x_tz = vbt_signals(close_tz)
        slow_reps = min(reps, 3)  # a full-size run takes minutes at 5M bars
        r["sim_vbt_tz_s"] = best_of(lambda _: vbt_from_signals(close_tz, e_tz, x_tz, c), slow_reps, warm=False)
        log(f"[{n:,}] vbt from_signals (tz-aware index): {r['sim_vbt_tz_s'] / n * 1e9:.1f} ns/bar")
        r["whole_vbt_tz_s"] = best_of(lambda _: vbt_pipeline(close_tz, c), slow_reps, warm=False)
        log(f"[{n:,}] vbt pipeline (tz-aware index): {r['whole_vbt_tz_s']:.2f} s")
        del close_tz, e_tz, x_tz

    # --- peak memory, each pipeline in a fresh child
    with tempfile.TemporaryDirectory(prefix="ee-bench-") as tmp:
        save_arrays(market, tmp)
        del market, close, entries, exits, sim_args
        gc.collect()
        for p in ("ours", "vbt") + (("vbt_tz",) if tz_aware else ()):
            r[f"mem_{p}"] = memory(p, tmp)
            log(f"[{n:,}] memory {p}: {r[f'mem_{p}']}")
    return r


# ----------------------------------------------------------------------------------------------- report
def _dca_text() -> str:
    p = bench_config().portfolio
    return f"{p.dca_amount:,.0f} per month on day {p.dca_day}" if p.dca_amount > 0 else "off"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def render(info: dict, sizes: list[dict], cold: dict, args) -> str:
    L = []
    L.append(f"### TREND vs vectorbt — {info['date']}")
    L.append("")
    L.append(f"Machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), load average "
             f"{info['loadavg']} at start; {info['platform']}. " + versions_text(info))
    L.append("")
    L.append(f"Best of {args.reps} after one warm-up run. \"speed-up\" = vectorbt ÷ ours (> 1: ours is faster or "
             "smaller). Same closes, fees and slippage on both sides; vectorbt's strategy is a plain MA "
             "crossover, ours the full TREND rules (ADX gate, ATR trailing stop, risk sizing, funding).")
    L.append("")
    L.append("Ours runs TREND alone (`backtest(market, cfg, engines=[\"trend\"])`) with the default config and "
             "`trend.symbols = [\"BTC-PERP\"]` and the Kelly term off (`risk.kelly_min_trades` = 10^9; with it "
             "TREND stops trading after 20 trades without an edge): that includes the monthly DCA contribution "
             f"({_dca_text()}, into the TREND sleeve) and the drawdown-breaker / daily-weekly loss-limit governance.")
    L.append("")
    L.append("| measure | bars | ours | vectorbt | speed-up | goal | verdict |")
    L.append("|---|---:|---:|---:|---:|---|---|")
    for r in sizes:
        n = r["bars"]
        nb = f"{n:,}"
        so, sv = r["sim_ours_s"] / n * 1e9, r["sim_vbt_s"] / n * 1e9
        L.append(f"| sim step, ns/bar (`simulate_trend_nb` vs `from_signals`) | {nb} | {so:.1f} | {sv:.1f} | "
                 f"{ratio(sv, so)} | ≤ {GOALS['sim_ns']:g} ns/bar; ≥ {GOALS['sim_ratio']:g}× | "
                 f"{_verdict(so <= GOALS['sim_ns'])}; {_verdict(sv / so >= GOALS['sim_ratio'])} |")
        sb = r["sim_busy_s"] / n * 1e9
        L.append(f"| ↳ sim step with TREND trading throughout (breaker and loss limits off), ns/bar | {nb} | "
                 f"{sb:.1f} | {sv:.1f} | {ratio(sv, sb)} | (info) | |")
        kv = r["vbt_kernel_s"] / n * 1e9
        L.append(f"| ↳ vectorbt's Numba kernel alone (`dispatch.simulate_from_signals`), ns/bar | {nb} | {so:.1f} | "
                 f"{kv:.1f} | {ratio(kv, so)} | (info) | |")
        if "sim_vbt_tz_s" in r:
            st = r["sim_vbt_tz_s"] / n * 1e9
            L.append(f"| ↳ sim step, vectorbt on the tz-aware index, ns/bar | {nb} | {so:.1f} | {st:.1f} | "
                     f"{ratio(st, so)} | (info) | |")
        wo, wv = r["whole_ours_s"], r["whole_vbt_s"]
        L.append(f"| whole backtest, s (indicators → signals → sim → stats) | {nb} | {wo:.3f} | {wv:.3f} | "
                 f"{ratio(wv, wo)} | ≥ {GOALS['whole_ratio']:g}× | {_verdict(wv / wo >= GOALS['whole_ratio'])} |")
        if "whole_vbt_tz_s" in r:
            wt = r["whole_vbt_tz_s"]
            L.append(f"| ↳ whole backtest, vectorbt on the tz-aware index, s | {nb} | {wo:.3f} | {wt:.2f} | "
                     f"{ratio(wt, wo)} | (info) | |")
        mo, mv = r["mem_ours"], r["mem_vbt"]
        label = "peak RSS during the pipeline − RSS before it" if mo["hwm_reset"] else \
            "lifetime peak RSS − RSS before the pipeline (high-water mark could not be reset)"
        L.append(f"| peak memory, MB ({label}) | {nb} | {mo['delta_mb']:.0f} | {mv['delta_mb']:.0f} | "
                 f"{ratio(mv['delta_mb'], mo['delta_mb'])} | below vectorbt's | "
                 f"{_verdict(mo['delta_mb'] < mv['delta_mb'])} |")
        L.append(f"| ↳ peak RSS of the whole child process, MB (interpreter + imports + data + warm-up + pipeline) | "
                 f"{nb} | {mo['process_peak_mb']:.0f} | {mv['process_peak_mb']:.0f} | "
                 f"{ratio(mv['process_peak_mb'], mo['process_peak_mb'])} | (info) | |")
        if "mem_vbt_tz" in r:
            mt = r["mem_vbt_tz"]
            L.append(f"| ↳ peak memory, vectorbt on the tz-aware index, MB (same definition) | {nb} | "
                     f"{mo['delta_mb']:.0f} | {mt['delta_mb']:.0f} | {ratio(mt['delta_mb'], mo['delta_mb'])} | "
                     f"(info) | |")
        L.append(f"| floor: bare `@njit` loop `Σ pos[t]·ret[t]`, ns/bar | {nb} | {r['floor_ns']:.2f} | | | "
                 f"(reference) | |")
    if cold:
        io, iv = cold["import_ours_s"], cold["import_vbt_s"]
        L.append(f"| import time, s (`python -c \"import …\"`, best of 5) | | {io:.3f} | {iv:.3f} | "
                 f"{ratio(iv, io)} | < {GOALS['import_s']:g} s | {_verdict(io < GOALS['import_s'])} |")
        fo, fv = cold["first_ours_s"], cold["first_vbt_s"]
        L.append(f"| first backtest in a fresh process, Numba cache warm, s (sample data, best of 3) | | {fo:.3f} | "
                 f"{fv:.3f} | {ratio(fv, fo)} | < {GOALS['first_s']:g} s | {_verdict(fo < GOALS['first_s'])} |")
        L.append(f"| ↳ bare interpreter start (`python -c pass`), s | | {cold['python_s']:.3f} | "
                 f"{cold['python_s']:.3f} | | (reference) | |")
    L.append("")
    for r in sizes:
        L.append(f"Work done at {r['bars']:,} bars: ours {r['n_fills']:,} fills / {r['n_trades']:,} round trips, a "
                 f"position on {r['held_share']:.1%} of bars, breaker at L2 or above on {r['l2_share']:.1%} of "
                 f"bars (trading throughout: {r['busy_fills']:,} fills, a position on {r['busy_held_share']:.1%} "
                 f"of bars); vectorbt {r['vbt_n_entries']:,} crossover entries.")
    L.append("")
    for r in sizes:
        L += breakdown_lines(r["breakdown"], f"{r['bars']:,} bars (", args.reps)
    return "\n".join(L)


# ----------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--bars", default="1000000,5000000", help="comma-separated bar counts (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="100k bars only (smoke run)")
    add_output_args(ap)
    ap.add_argument("--no-tz-aware", action="store_true",
                    help="skip the informational vectorbt runs on the tz-aware index (slow)")
    ap.add_argument("--no-cold-start", action="store_true", help="skip the import / fresh-process measurements")
    add_child_args(ap)
    args = parse_args(ap, argv, lambda a: child_memory(a.pipeline, a.data_dir))
    if args is None:  # a memory child: done
        return 0
    bars = [100_000] if args.quick else [int(float(b)) for b in args.bars.split(",") if b.strip()]

    info = machine_info()
    log(f"machine: {info}")
    cfg = bench_config()
    cold = {}
    if not args.no_cold_start:
        with tempfile.TemporaryDirectory(prefix="ee-bench-") as tmp:
            cold = cold_start(tmp, costs(cfg))
        log(f"cold start: {cold}")
    sizes = []
    for n in bars:
        sizes.append(measure_size(n, args.reps, not args.no_tz_aware, log))
        if args.json_out:  # after every size, so that a long run that fails later keeps what it measured
            write_json(args.json_out, {"machine": info, "cold_start": cold, "sizes": sizes})
    emit(render(info, sizes, cold, args), args.markdown_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
