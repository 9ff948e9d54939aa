"""The research commands: each prints its figures and writes an HTML report; bad input exits 2 before work."""
import pytest

import eternal_engine.api
import eternal_engine.research.sweep
from eternal_engine.cli import main


def test_sweep_command_prints_overfitting_statistics_and_writes_a_report(tmp_path, capsys):
    out = tmp_path / "sweep.html"
    code = main(["sweep", "--end", "2019-12-31", "--grid", "trend.sma_slow=100,200;trend.atr_stop_mult=2,3",
                 "--splits", "4", "--out", str(out), "-q"])
    text = capsys.readouterr().out
    assert code == 0
    assert "deflated Sharpe ratio of the best" in text and "probability of backtest overfitting" in text
    header = text.splitlines()[0].split()
    assert header[:3] == ["combo", "trend.sma_slow", "trend.atr_stop_mult"] and "n_trades" in header
    assert "fees_paid" not in header  # the console shows a selection, the report every column
    html = out.read_text()
    assert "<h2>Combinations, best first" in html and "<h2>Heatmap" in html and html.count("<svg") == 1
    assert "fees_paid" in html and "time_in_market" in html


def test_walk_forward_command(tmp_path, capsys):
    out = tmp_path / "wf.html"
    code = main(["walk-forward", "--grid", "trend.sma_slow=100,200", "--train", "730D", "--test", "365D",
                 "--purge", "7D", "--out", str(out), "-q"])
    assert code == 0
    assert "out of sample: cagr" in capsys.readouterr().out
    assert "<h2>Folds" in out.read_text()


def test_montecarlo_command(tmp_path, capsys):
    out = tmp_path / "mc.html"
    code = main(["montecarlo", "--paths", "200", "--block", "10", "--mc-seed", "3", "--out", str(out), "-q"])
    assert code == 0
    captured = capsys.readouterr()
    assert "p_hit" in captured.out and "paths" not in captured.err
    assert "<h2>Distributions" in out.read_text()


def test_montecarlo_command_shows_a_progress_bar_of_paths(capsys):
    assert main(["montecarlo", "--end", "2018-12-31", "--paths", "300", "--block", "10", "--out", ""]) == 0
    err = capsys.readouterr().err
    assert "running the backtest" in err and "montecarlo: 300/300 paths" in err


def _no_work(*args, **kwargs):
    raise AssertionError("the work started before the input was checked")


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--grid", "trend.sma_slow=100,200", "--splits", "7"], "n_splits must be an even integer"),
    (["sweep", "--grid", "trend.sma_slow=100,200", "--end", "2017-02-28", "--splits", "40"],
     "n_splits=40 is too large for 59 periods"),
    (["sweep", "--grid", "trend.sma_slow=100,200", "--end", "2017-05-31", "--splits", "4"],
     "the data holds 151 bars but the indicators need 200 to warm up"),
    (["sweep", "--grid", "trend.sma_slw=100,200"], "did you mean 'trend.sma_slow'"),
    (["montecarlo", "--block", "0.5"], "mean_block must be a number between 1"),
    (["montecarlo", "--end", "2017-03-31", "--block", "200"], "between 1 and the series length 90"),
    (["montecarlo", "--paths", "0"], "n_paths must be an integer >= 1"),
    (["montecarlo", "--mc-seed", "-1"], "seed must be a non-negative integer"),
])
def test_bad_research_input_fails_before_the_sweep_or_backtest_runs(argv, message, monkeypatch, capsys):
    monkeypatch.setattr(eternal_engine.research.sweep, "sweep", _no_work)
    monkeypatch.setattr(eternal_engine.api, "backtest", _no_work)
    assert main([*argv, "--out", "", "-q"]) == 2
    assert message in capsys.readouterr().err


def test_bad_research_input_exits_2_with_the_fix(capsys):
    assert main(["sweep", "--grid", "trend.sma_slw=100,200", "--out", "", "-q"]) == 2
    assert "did you mean 'trend.sma_slow'" in capsys.readouterr().err
    assert main(["walk-forward", "--grid", "trend.sma_slow=100", "--train", "4000D", "--out", "", "-q"]) == 2
    assert "longer than the data" in capsys.readouterr().err
    assert main(["sweep", "--grid", "trend.sma_slow", "--out", "", "-q"]) == 2
    assert "is not KEY=V1,V2" in capsys.readouterr().err
