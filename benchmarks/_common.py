"""Helpers shared by ``bench_trend.py`` and ``bench_portfolio.py`` (not a benchmark itself).

The scripts are run as ``python benchmarks/<script>.py`` from the repository root, so this folder is on
``sys.path`` and they import this module as ``_common``. Importing it puts the repository on ``sys.path`` too.

* set-up: ``REPO``, ``child_env`` (the environment of every child process), ``spy`` (wrap a module attribute);
* timing: ``timed``, ``best_of``, ``best_of_pair`` (interleaved best-of), ``kernel_seconds`` (time spent inside
  one wrapped function), ``time_sink`` (a ``spy`` callback that adds up seconds);
* memory: ``status_mb`` / ``reset_hwm`` (``/proc/self``), ``save_arrays`` (the market's arrays as ``.npy``),
  ``pipeline_rss`` (the peak-RSS measurement a memory child makes), ``memory_child`` (runs such a child);
* report: ``machine_info``, ``versions_text``, ``ratio``, ``breakdown_lines`` (the "where the time goes" table);
* main: ``make_parser``, ``add_output_args`` / ``add_child_args`` (the common command-line options),
  ``parse_args`` (answers a memory child), ``log``, ``write_json``, ``emit``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import json
import os
import platform
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

FIELDS = ("open", "high", "low", "close", "volume", "funding")  # the market's per-bar arrays besides ts_ns


# ----------------------------------------------------------------------------------------------- set-up
def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@contextlib.contextmanager
def spy(module, name: str, on_call):
    """Replace ``module.name`` while the block runs by a wrapper that calls ``on_call(args, seconds)`` before
    (``seconds=None``) and after the real call. What the first call returns, if not None, is passed to the
    second instead of ``args`` (e.g. a copy of the arguments made before the call mutates them)."""
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        before = on_call(args, None)
        t0 = time.perf_counter()
        out = real(*args, **kwargs)
        on_call(args if before is None else before, time.perf_counter() - t0)
        return out

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, real)


# ----------------------------------------------------------------------------------------------- timing
def timed(fn, arg) -> float:
    """Seconds taken by ``fn(arg)`` (``time.perf_counter``)."""
    t0 = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t0


def best_of(fn, reps: int, setup=None, warm: bool = True) -> float:
    """Seconds: one untimed warm-up call (unless ``warm=False``), then the best of ``reps`` timed calls.

    ``setup()`` runs untimed before every call and its result is passed to ``fn``.
    """
    if warm:
        fn(setup() if setup else None)
    best = float("inf")
    for _ in range(reps):
        arg = setup() if setup else None
        best = min(best, timed(fn, arg))
    return best


def best_of_pair(fn_a, fn_b, reps: int, setup_a=None) -> tuple[float, float]:
    """`best_of` for two functions with their runs interleaved (a, b, a, b, ...), so that noise from other
    processes on a shared machine hits both sides alike. One untimed warm-up call of each first.

    ``setup_a()`` runs untimed before every call of ``fn_a`` and its result is passed to it (``fn_b`` gets None).
    """
    fn_a(setup_a() if setup_a else None)
    fn_b(None)
    best_a = best_b = float("inf")
    for _ in range(reps):
        arg = setup_a() if setup_a else None
        best_a = min(best_a, timed(fn_a, arg))
        del arg  # freed before fn_b runs
        best_b = min(best_b, timed(fn_b, None))
    return best_a, best_b


def kernel_seconds(module, name: str, run, reps: int) -> float:
    """Best time spent inside ``module.name`` over ``reps`` calls of ``run()`` after one warm-up call (e.g. a
    vectorbt kernel in ``vectorbt.portfolio.dispatch`` during ``from_signals`` / ``from_orders``)."""
    spent = []
    with spy(module, name, lambda args, s: spent.append(s) if s is not None else None):
        for _ in range(reps + 1):
            run()
    return min(spent[1:])


def time_sink(spent: dict, key):
    """A ``spy`` callback that adds the seconds of every call to ``spent[key]``."""
    def on_call(args, seconds):
        if seconds is not None:
            spent[key] += seconds
    return on_call


# ----------------------------------------------------------------------------------------------- memory
def status_mb(field: str) -> float:
    """A ``/proc/self/status`` field in MiB (``VmRSS``, ``VmHWM``), NaN if absent."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_hwm() -> bool:
    """Reset the kernel's RSS high-water mark (``VmHWM`` := current RSS); False if that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def save_arrays(market, directory):
    """``market.arrays``' ``ts_ns`` and ``FIELDS`` as ``<name>.npy`` files in ``directory``."""
    import numpy as np

    a = market.arrays
    np.save(os.path.join(directory, "ts_ns.npy"), a.ts_ns)
    for f in FIELDS:
        np.save(os.path.join(directory, f + ".npy"), getattr(a, f))


def pipeline_rss(run) -> dict:
    """Call ``run()`` once and report RSS figures in MiB: the RSS just before it, the process's peak before and
    during it (the high-water mark is reset in between, if the kernel allows), and the peak over the RSS before.
    Everything the measurement should not count (data, imports, warm-up) must already be done."""
    gc.collect()
    baseline = status_mb("VmRSS")
    hwm_setup = status_mb("VmHWM")  # peak of this process so far: start-up, imports, data, warm-up
    reset = reset_hwm()  # VmHWM := current RSS, so the next reading is the pipeline's own peak
    out = run()
    hwm = status_mb("VmHWM")
    del out
    # ru_maxrss is not used: Linux carries it over from the parent across fork + exec.
    return {"baseline_mb": baseline, "setup_peak_mb": hwm_setup, "pipeline_peak_mb": hwm, "hwm_reset": reset,
            "delta_mb": hwm - baseline, "process_peak_mb": max(hwm_setup, hwm), "after_mb": status_mb("VmRSS")}


def memory_child(script: str, pipeline: str, directory: str, *extra: str) -> dict:
    """Run ``script --child memory --pipeline PIPELINE --data-dir DIRECTORY [extra]`` in a fresh interpreter and
    return the JSON dict it prints last."""
    proc = subprocess.run([sys.executable, os.path.abspath(script), "--child", "memory", "--pipeline", pipeline,
                           "--data-dir", directory, *extra], capture_output=True, text=True, env=child_env())
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {pipeline} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------- report
def machine_info(usable_cores: bool = True) -> dict:
    """Date, CPU, load average and library versions (``usable_cores``: also the cores this process may use)."""
    import numba
    import numpy
    import pandas

    try:
        import vectorbt

        vbt_version, engine = vectorbt.__version__, vectorbt.settings["engine"]
    except Exception as e:  # noqa: BLE001
        vbt_version, engine = f"unavailable ({e})", "-"
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu, "cores": os.cpu_count()}
    if usable_cores:
        try:
            info["usable_cores"] = len(os.sched_getaffinity(0))
        except AttributeError:
            info["usable_cores"] = os.cpu_count()
    info.update({
        "loadavg": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(), "numba": numba.__version__, "numpy": numpy.__version__,
        "pandas": pandas.__version__, "vectorbt": vbt_version, "vectorbt_engine": engine,
        "platform": platform.platform(),
    })
    return info


def versions_text(info: dict) -> str:
    return (f"Python {info['python']}, numba {info['numba']}, numpy {info['numpy']}, pandas {info['pandas']}, "
            f"vectorbt {info['vectorbt']} (engine: {info['vectorbt_engine']}).")


def ratio(a: float, b: float) -> str:
    """``a / b`` as "1.23×", "-" if ``b`` is not positive."""
    return f"{a / b:.2f}×" if b > 0 else "-"


WHOLE = "whole: backtest() + stats()"  # the breakdown's key for the whole run


def breakdown_lines(b: dict, where: str, reps: int) -> list[str]:
    """"Where our whole backtest spends its time, ``where``best of ``reps`` per stage; …" and the Markdown table
    of the stages of a ``breakdown()`` dict (seconds and share of their sum), with a blank line after each."""
    parts = {k: v for k, v in b.items() if not k.startswith("whole")}
    tot = sum(parts.values())
    whole = b.get(WHOLE, float("nan"))
    L = [f"Where our whole backtest spends its time, {where}best of {reps} per stage; stages sum to {tot:.3f} s, "
         f"whole run {whole:.3f} s):", "", "| stage | s | share |", "|---|---:|---:|"]
    L += [f"| {k} | {v:.4f} | {v / tot:.0%} |" for k, v in parts.items()]
    return L + [""]


# ----------------------------------------------------------------------------------------------- main
def make_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by the first paragraph of the script's docstring."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_output_args(ap):
    """``--reps``, ``--markdown-out``, ``--json-out``."""
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions after the warm-up (>= 3; default 5)")
    ap.add_argument("--markdown-out", metavar="FILE", help="also write the Markdown tables to FILE")
    ap.add_argument("--json-out", metavar="FILE", help="also write the raw measurements as JSON")


def add_child_args(ap):
    """The hidden options of a memory child: ``--child``, ``--pipeline``, ``--data-dir``."""
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--pipeline", help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)


def parse_args(ap, argv, child_memory):
    """Parse ``argv``. In a memory child (``--child memory``) run ``child_memory(args)``, print its result as
    JSON and return None; otherwise check ``--reps`` and return the arguments."""
    args = ap.parse_args(argv)
    if args.child == "memory":
        print(json.dumps(child_memory(args)))
        return None
    if args.reps < 3:
        ap.error("--reps must be at least 3")
    return args


def log(msg):
    """Progress, to stderr."""
    print(msg, file=sys.stderr, flush=True)


def write_json(path: str, obj: dict):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, default=str)


def emit(table: str, markdown_out: str | None):
    """Print the tables to stdout and, with ``--markdown-out``, to that file."""
    print(table)
    if markdown_out:
        with open(markdown_out, "w") as f:
            f.write(table + "\n")
