"""Command line: ``eternal-engine <command> ...``. Errors print a one-line fix and exit with status 2."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2


class _Progress:
    """Stage-by-stage progress on stderr with elapsed times (the bar loop itself runs in compiled code)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {message}", file=sys.stderr, flush=True)


def _load_data(spec: str, args, say):
    from eternal_engine import data as ed
    from eternal_engine.errors import ConfigError, DataError

    interval = getattr(args, "interval", None)
    path = Path(spec).expanduser() if spec not in ("sample", "synthetic") else None
    if path is not None and path.is_dir():
        from eternal_engine.data.bybit import cached_market

        say(f"reading the Bybit cache at {path} (offline: no request is made)")
        return cached_market(path, interval=interval)
    if interval is not None:
        raise ConfigError(f"--interval {interval} only applies with --data <cache dir>, not --data {spec!r}; "
                          "drop it (for --data synthetic the bar size is --freq)")
    if spec == "sample":
        say("loading the bundled sample (synthetic BTC/ETH/SOL spot + perp + funding)")
        return ed.load_sample()
    if spec == "synthetic":
        say(f"generating {args.years} years of synthetic {args.freq} bars (seed {args.seed})")
        return ed.synthetic(years=args.years, freq=args.freq, seed=args.seed)
    if not path.suffix and not path.exists():
        raise DataError(f"--data {spec!r}: no such cache folder",
                        fix="pass a folder filled by `eternal-engine data fetch --cache DIR ...` (default "
                            "~/.cache/eternal-engine/bybit), a .csv/.parquet file, 'sample' or 'synthetic'")
    say(f"loading {path}")
    if path.suffix.lower() == ".csv":
        return ed.from_csv(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return ed.from_parquet(path)

    raise DataError(f"--data {spec!r} is neither 'sample', 'synthetic', a .csv/.parquet file nor a cache folder",
                    fix="pass --data sample, --data synthetic, the path of a long-format CSV/Parquet file or a "
                        "folder filled by `eternal-engine data fetch` (e.g. ~/.cache/eternal-engine/bybit)")


def cmd_backtest(args) -> int:
    import pandas as pd

    from eternal_engine.api import backtest
    from eternal_engine.config import Config

    say = _Progress(args.quiet)
    config = Config.from_yaml(args.config) if args.config else Config()
    market = _load_data(args.data, args, say)
    say(f"{market!r}")
    engines = tuple(e.strip() for e in args.engines.split(",")) if args.engines else None
    say("running the backtest (the first run in a fresh environment compiles the Numba kernels once: "
        "20 s to 2 min on 2 cores, then they load from the cache)")
    result = backtest(market, config, engines=engines, end=args.end, trade_from=args.start)
    say(f"done: {len(result.fill_records)} fills, {len(result.trade_records)} trades")
    stats = result.stats()
    with pd.option_context("display.max_rows", 200, "display.max_colwidth", 80,
                           "display.float_format", "{:,.4f}".format):
        print(stats.to_string())
        if len(result.sleeves) > 1 or "external" not in result.sleeves:
            print("\nP&L attribution by sleeve (flows are not profit):")
            print(result.attribution().drop(columns="check").to_string())
    ev = result.events
    for when, row in ev[ev["event"].isin(["halt", "reset"])].iterrows():
        what = ("L4 breaker: everything liquidated, trading halted" if row["event"] == "halt"
                else f"L4 reset rule fired (risk.l4_reset={config.risk.l4_reset}): trading resumed")
        print(f"{when:%Y-%m-%d %H:%M} {what}", file=sys.stderr)
    if args.out:
        say(f"writing the report to {args.out}")
        path = result.report(args.out)
        say(f"report written: {path}")
    return 0


def cmd_data_fetch(args) -> int:
    from eternal_engine.data.bybit import fetch_bybit_frames

    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    dl = fetch_bybit_frames(symbols, interval=args.interval, start=args.start, end=args.end,
                            category=args.category, cache_dir=args.cache, endpoint=args.endpoint,
                            progress=not args.quiet, max_rate=args.max_rate)
    print(f"Bybit {dl.interval} bars over [{dl.start:%Y-%m-%d %H:%M}, {dl.end:%Y-%m-%d %H:%M}) UTC")
    for name, df in dl.frames.items():
        extra = ""
        if "funding_rate" in df:
            extra = f", {len(dl.funding[name])} funding settlements, mark/index klines"
        print(f"  {name:<12} {len(df):>8} bars{extra}")
    print(f"requests made: {dl.requests} (rate-limited answers waited out: {dl.rate_limited}, "
          f"retries: {dl.retried})")
    print(f"cache: {dl.cache_dir}")
    report = dl.quality_report()
    if report is not None:
        print(str(report))
    return 0


def _add_data_args(p) -> None:
    """Options shared by the commands that run backtests: config, data, engines, window."""
    p.add_argument("--config", metavar="FILE", help="YAML config (default: the built-in defaults, "
                   "same as config/strategies.yaml)")
    p.add_argument("--data", default="sample", metavar="sample|synthetic|PATH",
                   help="market data: the bundled sample (default), a synthetic market, a long-format "
                        ".csv/.parquet file, or a cache folder filled by `eternal-engine data fetch` (read "
                        "offline: all its instruments over the range they all cover)")
    p.add_argument("--interval", metavar="CODE", help="with --data <cache dir>: which cached interval")
    p.add_argument("--engines", metavar="LIST", help="comma-separated engines to run (default: all four: core_hodl,trend,funding,tactical)")
    p.add_argument("--start", help="first bar to trade (UTC date/time); backtest: the bars before it warm up the "
                   "indicators; sweep, walk-forward, montecarlo: the data starts there")
    p.add_argument("--end", help="last bar to trade (UTC date/time, inclusive)")
    p.add_argument("--years", type=float, default=8.0, help="length of --data synthetic (default 8)")
    p.add_argument("--freq", default="1D", help="bar size of --data synthetic (default 1D)")
    p.add_argument("--seed", type=int, default=0, help="seed of --data synthetic (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def cmd_research(args) -> int:
    from eternal_engine.config import Config

    say = _Progress(args.quiet)
    config = Config.from_yaml(args.config) if args.config else Config()
    market = _load_data(args.data, args, say)
    if args.start or args.end:
        market = market.slice(args.start, args.end)
    say(f"{market!r}")
    args.engines = tuple(e.strip() for e in args.engines.split(",")) if args.engines else None
    return args.research(args, market, config, say)


REAL_MONEY_FLAG = "--i-understand-this-is-real-money"


def cmd_live(args) -> int:
    import os

    if args.mode == "live" and (os.environ.get("TRADING_MODE", "paper").strip().lower() != "live"
                                or not args.real_money):
        print(f"eternal-engine: error: --mode live needs TRADING_MODE=live in the environment and {REAL_MONEY_FLAG}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    from live.loop import run_live

    return run_live(args)


def _add_live_parser(sub) -> None:
    text = "run the live process: every closed bar the backtest's simulator decides, the difference is traded"
    p = sub.add_parser("live", help=text, description=text[0].upper() + text[1:] + ". Paper mode (default) "
                       "fills against live public prices and sends no order; testnet and live need "
                       "BYBIT_API_KEY/BYBIT_API_SECRET; live also TRADING_MODE=live and " + REAL_MONEY_FLAG +
                       " (its endpoint is mainnet only with BYBIT_TESTNET=false).")
    p.add_argument("--mode", choices=["paper", "testnet", "live"], default="paper", help="default paper")
    p.add_argument("--config", metavar="FILE", help="strategy YAML (default: the built-in defaults)")
    p.add_argument("--db", metavar="URL", help="database URL (default $DATABASE_URL or sqlite:///./trading_bot.db)")
    p.add_argument("--start", help="first bar the simulator may trade (UTC date); needed on the first run only")
    p.add_argument("--warmup-bars", type=int, metavar="N",
                   help="bars before --start fetched to warm up the indicators (default: TREND's warm-up)")
    p.add_argument("--interval", default="D", help="Bybit kline interval of the bars (default D)")
    p.add_argument("--engines", metavar="LIST", help="comma-separated engines (default: all four)")
    p.add_argument("--once", action="store_true", help="decide and trade the last closed bar, then exit")
    p.add_argument("--max-slippage", type=float, default=0.005,
                   help="guard of market orders: fraction beyond the best price (default 0.005)")
    p.add_argument("--paper-book", metavar="FILE", help="paper mode: JSON book of the simulated account "
                   "(default: next to the SQLite database, else ./paper_book.json)")
    p.add_argument("--unknown-grace", type=float, default=120.0, metavar="SECONDS",
                   help="an order the exchange does not show is kept Unknown this long, then Rejected (default 120)")
    p.add_argument("--paper-balance", type=float, metavar="USDT",
                   help="paper mode: opening USDT of a new book (default portfolio.initial_capital)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on 127.0.0.1:PORT/metrics (default: not served)")
    p.add_argument(REAL_MONEY_FLAG, dest="real_money", action="store_true",
                   help="with --mode live and TRADING_MODE=live: confirm real orders")
    p.set_defaults(func=cmd_live)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eternal-engine",
        description="Research and backtest the Eternal Engine crypto allocation system.",
    )
    sub = p.add_subparsers(dest="command", metavar="<command>", required=True)
    b = sub.add_parser("backtest", help="run a backtest, print its statistics and write an HTML report",
                       description="Run a backtest, print its statistics and write an HTML report.")
    _add_data_args(b)
    b.add_argument("--out", default="report.html", metavar="FILE",
                   help="HTML report path (default report.html; pass '' to skip)")
    b.set_defaults(func=cmd_backtest)

    from eternal_engine.research.commands import add_commands

    add_commands(sub, _add_data_args)
    for name in ("sweep", "walk-forward", "montecarlo"):
        sub.choices[name].set_defaults(func=cmd_research)


    try:  # the live process's operator commands (the `live` package ships with the distribution)
        from live.commands import add_commands as add_live_commands
    except ImportError:  # pragma: no cover - an install without the live package
        add_live_commands = None
    if add_live_commands is not None:
        add_live_commands(sub)
        _add_live_parser(sub)

    d = sub.add_parser("data", help="download and cache market data (Bybit)",
                       description="Market data: download Bybit V5 history into the local Parquet cache.")
    dsub = d.add_subparsers(dest="data_command", metavar="<data command>", required=True)
    f = dsub.add_parser("fetch", help="download klines, funding, mark/index klines into the cache",
                        description="Download Bybit klines (spot and linear), funding history and mark/index "
                                    "klines through pybit into the local cache; a second run over the same range "
                                    "is offline, and an interrupted run resumes where it stopped.")
    f.add_argument("--symbols", required=True, metavar="LIST",
                   help="comma-separated instruments, e.g. BTC-PERP,BTC-SPOT (linear and spot BTCUSDT)")
    f.add_argument("--interval", default="60",
                   help="Bybit kline interval: 1 3 5 15 30 60 120 240 360 720 D, or 1h/4h/1D (default 60)")
    f.add_argument("--start", required=True, help="first bar (UTC date/time, inclusive)")
    f.add_argument("--end", help="end (UTC date/time, exclusive; default: the last closed bar)")
    f.add_argument("--category", default="linear", choices=["linear", "spot"],
                   help="category of raw Bybit names such as BTCUSDT (default linear)")
    f.add_argument("--cache", metavar="DIR", help="cache folder (default $EE_DATA_CACHE or "
                   "~/.cache/eternal-engine/bybit)")
    f.add_argument("--endpoint", metavar="URL", help="API base URL (default $EE_BYBIT_ENDPOINT or "
                   "https://api.bybit.com), e.g. a testnet or a local fake")
    f.add_argument("--max-rate", type=float, default=10.0, help="requests per second (default 10)")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_data_fetch)
    return p


def main(argv=None) -> int:
    from eternal_engine.errors import EternalError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EternalError as e:
        print(f"eternal-engine: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, ValueError) as e:
        print(f"eternal-engine: error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
