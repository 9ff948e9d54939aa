#!/usr/bin/env python
"""Speed and memory of the full four-engine portfolio backtest, against a vectorbt ``from_orders`` run of the
same size (a script, not a test).

    python benchmarks/bench_portfolio.py                  # 30 years hourly + 10 years of minutes (~6 min)
    python benchmarks/bench_portfolio.py --quick          # 2 years hourly + 3 months of minutes (~30 s)
    python benchmarks/bench_portfolio.py --reps 3 --markdown-out bench.md --json-out bench.json

The goals (from the performance issue):

* 30 years of synthetic hourly bars (~263k bars x 6 instruments: BTC/ETH/SOL spot + perp), all four engines:
  under 0.5 s once compiled;
* 10 years of 1-minute bars (~5.3M bars x 6): under 3 s, peak memory under 2 GB;
* printed with the ratio to a vectorbt ``Portfolio.from_orders`` run of comparable size (same bars, same six
  columns) in the same process.

What is measured, per data set (see benchmarks/README.md for details and caveats):

* data: ``eternal_engine.synthetic(years=Y, freq=F, seed=0)`` (default symbols: 3 spot + 3 perp columns);
  vectorbt gets the same closes, ``market.close`` with the (UTC) tz dropped from the index.
* sim step: ours = ``simulate_nb(...)`` alone, replayed with the exact arguments ``backtest(market)`` hands it
  (captured from a real run; output arrays and record buffers freshly allocated, untimed, before each call);
  vectorbt = ``Portfolio.from_orders`` alone (and, on an info row, its Numba kernel alone).
* whole backtest: ours = ``backtest(market)`` + ``result.stats()`` with the default config (all four engines,
  monthly DCA, breaker governance); vectorbt = ``from_orders`` + ``sharpe_ratio`` / ``total_return`` /
  ``max_drawdown``. The time goals are judged on this row.
* peak memory: each whole pipeline once, warm, in a fresh child process: peak RSS during the run minus the RSS
  just before it (data loaded, code compiled). The 2 GB goal is judged on that figure; the RSS of the loaded
  market data and the child's lifetime peak are reported beside it.

vectorbt's orders: the same closes; on the first bar of every calendar month each column is rebalanced to a
target percent of the (cash-shared, single-group) portfolio value, drawn deterministically from
``np.random.default_rng(0)`` (spots long, perps long or short); NaN (no order) on every other bar. Fees = our
taker fee per column (spot / perp), slippage and initial capital = ours.

Every timing: one untimed warm-up run, then the best of ``--reps`` (>= 3) ``time.perf_counter`` measurements,
ours and vectorbt's interleaved.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import os
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # benchmarks/, for _common (already there when run as a script)
    sys.path.insert(0, _HERE)

from _common import (  # noqa: E402  (_common also puts the repository on sys.path)
    FIELDS, WHOLE, add_child_args, add_output_args, best_of_pair, breakdown_lines, emit, kernel_seconds, log,
    machine_info, make_parser, memory_child, parse_args, pipeline_rss, ratio, save_arrays, spy, status_mb,
    time_sink, versions_text, write_json)

# (label, years, freq, time goal in seconds for backtest() + stats(), memory goal in MiB or None)
DATASETS = {
    "full": [("30 years hourly", 30.0, "1h", 0.5, None), ("10 years of minutes", 10.0, "1min", 3.0, 2048.0)],
    "quick": [("2 years hourly", 2.0, "1h", 0.5, None), ("3 months of minutes", 0.25, "1min", 3.0, 2048.0)],
}
WARM_BARS = 20_000  # size of the warm-up input in the memory children (compiles / loads every Numba function)
# simulate_nb's arguments that it writes to: the trade state (copied before each replay) and the outputs
# (allocated afresh before each replay, as `sim.simulate` does; their page faults are part of the timed call)
STATE_ARGS = ("ts",)
OUTPUT_ARGS = ("sleeve_equity", "level_out", "state_out", "orders", "fills", "pays", "trades", "events")


# ----------------------------------------------------------------------------------------------- set-up
def make_market(years: float, freq: str):
    import eternal_engine as ee

    return ee.synthetic(years=years, freq=freq, seed=0)


def ours_backtest(market):
    import eternal_engine as ee

    return ee.backtest(market)  # default config, all four engines


def ours_pipeline(market):
    return ours_backtest(market).stats()


def vbt_costs(market) -> dict:
    """Our cost model in vectorbt's terms: taker fee per column (spot or perp), slippage, initial capital."""
    import numpy as np

    from eternal_engine import Config

    cfg = Config()
    ex = cfg.execution
    fees = np.where(np.asarray(market.arrays.kind) == 1, ex.perp_taker_fee, ex.spot_taker_fee).astype(np.float64)
    return {"fees": fees[None, :], "slippage": float(ex.slippage), "init_cash": float(cfg.portfolio.initial_capital)}


def vbt_inputs(index_ns, close, symbols):
    """(close DataFrame with a tz-naive index, target-percent DataFrame): monthly rebalances, NaN elsewhere."""
    import numpy as np
    import pandas as pd

    index = pd.DatetimeIndex(np.asarray(index_ns, dtype="datetime64[ns]"))
    close_df = pd.DataFrame(close, index=index, columns=list(symbols))
    month = index.values.astype("datetime64[M]").astype(np.int64)
    first = np.ones(len(month), dtype=bool)
    first[1:] = month[1:] != month[:-1]
    rows = np.flatnonzero(first)
    rng = np.random.default_rng(0)
    perp = np.array([s.endswith("-PERP") for s in symbols])
    w = np.where(perp, rng.uniform(-0.10, 0.10, (len(rows), len(symbols))),
                 rng.uniform(0.05, 0.35, (len(rows), len(symbols))))
    gross = np.abs(w).sum(axis=1, keepdims=True)
    w = np.where(gross > 0.95, w * 0.95 / gross, w)  # never more than 95 % of the value committed
    size = np.full(close.shape, np.nan)
    size[rows] = w
    return close_df, pd.DataFrame(size, index=index, columns=list(symbols))


def vbt_from_orders(close_df, size_df, c, freq):
    import vectorbt as vbt

    return vbt.Portfolio.from_orders(close_df, size_df, size_type="targetpercent", fees=c["fees"],
                                     slippage=c["slippage"], init_cash=c["init_cash"], cash_sharing=True,
                                     group_by=True, call_seq="auto", freq=freq)


def vbt_pipeline(close_df, size_df, c, freq):
    pf = vbt_from_orders(close_df, size_df, c, freq)
    return pf.sharpe_ratio(), pf.total_return(), pf.max_drawdown()


def sim_arg_names() -> list[str]:
    from eternal_engine.sim.nb import simulate_nb

    names = list(inspect.signature(getattr(simulate_nb, "py_func", simulate_nb)).parameters)
    missing = [a for a in STATE_ARGS + OUTPUT_ARGS if a not in names]
    if missing:
        raise RuntimeError(f"simulate_nb has no argument(s) {missing} any more (signature: {names}): "
                           "update STATE_ARGS / OUTPUT_ARGS in this benchmark")
    return names


def capture_sim_args(market):
    """(args, result): the arguments `backtest(market)` passes to `simulate_nb` (inputs by reference, the trade
    state copied before the call mutates it), and the BacktestResult of that run."""
    import numpy as np

    from eternal_engine.sim import nb as sim_nb

    names = sim_arg_names()
    seen = []

    def on_call(args, seconds):
        if seconds is None and not seen:
            a = dict(zip(names, args))
            for k in STATE_ARGS:
                v = a[k]
                a[k] = type(v)(*(np.copy(x) for x in v)) if hasattr(v, "_fields") else np.copy(v)
            seen.append(a)

    with spy(sim_nb, "simulate_nb", on_call):
        res = ours_backtest(market)
    if not seen:
        raise RuntimeError("backtest() did not call eternal_engine.sim.nb.simulate_nb: update this benchmark")
    return seen[0], res


def replay_args(captured: dict) -> tuple:
    """Positional arguments for one replay: inputs shared, trade state copied, outputs freshly allocated."""
    import numpy as np

    a = dict(captured)
    for k in STATE_ARGS:
        v = a[k]
        a[k] = type(v)(*(np.copy(x) for x in v)) if hasattr(v, "_fields") else np.copy(v)
    for k in OUTPUT_ARGS:
        a[k] = np.empty_like(a[k])
    return tuple(a.values()), a


# ----------------------------------------------------------------------------------------------- timing
def vbt_kernel_seconds(close_df, size_df, c, freq, reps) -> float:
    """Best time spent inside ``vectorbt.portfolio.dispatch.simulate_from_orders`` during ``from_orders``."""
    from vectorbt.portfolio import dispatch

    return kernel_seconds(dispatch, "simulate_from_orders", lambda: vbt_from_orders(close_df, size_df, c, freq),
                          reps)


BUILDERS = ("trend_inputs", "core_inputs", "funding_inputs", "tactical_inputs", "calendar")


def breakdown(market, reps) -> dict:
    """Where `backtest(market)` + `stats()` spends its time (best of ``reps`` per stage), seconds.

    The real code path runs; the input builders of `sim.build` and `sim.nb.simulate_nb` are timed by wrappers.
    """
    from eternal_engine.sim import build
    from eternal_engine.sim import nb as sim_nb

    names = [f"sim.build.{b}" for b in BUILDERS] + [
        "simulate_nb: the bar loop", "rest of backtest(): config, other inputs, BacktestResult",
        "stats()", WHOLE]
    best = dict.fromkeys(names, float("inf"))
    ours_pipeline(market)  # warm
    for _ in range(reps):
        spent = dict.fromkeys(BUILDERS + ("sim",), 0.0)
        with contextlib.ExitStack() as stack:
            for b in BUILDERS:
                stack.enter_context(spy(build, b, time_sink(spent, b)))
            stack.enter_context(spy(sim_nb, "simulate_nb", time_sink(spent, "sim")))
            t0 = time.perf_counter()
            res = ours_backtest(market)
            t1 = time.perf_counter()
            res.stats()
            t2 = time.perf_counter()
        del res
        got = [spent[b] for b in BUILDERS] + [spent["sim"], (t1 - t0) - sum(spent.values()), t2 - t1, t2 - t0]
        for k, v in zip(names, got):
            best[k] = min(best[k], v)
    return best


# ----------------------------------------------------------------------------------------------- memory (child)
def save_data(market, directory):
    save_arrays(market, directory)
    with open(os.path.join(directory, "meta.json"), "w") as f:
        json.dump({"symbols": list(market.symbols)}, f)


def child_memory(pipeline: str, directory: str, freq: str) -> dict:
    """Load the saved data, run the whole pipeline on WARM_BARS bars (imports, Numba), then once on everything;
    report RSS figures in MiB."""
    import numpy as np
    import pandas as pd

    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    if pipeline == "ours":
        from eternal_engine.data import MarketData
        from eternal_engine.sim import nb as _  # noqa: F401  (imports Numba before the "before data" reading)

        gc.collect()
        before_data = status_mb("VmRSS")
        arr = {f: np.load(os.path.join(directory, f + ".npy")) for f in ("ts_ns",) + FIELDS}
        index = pd.DatetimeIndex(arr.pop("ts_ns"), tz="UTC")
        market = MarketData(index, meta["symbols"], *(arr.pop(f) for f in FIELDS), freq=freq)
        gc.collect()
        data_mb = status_mb("VmRSS") - before_data
        data_bytes = sum(x.nbytes for x in market.arrays) + market.index.nbytes
        small = market.slice(None, market.index[min(WARM_BARS, len(market)) - 1])
        ours_pipeline(small)
        del small
        run = lambda: ours_pipeline(market)  # noqa: E731
    else:
        import vectorbt  # noqa: F401

        gc.collect()
        before_data = status_mb("VmRSS")
        ts = np.load(os.path.join(directory, "ts_ns.npy"))
        close_df, size_df = vbt_inputs(ts, np.load(os.path.join(directory, "close.npy")), meta["symbols"])
        del ts
        gc.collect()
        data_mb = status_mb("VmRSS") - before_data
        data_bytes = close_df.values.nbytes + size_df.values.nbytes + close_df.index.nbytes
        kind = np.array([1 if s.endswith("-PERP") else 0 for s in meta["symbols"]])
        from eternal_engine import Config

        ex, p = Config().execution, Config().portfolio
        c = {"fees": np.where(kind == 1, ex.perp_taker_fee, ex.spot_taker_fee)[None, :].astype(float),
             "slippage": float(ex.slippage), "init_cash": float(p.initial_capital)}
        k = min(WARM_BARS, len(close_df))
        vbt_pipeline(close_df.iloc[:k].copy(), size_df.iloc[:k].copy(), c, freq)
        run = lambda: vbt_pipeline(close_df, size_df, c, freq)  # noqa: E731
    return {"data_mb": data_mb, "data_nbytes_mb": data_bytes / 2**20, **pipeline_rss(run)}


def rss() -> str:
    """This process's RSS and peak RSS, for the progress log."""
    return f" [parent RSS {status_mb('VmRSS'):,.0f} MiB, peak {status_mb('VmHWM'):,.0f} MiB]"


def memory(pipeline: str, directory: str, freq: str) -> dict:
    return memory_child(__file__, pipeline, directory, "--freq", freq)


# ----------------------------------------------------------------------------------------------- one data set
def measure(label: str, years: float, freq: str, reps: int, log, first: bool) -> dict:
    import numpy as np

    from eternal_engine.sim.nb import simulate_nb

    t0 = time.perf_counter()
    market = make_market(years, freq)
    n, m = market.arrays.close.shape
    r: dict = {"label": label, "years": years, "freq": freq, "bars": n, "columns": m,
               "symbols": list(market.symbols), "gen_s": time.perf_counter() - t0}
    log(f"[{label}] {n:,} bars x {m} columns generated in {r['gen_s']:.1f} s{rss()}")

    # --- first backtest in this process: includes loading (or compiling) the Numba cache
    t0 = time.perf_counter()
    captured, res = capture_sim_args(market)
    r["first_backtest_s"] = time.perf_counter() - t0
    if first:
        log(f"[{label}] first backtest() in the process (Numba cache load / compile): {r['first_backtest_s']:.2f} s"
            + rss())
    r["n_orders"], r["n_fills"] = len(res.order_records), len(res.fill_records)
    r["n_trades"], r["n_funding"], r["n_events"] = (len(res.trade_records), len(res.funding_records),
                                                    len(res.event_records))
    r["final_equity"] = float(res._equity[-1])
    ref_equity = np.array(res._sleeve_equity)
    del res

    # --- the replay must reproduce the real run, or the sim-step row means nothing
    args, named = replay_args(captured)
    simulate_nb(*args)
    r["replay_matches"] = bool(np.array_equal(named["sleeve_equity"], ref_equity, equal_nan=True))
    if not r["replay_matches"]:
        log(f"[{label}] WARNING: replaying simulate_nb's captured arguments does not reproduce backtest()'s "
            "sleeve equity (an input is mutated by the call, or the run is not deterministic)")
    del args, named, ref_equity

    # --- vectorbt inputs
    c = vbt_costs(market)
    close_df, size_df = vbt_inputs(market.arrays.ts_ns, market.arrays.close, market.symbols)

    # --- sim step: simulate_nb alone vs from_orders alone, interleaved
    r["sim_ours_s"], r["sim_vbt_s"] = best_of_pair(
        lambda a: simulate_nb(*a), lambda _: vbt_from_orders(close_df, size_df, c, freq), reps,
        setup_a=lambda: replay_args(captured)[0])
    r["vbt_kernel_s"] = vbt_kernel_seconds(close_df, size_df, c, freq, reps)
    pf = vbt_from_orders(close_df, size_df, c, freq)
    r["vbt_n_orders"] = int(len(pf.order_records))
    r["vbt_final_value"] = float(np.asarray(pf.final_value()).ravel()[0])
    del pf
    log(f"[{label}] sim step: ours {r['sim_ours_s']:.4f} s ({r['sim_ours_s'] / n * 1e9:.0f} ns/bar), vectorbt "
        f"from_orders {r['sim_vbt_s']:.4f} s (kernel {r['vbt_kernel_s']:.4f} s){rss()}")
    del captured
    gc.collect()

    # --- whole backtest, interleaved
    bt_only = []

    def ours_whole(_):  # backtest() + stats(), noting backtest()'s own share of the same runs
        t0 = time.perf_counter()
        res = ours_backtest(market)
        bt_only.append(time.perf_counter() - t0)
        return res.stats()

    r["whole_ours_s"], r["whole_vbt_s"] = best_of_pair(ours_whole,
                                                       lambda _: vbt_pipeline(close_df, size_df, c, freq), reps)
    r["backtest_only_s"] = min(bt_only[1:])  # best over the timed runs (the first is the warm-up)
    log(f"[{label}] whole: ours backtest+stats {r['whole_ours_s']:.3f} s (backtest() alone "
        f"{r['backtest_only_s']:.3f} s), vectorbt {r['whole_vbt_s']:.3f} s{rss()}")
    r["breakdown"] = breakdown(market, reps)
    r["parent_peak_mb"] = status_mb("VmHWM")

    # --- peak memory, each pipeline in a fresh child
    with tempfile.TemporaryDirectory(prefix="ee-bench-portfolio-") as tmp:
        save_data(market, tmp)
        del market, close_df, size_df
        gc.collect()
        for p in ("ours", "vbt"):
            r[f"mem_{p}"] = memory(p, tmp, freq)
            log(f"[{label}] memory {p}: " + ", ".join(f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}"
                                                      for k, v in r[f"mem_{p}"].items()))
    return r


# ----------------------------------------------------------------------------------------------- report
def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(info: dict, results: list[dict], args) -> str:
    from eternal_engine import Config

    p = Config().portfolio
    L = [f"### Four-engine portfolio vs vectorbt `from_orders` — {info['date']}", ""]
    L.append(f"Machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']} at start; "
             f"{info['platform']}. " + versions_text(info))
    L.append("")
    L.append(f"Ours: `backtest(market)` with the default config — CORE-HODL, TREND, FUNDING and TACTICAL sleeves, "
             f"monthly DCA of {p.dca_amount:,.0f}, breaker governance — on `synthetic(years, freq, seed=0)` "
             "(BTC/ETH/SOL spot + perp, 6 columns). vectorbt: `Portfolio.from_orders` on the same closes "
             "(tz-naive index), monthly rebalancing of all 6 columns to deterministic random target percents "
             "(`size_type='targetpercent'`, `cash_sharing=True`, `group_by=True`, `call_seq='auto'`), same fees, "
             f"slippage and initial capital. Best of {args.reps} after one warm-up run; ratio = vectorbt ÷ ours "
             "(> 1: ours is faster or smaller). Memory in MiB.")
    L.append("")
    L.append("| measure | bars | ours | vectorbt | ratio | goal: met/missed |")
    L.append("|---|---:|---:|---:|---:|---|")
    for r in results:
        n = r["bars"]
        nb = f"{n:,} × {r['columns']} ({r['label']})"
        so, sv, sk = r["sim_ours_s"], r["sim_vbt_s"], r["vbt_kernel_s"]
        L.append(f"| sim step, s (`simulate_nb` vs `from_orders`) | {nb} | {so:.4f} ({so / n * 1e9:.0f} ns/bar) | "
                 f"{sv:.4f} ({sv / n * 1e9:.0f} ns/bar) | {ratio(sv, so)} | (info) |")
        L.append(f"| ↳ vectorbt's Numba kernel alone (`dispatch.simulate_from_orders`), s | {nb} | {so:.4f} | "
                 f"{sk:.4f} | {ratio(sk, so)} | (info) |")
        wo, wv = r["whole_ours_s"], r["whole_vbt_s"]
        L.append(f"| **whole backtest, s** (`backtest()` + `stats()` vs `from_orders` + 3 metrics) | {nb} | "
                 f"{wo:.3f} | {wv:.3f} | {ratio(wv, wo)} | < {r['goal_s']:g} s: {_met(wo < r['goal_s'])} |")
        bo = r["backtest_only_s"]
        L.append(f"| ↳ `backtest()` alone, s (best over the same runs) | {nb} | {bo:.3f} | | | (info) |")
        mo, mv = r["mem_ours"], r["mem_vbt"]
        lab = "peak RSS during the pipeline − RSS before it (data loaded, code warm)" if mo["hwm_reset"] else \
            "lifetime peak RSS − RSS before the pipeline (high-water mark could not be reset)"
        goal = f"< {r['goal_mb']:g} MiB: {_met(mo['delta_mb'] < r['goal_mb'])}" if r["goal_mb"] else "(info)"
        L.append(f"| **peak memory, MiB** ({lab}) | {nb} | {mo['delta_mb']:.0f} | {mv['delta_mb']:.0f} | "
                 f"{ratio(mv['delta_mb'], mo['delta_mb'])} | {goal} |")
        L.append(f"| ↳ RSS of the loaded input data, MiB (ours: OHLCV + funding, 6 arrays of bars × 6 float64, "
                 f"+ index; vectorbt: close + target-percent frames) | {nb} | {mo['data_mb']:.0f} "
                 f"({mo['data_nbytes_mb']:.0f} in arrays) | {mv['data_mb']:.0f} ({mv['data_nbytes_mb']:.0f} in "
                 f"arrays) | | (info) |")
        L.append(f"| ↳ data + pipeline peak, MiB (the two rows above added) | {nb} | "
                 f"{mo['data_mb'] + mo['delta_mb']:.0f} | {mv['data_mb'] + mv['delta_mb']:.0f} | "
                 f"{ratio(mv['data_mb'] + mv['delta_mb'], mo['data_mb'] + mo['delta_mb'])} | (info) |")
        L.append(f"| ↳ lifetime peak RSS of the child, MiB (interpreter + imports + data + warm-up + pipeline) | "
                 f"{nb} | {mo['process_peak_mb']:.0f} | {mv['process_peak_mb']:.0f} | "
                 f"{ratio(mv['process_peak_mb'], mo['process_peak_mb'])} | (info) |")
    r0 = results[0]
    L.append(f"| first `backtest()` in the process, s (imports done; Numba cache load or compile; {r0['label']}) | "
             f"{r0['bars']:,} × {r0['columns']} | {r0['first_backtest_s']:.2f} | | | (info) |")
    L.append("")
    big = max(results, key=lambda r: r["bars"])
    L.append("The time goals are judged on `backtest()` + `stats()`; the 2 GB memory goal on the pipeline's own "
             "peak above the loaded data (the data is listed separately: for "
             f"{big['label']} our `MarketData` arrays alone are {big['mem_ours']['data_nbytes_mb']:,.0f} MiB). "
             "Peak RSS of this (parent) process over the whole script: "
             f"{max(r['parent_peak_mb'] for r in results):,.0f} MiB (data, captured simulator inputs, and both "
             "sides' runs; vectorbt's runs leave the memory they allocated resident in the process).")
    L.append("")
    for r in results:
        match = "reproduces" if r["replay_matches"] else "**does not reproduce**"
        L.append(f"Work done, {r['label']} ({r['bars']:,} bars, data generated in {r['gen_s']:.1f} s): ours "
                 f"{r['n_orders']:,} orders, {r['n_fills']:,} fills, {r['n_trades']:,} round trips, "
                 f"{r['n_funding']:,} funding payments, {r['n_events']:,} events, final equity "
                 f"{r['final_equity']:,.0f}; vectorbt {r['vbt_n_orders']:,} orders, final value "
                 f"{r['vbt_final_value']:,.0f}. The `simulate_nb` replay {match} `backtest()`'s equity.")
    L.append("")
    for r in results:
        L += breakdown_lines(r["breakdown"], f"{r['label']} ({r['bars']:,} bars; ", args.reps)
    return "\n".join(L)


# ----------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="2 years hourly + 3 months of minutes (smoke run)")
    add_output_args(ap)
    add_child_args(ap)
    ap.add_argument("--freq", help=argparse.SUPPRESS)
    args = parse_args(ap, argv, lambda a: child_memory(a.pipeline, a.data_dir, a.freq))
    if args is None:  # a memory child: done
        return 0

    info = machine_info(usable_cores=False)
    log(f"machine: {info}")
    results = []
    for k, (label, years, freq, goal_s, goal_mb) in enumerate(DATASETS["quick" if args.quick else "full"]):
        r = measure(label, years, freq, args.reps, log, first=k == 0)
        r["goal_s"], r["goal_mb"] = goal_s, goal_mb
        results.append(r)
        if args.json_out:  # after every data set, so that a long run that fails later keeps what it measured
            write_json(args.json_out, {"machine": info, "results": results})
        gc.collect()
    emit(render(info, results, args), args.markdown_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
