"""Operator commands act through the database: halt, status, resume (and their alerts)."""
from eternal_engine.cli import main


def test_halt_status_resume_round_trip(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'ops.db'}"
    assert main(["status", "--db", db]) == 0
    assert "state: running" in capsys.readouterr().out
    assert main(["halt", "--db", db, "--reason", "exchange incident", "--by", "alice"]) == 0
    out = capsys.readouterr().out
    assert "state: HALTED" in out and "by alice" in out and "exchange incident" in out
    assert main(["status", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "state: HALTED" in out and "unacknowledged alerts: 1" in out  # the halt's P0 alert
    assert main(["resume", "--db", db, "--by", "bob"]) == 0
    out = capsys.readouterr().out
    assert "state: running" in out and "by bob" in out

    from live.db.repo import Repository
    from live.db.session import make_engine

    repo = Repository(make_engine(db))
    assert repo.is_halted() is False


def test_halt_needs_a_reason(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["halt", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert "--reason" in capsys.readouterr().err
