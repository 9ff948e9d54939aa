"""The research commands: each prints its figures and writes an HTML report; bad input exits 2 before work."""
from eternal_engine.cli import main


def test_sweep_command_prints_overfitting_statistics_and_writes_a_report(tmp_path, capsys):
    out = tmp_path / "sweep.html"
    code = main(["sweep", "--end", "2019-12-31", "--grid", "trend.sma_slow=100,200;trend.atr_stop_mult=2,3",
                 "--splits", "4", "--out", str(out), "-q"])
    text = capsys.readouterr().out
    assert code == 0
    assert "deflated Sharpe ratio of the best" in text and "probability of backtest overfitting" in text
    html = out.read_text()
    assert "<h2>Combinations, best first" in html and "<h2>Heatmap" in html and html.count("<svg") == 1


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
    assert "p_hit" in capsys.readouterr().out
    assert "<h2>Distributions" in out.read_text()


def test_bad_research_input_exits_2_with_the_fix(capsys):
    assert main(["sweep", "--grid", "trend.sma_slw=100,200", "--out", "", "-q"]) == 2
    assert "did you mean 'trend.sma_slow'" in capsys.readouterr().err
    assert main(["walk-forward", "--grid", "trend.sma_slow=100", "--train", "4000D", "--out", "", "-q"]) == 2
    assert "longer than the data" in capsys.readouterr().err
    assert main(["sweep", "--grid", "trend.sma_slow", "--out", "", "-q"]) == 2
    assert "is not KEY=V1,V2" in capsys.readouterr().err
