"""The command line, run as a user would: a real subprocess through the installed entry point module."""
import subprocess
import sys

import pytest

from eternal_engine.cli import main


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "eternal_engine.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_every_command():
    out = run("--help")
    assert out.returncode == 0
    assert "backtest" in out.stdout


def test_backtest_on_sample_prints_stats_and_writes_report(tmp_path):
    report = tmp_path / "report.html"
    out = run("backtest", "--data", "sample", "--out", str(report))
    assert out.returncode == 0, out.stderr
    table, attribution = out.stdout.split("\n\n", 1)
    lines = dict(line.split(None, 1) for line in table.splitlines() if line.strip())
    for key in ("cagr", "sharpe", "sortino", "max_drawdown", "calmar", "n_trades", "money_weighted_return"):
        assert key in lines
    assert "P&L attribution by sleeve" in attribution
    for sleeve in ("core_hodl", "trend", "funding", "tactical", "portfolio"):
        assert sleeve in attribution
    assert "running the backtest" in out.stderr  # progress goes to stderr
    html = report.read_text()
    assert "Configuration" in html and "Trades (" in html and "config_hash" in html
    ours = html[html.index('<div id="eternal-engine-sections">'):]
    for heading in ("P&amp;L attribution by sleeve", "Equity by sleeve", "Drawdown and circuit breaker",
                    "Allocation over time", "Funding income", "Events (counts)", "Engine states"):
        assert f"<h2>{heading}" in ours, heading
    assert ours.count("<svg") == 4  # the four portfolio figures, inline


def test_window_and_synthetic_data(tmp_path, capsys):
    code = main(["backtest", "--data", "synthetic", "--years", "3", "--seed", "4", "--start", "2017-06-01",
                 "--out", "", "-q"])
    assert code == 0
    assert "2017-06-01" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--data", "nowhere.csv"], "file not found"),
    (["--data", "prices.txt"], "neither 'sample'"),
    (["--engines", "trnd"], "did you mean 'trend'"),
    (["--start", "2031-01-01"], "no bars"),
    (["--start", "notadate"], "not a date"),
])
def test_bad_input_exits_non_zero_with_a_clear_message(args, message, capsys):
    code = main(["backtest", "--out", "", "-q", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_bad_config_file_exits_non_zero(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("trend:\n  sma_slw: 100\n")
    assert main(["backtest", "--config", str(cfg), "--out", "", "-q"]) == 2
    assert "did you mean 'trend.sma_slow'" in capsys.readouterr().err
