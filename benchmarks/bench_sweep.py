#!/usr/bin/env python
"""Speed and memory of a 10,000-combination TREND parameter sweep, against vectorbt's equivalent MA-crossover
sweep (a script, not a test).

    python benchmarks/bench_sweep.py                  # 10,000 combinations on 10 years of daily bars (~5 min)
    python benchmarks/bench_sweep.py --quick          # 400 combinations on 2 years: a smoke run (~30 s)
    python benchmarks/bench_sweep.py --reps 3 --markdown-out bench.md --json-out bench.json

The goals (from the research issue): 10,000 combinations on 10 years of daily BTC + ETH in under 0.5 s once
compiled (>= 20,000 combinations per second), peak memory under 500 MB (read as 500 MiB), >= 20x faster than
vectorbt's equivalent sweep with a sixteenth of its memory.

What is measured (see benchmarks/README.md for details and caveats):

* data: ``eternal_engine.synthetic(years=10, freq="1D", seed=0, symbols=["BTC", "ETH"])`` reduced to
  BTC-PERP and ETH-PERP; vectorbt gets the same closes with the (UTC) tz dropped from the index.
* ours: ``research.sweep.sweep(market, grid={"trend.sma_fast": 100 windows, "trend.sma_slow": 100 windows},
  engines=["trend"], progress=False)``: the full TREND backtest of every combination, scored in parallel Numba
  loops. Reported beside the whole time: the simulation kernel alone (``research.batch_nb.sweep_batch_trend_nb``,
  summed over the chunks of one sweep) and everything else (config validation, hashes, variant planning,
  TREND's indicator tables, the result table).
* vectorbt: the same 10,000 (fast, slow) window pairs as ``vbt.MA.run`` x 2, entries = fast crossed above slow,
  exits = crossed below, ``Portfolio.from_signals`` with each combination's two columns in one group with cash
  sharing (one portfolio per combination), our perp taker fee and slippage, then ``total_return``,
  ``sharpe_ratio`` and ``max_drawdown``.
* peak memory: each whole pipeline once, warm, in a fresh child process: peak RSS during the run minus the RSS
  just before it (data loaded, code compiled).

Every timing: one untimed warm-up run, then the best of ``--reps`` (>= 3) ``time.perf_counter`` measurements,
ours and vectorbt's interleaved.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # benchmarks/, for _common (already there when run as a script)
    sys.path.insert(0, _HERE)

from _common import (  # noqa: E402  (_common also puts the repository on sys.path)
    FIELDS, add_child_args, add_output_args, best_of_pair, emit, log, machine_info, make_parser, memory_child,
    parse_args, pipeline_rss, ratio, save_arrays, spy, status_mb, time_sink, versions_text, write_json)

# years of daily bars, fast windows, slow windows (every fast < every slow): 100 x 100 and 20 x 20 combinations
SIZES = {
    "full": (10.0, range(5, 105), range(110, 408, 3)),
    "quick": (2.0, range(5, 105, 5), range(110, 408, 15)),
}
SYMBOLS = ("BTC-PERP", "ETH-PERP")
GOAL_RATE = 20_000.0  # combinations per second: 10,000 in under 0.5 s
GOAL_MB = 500.0  # peak memory, MiB
GOAL_SPEEDUP = 20.0  # vectorbt's whole time / ours
GOAL_MEMORY_SHARE = 16.0  # vectorbt's peak memory / ours
OURS_PARTS = ("config validation, hashes, result table (`sweep()` outside `run_batch` and the indicators)",
              "variant planning (`run_batch` outside the kernel)",
              "TREND indicator tables (`engines.trend.indicator_tables`)",
              "simulation + scoring kernel (`batch_nb.sweep_batch_trend_nb`)")
VBT_PARTS = ("`MA.run` x 2 + crossover signals", "`from_signals` outside its kernel",
             "`from_signals`' Numba kernel (`dispatch.simulate_from_signals`)",
             "`total_return` + `sharpe_ratio` + `max_drawdown`")


# ----------------------------------------------------------------------------------------------- set-up
def make_market(years: float):
    import eternal_engine as ee

    return ee.synthetic(years=years, freq="1D", seed=0, symbols=["BTC", "ETH"]).select(list(SYMBOLS))


def ours_sweep(market, fast, slow):
    from eternal_engine.research.sweep import sweep

    return sweep(market, grid={"trend.sma_fast": list(fast), "trend.sma_slow": list(slow)}, engines=["trend"],
                 progress=False)


def vbt_close(ts_ns, close):
    """The closes as a DataFrame on a tz-naive index (see `bench_trend.py` on vectorbt and tz-aware indexes)."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame(close, index=pd.DatetimeIndex(np.asarray(ts_ns, dtype="datetime64[ns]")),
                        columns=list(SYMBOLS))


def vbt_costs() -> dict:
    from eternal_engine import Config

    cfg = Config()
    return {"fees": float(cfg.execution.perp_taker_fee), "slippage": float(cfg.execution.slippage),
            "init_cash": float(cfg.portfolio.initial_capital)}


def vbt_pipeline(close_df, fast, slow, c, stages=None):
    """(portfolio, total return, Sharpe, max drawdown) of every (fast, slow) pair; ``stages`` (a dict) gets
    the seconds of each step added to it."""
    import numpy as np
    import vectorbt as vbt

    t0 = time.perf_counter()
    f = vbt.MA.run(close_df, np.repeat(list(fast), len(slow)), short_name="fast")
    s = vbt.MA.run(close_df, np.tile(list(slow), len(fast)), short_name="slow")
    entries, exits = f.ma_crossed_above(s), f.ma_crossed_below(s)
    del f, s
    t1 = time.perf_counter()
    # half the free cash per entry, so that both columns of a combination can hold a position
    pf = vbt.Portfolio.from_signals(close_df, entries, exits, size=0.5, size_type="percent", fees=c["fees"],
                                    slippage=c["slippage"], init_cash=c["init_cash"], cash_sharing=True,
                                    group_by=["fast_window", "slow_window"], freq="1D")
    del entries, exits
    t2 = time.perf_counter()
    out = (pf, pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown())
    if stages is not None:
        for k, v in zip(("signals", "from_signals", "metrics"), (t1 - t0, t2 - t1, time.perf_counter() - t2)):
            stages[k] += v
    return out


# ----------------------------------------------------------------------------------------------- timing
def timed_runs(market, close_df, fast, slow, c, reps) -> tuple[list, list, dict]:
    """Interleaved whole runs of both pipelines, each split into its stages by wrappers (the untimed warm-up
    runs come first in the lists), and a summary of the work each side did (after the timer stops)."""
    from vectorbt.portfolio import dispatch

    from eternal_engine.engines import trend as trend_engine
    from eternal_engine.research import batch_nb

    sweep_mod = importlib.import_module("eternal_engine.research.sweep")
    ours, theirs, work = [], [], {}

    def ours_run(_):
        spent = dict.fromkeys(("run_batch", "indicators", "kernel"), 0.0)
        with contextlib.ExitStack() as stack:
            stack.enter_context(spy(sweep_mod, "run_batch", time_sink(spent, "run_batch")))
            stack.enter_context(spy(trend_engine, "indicator_tables", time_sink(spent, "indicators")))
            stack.enter_context(spy(batch_nb, "sweep_batch_trend_nb", time_sink(spent, "kernel")))
            t0 = time.perf_counter()
            res = ours_sweep(market, fast, slow)
            spent["whole"] = time.perf_counter() - t0
        if not spent["kernel"] or not spent["run_batch"]:
            raise RuntimeError("sweep() no longer calls research.sweep.run_batch / research.batch_nb."
                               "sweep_batch_trend_nb: update this benchmark")
        ours.append(spent)
        top = res.best()
        work["ours_best"] = {k: float(top[k]) for k in ("trend.sma_fast", "trend.sma_slow", "sharpe", "total_return")}
        work["ours_median_sharpe"] = float(res.table["sharpe"].median())

    def vbt_run(_):
        spent = dict.fromkeys(("signals", "from_signals", "metrics", "kernel"), 0.0)
        with spy(dispatch, "simulate_from_signals", time_sink(spent, "kernel")):
            t0 = time.perf_counter()
            pf, total, sharpe, _ = vbt_pipeline(close_df, fast, slow, c, spent)
            spent["whole"] = time.perf_counter() - t0
        theirs.append(spent)
        work["vbt_portfolios"], work["vbt_orders"] = int(len(total)), int(len(pf.order_records))
        work["vbt_best"] = {"pair": [int(x) for x in sharpe.idxmax()], "sharpe": float(sharpe.max()),
                            "total_return": float(total[sharpe.idxmax()])}
        work["vbt_median_sharpe"] = float(sharpe.median())

    best_of_pair(ours_run, vbt_run, reps)
    return ours[1:], theirs[1:], work


def best(runs: list, fn) -> float:
    return min(fn(r) for r in runs)


# ----------------------------------------------------------------------------------------------- memory (child)
def child_memory(pipeline: str, directory: str, size: str) -> dict:
    """Load the saved data, run the pipeline once on 2 combinations (imports, Numba), then once on the whole
    grid; report RSS figures in MiB."""
    import numpy as np
    import pandas as pd

    _, fast, slow = SIZES[size]
    arr = {f: np.load(os.path.join(directory, f + ".npy")) for f in ("ts_ns",) + FIELDS}
    if pipeline == "ours":
        from eternal_engine.data import MarketData

        market = MarketData(pd.DatetimeIndex(arr.pop("ts_ns"), tz="UTC"), SYMBOLS, *(arr.pop(f) for f in FIELDS),
                            freq="1D")
        ours_sweep(market, fast[:2], slow[:1])
        run = lambda: ours_sweep(market, fast, slow)  # noqa: E731
    else:
        close_df, c = vbt_close(arr["ts_ns"], arr["close"]), vbt_costs()
        del arr
        vbt_pipeline(close_df, fast[:2], slow[:1], c)
        run = lambda: vbt_pipeline(close_df, fast, slow, c)  # noqa: E731
    return pipeline_rss(run)


# ----------------------------------------------------------------------------------------------- measurement
def measure(size: str, reps: int) -> dict:
    years, fast, slow = SIZES[size]
    market = make_market(years)
    n = len(market.index)
    r: dict = {"size": size, "years": years, "bars": n, "columns": len(SYMBOLS), "combinations": len(fast) * len(slow),
               "fast": [fast[0], fast[-1], fast.step], "slow": [slow[0], slow[-1], slow.step]}
    log(f"{n:,} daily bars x {len(SYMBOLS)} columns, {r['combinations']:,} combinations")

    t0 = time.perf_counter()
    ours_sweep(market, fast[:2], slow[:1])
    r["first_sweep_s"] = time.perf_counter() - t0
    log(f"first sweep() in the process (2 combinations; Numba cache load or compile): {r['first_sweep_s']:.2f} s")

    close_df, c = vbt_close(market.arrays.ts_ns, market.arrays.close), vbt_costs()
    ours, theirs, work = timed_runs(market, close_df, fast, slow, c, reps)
    r.update(work)
    r["ours_runs"], r["vbt_runs"] = ours, theirs
    r["whole_ours_s"], r["whole_vbt_s"] = best(ours, lambda x: x["whole"]), best(theirs, lambda x: x["whole"])
    r["kernel_ours_s"], r["kernel_vbt_s"] = best(ours, lambda x: x["kernel"]), best(theirs, lambda x: x["kernel"])
    r["outside_ours_s"] = best(ours, lambda x: x["whole"] - x["kernel"])
    r["outside_vbt_s"] = best(theirs, lambda x: x["whole"] - x["kernel"])
    r["ours_parts"] = dict(zip(OURS_PARTS, (
        best(ours, lambda x: x["whole"] - x["run_batch"] - x["indicators"]),  # sweep() computes them once
        best(ours, lambda x: x["run_batch"] - x["kernel"]),
        best(ours, lambda x: x["indicators"]), r["kernel_ours_s"])))
    r["vbt_parts"] = dict(zip(VBT_PARTS, (
        best(theirs, lambda x: x["signals"]), best(theirs, lambda x: x["from_signals"] - x["kernel"]),
        r["kernel_vbt_s"], best(theirs, lambda x: x["metrics"]))))
    log(f"whole: ours {r['whole_ours_s']:.3f} s (kernel {r['kernel_ours_s']:.3f} s), vectorbt "
        f"{r['whole_vbt_s']:.3f} s (kernel {r['kernel_vbt_s']:.3f} s)")

    r["parent_peak_mb"] = status_mb("VmHWM")

    with tempfile.TemporaryDirectory(prefix="ee-bench-sweep-") as tmp:
        save_arrays(market, tmp)
        del market, close_df
        gc.collect()
        for p in ("ours", "vbt"):
            r[f"mem_{p}"] = memory_child(__file__, p, tmp, "--size", size)
            log(f"memory {p}: " + ", ".join(f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in r[f"mem_{p}"].items()))
    r["loadavg_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return r


# ----------------------------------------------------------------------------------------------- report
def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(info: dict, r: dict, reps: int) -> str:
    k, n = r["combinations"], r["bars"]
    wo, wv = r["whole_ours_s"], r["whole_vbt_s"]
    mo, mv = r["mem_ours"], r["mem_vbt"]
    f0, f1, fs = r["fast"]
    s0, s1, ss = r["slow"]
    L = [f"### TREND parameter sweep vs vectorbt's MA-crossover sweep — {info['date']}", ""]
    if r["size"] == "quick":
        L += ["**Smoke run (`--quick`)**: the goals are set for 10,000 combinations on 10 years; the verdicts "
              "below apply them to this smaller run (the time goal pro rata, as a rate) and are indicative only.", ""]
    L.append(f"Machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']} at start and "
             f"{r['loadavg_end']} at the end; {info['platform']}. " + versions_text(info))
    L.append("")
    L.append(f"{k:,} combinations (fast SMA {f0}..{f1} step {fs} × slow SMA {s0}..{s1} step {ss}) on {n:,} daily "
             f"bars × {r['columns']} columns ({', '.join(SYMBOLS)}; `synthetic(years={r['years']:g}, freq='1D', "
             "seed=0)`). Ours: `research.sweep.sweep(market, grid=..., engines=['trend'])`, the full TREND backtest "
             "of every combination (ADX gate, ATR stops, risk sizing, shorts, funding, breaker and loss limits), "
             "scored in parallel Numba loops. vectorbt: `MA.run` × 2, crossover entries / exits, "
             "`Portfolio.from_signals` with the two columns of each combination grouped with cash sharing (one "
             "portfolio per combination, long only, half the free cash per entry), our perp taker fee and "
             "slippage, then `total_return`, `sharpe_ratio`, `max_drawdown`; same closes, tz-naive index. "
             f"Best of {reps} after one warm-up run, interleaved; ratio = ours ÷ vectorbt (< 1: ours is faster "
             "or smaller). Memory in MiB.")
    L.append("")
    L.append("| measure | ours | vectorbt | ours ÷ vectorbt | goal: met/missed |")
    L.append("|---|---:|---:|---:|---|")
    goal_s = k / GOAL_RATE
    speedup = wv / wo
    L.append(f"| **whole sweep, s** | {wo:.3f} | {wv:.3f} | {ratio(wo, wv)} | < {goal_s:g} s (≥ {GOAL_RATE:,.0f} "
             f"combinations/s): {_met(wo < goal_s)}; ≥ {GOAL_SPEEDUP:g}× faster than vectorbt: "
             f"{_met(speedup >= GOAL_SPEEDUP)} ({speedup:.1f}×) |")
    L.append(f"| ↳ combinations per second | {k / wo:,.0f} | {k / wv:,.0f} | {ratio(wv, wo)} | (info) |")
    L.append(f"| ↳ simulation kernel alone, s (ours: `batch_nb.sweep_batch_trend_nb`, summed over the chunks of one "
             f"sweep; vectorbt: `dispatch.simulate_from_signals`) | {r['kernel_ours_s']:.3f} | "
             f"{r['kernel_vbt_s']:.3f} | {ratio(r['kernel_ours_s'], r['kernel_vbt_s'])} | (info) |")
    L.append(f"| ↳ outside the kernel, s (ours: Python planning — config validation, hashes, variant planning — "
             f"plus TREND indicators and the result table; vectorbt: MAs, signals, broadcasting, metrics) | "
             f"{r['outside_ours_s']:.3f} | {r['outside_vbt_s']:.3f} | "
             f"{ratio(r['outside_ours_s'], r['outside_vbt_s'])} | (info) |")
    lab = "peak RSS during the run − RSS before it (data loaded, code warm)" if mo["hwm_reset"] and mv["hwm_reset"] \
        else "lifetime peak RSS − RSS before the run (the high-water mark could not be reset)"
    share = mv["delta_mb"] / mo["delta_mb"] if mo["delta_mb"] > 0 else float("inf")
    L.append(f"| **peak memory, MiB** ({lab}) | {mo['delta_mb']:,.1f} | {mv['delta_mb']:,.1f} | "
             f"{ratio(mo['delta_mb'], mv['delta_mb'])} | < {GOAL_MB:g} MiB: {_met(mo['delta_mb'] < GOAL_MB)}; "
             f"≤ 1/{GOAL_MEMORY_SHARE:g} of vectorbt's: {_met(share >= GOAL_MEMORY_SHARE)} (1/{share:.1f}) |")
    L.append(f"| ↳ lifetime peak RSS of the child, MiB (interpreter + imports + data + warm-up + run) | "
             f"{mo['process_peak_mb']:,.0f} | {mv['process_peak_mb']:,.0f} | "
             f"{ratio(mo['process_peak_mb'], mv['process_peak_mb'])} | (info) |")
    L.append(f"| first `sweep()` in the process, s (2 combinations; Numba cache load or compile) | "
             f"{r['first_sweep_s']:.2f} | | | (info) |")
    L.append("")
    ob, vb = r["ours_best"], r["vbt_best"]
    L.append(f"Work done: ours {k:,} TREND backtests, best Sharpe {ob['sharpe']:.2f} at "
             f"{ob['trend.sma_fast']:.0f}/{ob['trend.sma_slow']:.0f} (total return {ob['total_return']:.1%}), "
             f"median Sharpe {r['ours_median_sharpe']:.2f}; vectorbt {r['vbt_portfolios']:,} grouped portfolios, "
             f"{r['vbt_orders']:,} orders, best Sharpe {vb['sharpe']:.2f} at {vb['pair'][0]}/{vb['pair'][1]} (total "
             f"return {vb['total_return']:.1%}), median Sharpe {r['vbt_median_sharpe']:.2f}. Peak RSS of this "
             f"(parent) process: {r['parent_peak_mb']:,.0f} MiB.")
    L.append("")
    for side, parts in (("our `sweep()`", r["ours_parts"]), ("vectorbt's pipeline", r["vbt_parts"])):
        tot = sum(parts.values())
        L += [f"Where {side} spends its time (best of {reps} per stage, stages sum to {tot:.3f} s):", "",
              "| stage | s | share |", "|---|---:|---:|"]
        L += [f"| {name} | {v:.3f} | {v / tot:.0%} |" for name, v in parts.items()]
        L.append("")
    return "\n".join(L)


# ----------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="400 combinations on 2 years of daily bars (smoke run)")
    add_output_args(ap)
    add_child_args(ap)
    ap.add_argument("--size", choices=tuple(SIZES), help=argparse.SUPPRESS)
    args = parse_args(ap, argv, lambda a: child_memory(a.pipeline, a.data_dir, a.size))
    if args is None:  # a memory child: done
        return 0

    info = machine_info(usable_cores=False)
    log(f"machine: {info}")
    r = measure("quick" if args.quick else "full", args.reps)
    if args.json_out:
        write_json(args.json_out, {"machine": info, "result": r})
    emit(render(info, r, args.reps), args.markdown_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
