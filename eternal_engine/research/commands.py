"""The research commands of the CLI: ``sweep``, ``walk-forward`` and ``montecarlo``, each writing an HTML report.

Registered by `eternal_engine.cli`; kept here so the research code and its command line live together.
"""
from __future__ import annotations

import json


def _grid(text: str) -> dict:
    """``--grid 'trend.sma_slow=100,150,200;trend.atr_stop_mult=2,3'`` or a JSON object."""
    from eternal_engine.errors import ConfigError

    text = text.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--grid is not valid JSON: {e}") from e
    grid = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, values = part.partition("=")
        if not sep or not values.strip():
            raise ConfigError(f"--grid part {part!r} is not KEY=V1,V2,...; e.g. 'trend.sma_slow=100,200'")
        grid[key.strip()] = [_value(v.strip()) for v in values.split(",")]
    return grid


def _value(v: str):
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _svg(fig):
    from eternal_engine.plots import _render

    return _render(fig)


def _equity_figure(returns, title):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.4))
    ax = fig.add_subplot()
    (1 + returns).cumprod().plot(ax=ax, logy=True)
    ax.set_title(title, loc="left")
    ax.grid(alpha=0.3)
    return _svg(fig)


def _days(index) -> int:
    """Rows of the daily returns a sweep keeps for ``index`` (UTC calendar days, first to last bar)."""
    return (index[-1].floor("D") - index[0].floor("D")).days + 1


_SHOWN = ("total_return", "cagr", "sharpe", "max_drawdown", "n_trades", "trade_win_rate", "max_breaker_level",
          "time_in_market")


def cmd_sweep(args, market, config, say) -> int:
    from eternal_engine.report import write_sections
    from eternal_engine.research.overfitting import check_n_splits
    from eternal_engine.research.sweep import combinations_of, sweep
    from eternal_engine.research.walk_forward import check_warmup

    grid = _grid(args.grid)
    check_n_splits(args.splits, _days(market.index))
    if args.engines is None or "trend" in args.engines:
        combos = combinations_of(grid)
        bar = market.index[1] - market.index[0] if len(market.index) > 1 else None
        check_warmup(config, combos, len(market.index), bar, "the data")
    res = sweep(market, config, grid, engines=args.engines, objective=args.objective, progress=not args.quiet)
    dsr, pbo = res.deflated_sharpe(), res.pbo(n_splits=args.splits)
    shown = ["combo", *res.params, *dict.fromkeys((args.objective, *_SHOWN))]  # the report has every column
    print(res.table[shown].head(args.top).to_string(index=False))
    print(f"\ndeflated Sharpe ratio of the best: {dsr.dsr:.4f}   probability of backtest overfitting: {pbo.pbo:.4f}")
    if args.out:
        sections = {"Combinations, best first": res.table,
                    "Overfitting": f"deflated Sharpe ratio of the best row: {dsr.dsr:.4f}\n"
                                   f"probability of backtest overfitting (CSCV, {args.splits} splits): {pbo.pbo:.4f}"}
        if len(res.params) >= 2:
            sections["Heatmap"] = _svg(res.heatmap(res.params[0], res.params[1]))
        say(f"report written: {write_sections(args.out, title='Eternal Engine sweep', sections=sections)}")
    return 0


def cmd_walk_forward(args, market, config, say) -> int:
    from eternal_engine.report import write_sections
    from eternal_engine.research.walk_forward import walk_forward

    wf = walk_forward(market, config, _grid(args.grid), train=args.train, test=args.test, purge=args.purge,
                      anchored=args.anchored, objective=args.objective, engines=args.engines,
                      progress=not args.quiet)
    print(wf.folds.drop(columns=["config_hash"]).to_string(index=False))
    s = wf.oos_stats()
    print(f"\nout of sample: cagr {s['cagr']:.4f}  sharpe {s['sharpe']:.4f}  max_drawdown {s['max_drawdown']:.4f}")
    if args.out:
        sections = {"Folds": wf.folds, "Out-of-sample statistics": s.to_frame("value"),
                    "Out-of-sample equity (test windows stitched)": _equity_figure(wf.oos_returns, "out-of-sample")}
        say(f"report written: {write_sections(args.out, title='Eternal Engine walk-forward', sections=sections)}")
    return 0


def cmd_montecarlo(args, market, config, say) -> int:
    from eternal_engine.api import backtest
    from eternal_engine.report import write_sections
    from eternal_engine.research.bootstrap import bootstrap_returns, bootstrap_summary, check_bootstrap_arguments

    check_bootstrap_arguments(len(market.index), n_paths=args.paths, mean_block=args.block, seed=args.mc_seed)
    say("running the backtest whose returns are resampled")
    r = backtest(market, config, engines=args.engines).returns
    say(f"bootstrapping {args.paths} paths (mean block {args.block} bars, seed {args.mc_seed})")
    paths = bootstrap_returns(r, n_paths=args.paths, mean_block=args.block, seed=args.mc_seed,
                              progress=not args.quiet)
    summary = bootstrap_summary(paths)
    print(summary.to_string())
    if args.out:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.4))
        ax1, ax2 = fig.subplots(1, 2)
        ax1.hist(paths["cagr"].dropna(), bins=50)
        ax1.set_title("CAGR across paths")
        ax2.hist(paths["max_drawdown"], bins=50, color="tab:red")
        ax2.set_title("max drawdown across paths")
        sections = {"Summary": summary.to_frame("value"), "Distributions": _svg(fig)}
        say(f"report written: {write_sections(args.out, title='Eternal Engine Monte Carlo', sections=sections)}")
    return 0


def add_commands(sub, add_data_args) -> None:
    """Register the three commands on the CLI's subparsers; ``add_data_args`` adds the shared data options."""
    s = sub.add_parser("sweep", help="run a parameter sweep with overfitting statistics and an HTML report",
                       description="Run every combination of --grid on the data; print the best rows, the "
                                   "deflated Sharpe ratio and the probability of backtest overfitting.")
    add_data_args(s)
    s.add_argument("--grid", required=True, help="'key=v1,v2;key2=v3,v4' (dotted config keys) or a JSON object")
    s.add_argument("--objective", default="sharpe", help="statistic to rank by (default sharpe)")
    s.add_argument("--splits", type=int, default=16, help="CSCV splits for PBO (even, default 16)")
    s.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    s.add_argument("--out", default="sweep.html", help="HTML report path ('' for none; default sweep.html)")
    s.set_defaults(research=cmd_sweep)

    w = sub.add_parser("walk-forward", help="walk-forward validation with an HTML report",
                       description="Choose parameters on each training window only, trade them on the next "
                                   "test window, and stitch the out-of-sample returns.")
    add_data_args(w)
    w.add_argument("--grid", required=True, help="as for sweep")
    w.add_argument("--train", default="730D", help="training window (default 730D)")
    w.add_argument("--test", default="180D", help="test window (default 180D)")
    w.add_argument("--purge", default="0D", help="gap between training and test (default 0D)")
    w.add_argument("--anchored", action="store_true", help="anchored (growing) training windows")
    w.add_argument("--objective", default="sharpe", help="statistic to choose by (default sharpe)")
    w.add_argument("--out", default="walk_forward.html", help="HTML report path ('' for none)")
    w.set_defaults(research=cmd_walk_forward)

    m = sub.add_parser("montecarlo", help="stationary block bootstrap of a backtest's returns, with an HTML report",
                       description="Resample the backtest's returns in blocks: distributions of CAGR and "
                                   "drawdown, and the probability of reaching each breaker level.")
    add_data_args(m)
    m.add_argument("--paths", type=int, default=2000, help="bootstrap paths (default 2000)")
    m.add_argument("--block", type=float, default=20.0, help="mean block length in bars (default 20)")
    m.add_argument("--mc-seed", type=int, default=0, help="bootstrap seed (default 0)")
    m.add_argument("--out", default="montecarlo.html", help="HTML report path ('' for none)")
    m.set_defaults(research=cmd_montecarlo)
