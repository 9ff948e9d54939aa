"""live.db on SQLite and PostgreSQL: migrations, constraints, the order state machine, fills, control."""
from __future__ import annotations

import math
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, inspect, insert, select, text
from sqlalchemy.exc import IntegrityError

from live.db import migrate, models
from live.db.models import ALLOWED_TRANSITIONS, TERMINAL_STATES, Fill, Order, OrderEvent, OrderState
from live.db.repo import IllegalTransition, IntentMismatch, InvalidClientOrderId, Repository, UnknownOrder
from live.db.session import DEFAULT_URL, database_url, make_engine, session_scope

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def _intent(repo, cid="TREND-20260105-0001", qty="0.3", **kw):
    args = dict(sleeve="TREND", symbol="BTCUSDT", side="Buy", qty=qty, category="linear", order_type="Market",
                bar_ts=1_767_614_400_000_000_000, intent="entry")
    args.update(kw)
    return repo.record_intent(cid, **args)


# -- migrations -----------------------------------------------------------------------------------------------
def test_upgrade_creates_schema_on_empty_db_and_is_idempotent(db_url):
    assert migrate.current(db_url) is None
    assert migrate.upgrade(db_url) == migrate.head() == "0002"
    eng = make_engine(db_url)
    try:
        tables = set(inspect(eng).get_table_names())
        assert set(models.metadata.tables) | {"alembic_version"} == tables
        assert migrate.upgrade(db_url) == "0002"  # second run: no-op, no error
        assert migrate.current(db_url) == "0002"
        with eng.connect() as c:
            assert c.execute(text("SELECT count(*) FROM control")).scalar() == 1
            assert c.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        eng.dispose()


def test_migration_schema_equals_models_metadata(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), models.metadata)
    assert diff == []

    insp = inspect(engine)
    for name, table in models.metadata.tables.items():
        cols = {c["name"]: c["nullable"] for c in insp.get_columns(name)}
        assert cols == {c.name: c.nullable for c in table.columns}, name
        pk = insp.get_pk_constraint(name)["constrained_columns"]
        assert pk == [c.name for c in table.primary_key.columns], name
        uqs = {(u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(name)}
        want = {(c.name, tuple(col.name for col in c.columns)) for c in table.constraints
                if c.__class__.__name__ == "UniqueConstraint"}
        assert uqs == want, name
        fks = {(tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
               for f in insp.get_foreign_keys(name)}
        want_fks = {(tuple(fk.column_keys), fk.referred_table.name, tuple(e.column.name for e in fk.elements))
                    for fk in table.foreign_key_constraints}
        assert fks == want_fks, name
        idx = {(i["name"], tuple(i["column_names"])) for i in insp.get_indexes(name)
               if not i.get("duplicates_constraint")}  # PostgreSQL lists the indexes behind UNIQUE too
        assert idx == {(i.name, tuple(c.name for c in i.columns)) for i in table.indexes}, name
    assert ("uq_orders_client_order_id", ("client_order_id",)) in {
        (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints("orders")}
    assert ("uq_positions_sleeve_symbol", ("sleeve", "symbol")) in {
        (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints("positions")}


# -- constraints ----------------------------------------------------------------------------------------------
def _raw_order(cid, **kw):
    row = dict(client_order_id=cid, sleeve="TREND", symbol="BTCUSDT", category="linear", side="Buy",
               order_type="Market", qty=Decimal("1"), state="Created")
    row.update(kw)
    return insert(Order).values(**row)


def test_client_order_id_unique_at_database_level(engine):
    with engine.begin() as c:
        c.execute(_raw_order("dup-1"))
    with pytest.raises(IntegrityError):
        with engine.begin() as c:
            c.execute(_raw_order("dup-1", symbol="ETHUSDT"))
    with engine.begin() as c:
        c.execute(_raw_order("x-1", exchange_order_id="EX1"))
    with pytest.raises(IntegrityError):
        with engine.begin() as c:
            c.execute(_raw_order("x-2", exchange_order_id="EX1"))
    with pytest.raises(IntegrityError):  # check constraint on the state column
        with engine.begin() as c:
            c.execute(_raw_order("bad-state", state="pending"))
    with pytest.raises(IntegrityError):  # foreign key: a fill needs its order (SQLite: PRAGMA foreign_keys=ON)
        with engine.begin() as c:
            c.execute(insert(Fill).values(exec_id="e-x", client_order_id="nope", qty=Decimal(1), price=Decimal(1),
                                          exec_time=T0))
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(Order)).scalar() == 2


def test_record_intent_is_idempotent(repo, engine):
    a = _intent(repo)
    b = _intent(repo)  # retried after a crash: same row, no duplicate
    assert a.id == b.id and b.state == "Created" and b.qty == Decimal("0.3")
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1
        assert s.scalar(select(func.count()).select_from(OrderEvent)) == 1
    with pytest.raises(IntentMismatch):
        _intent(repo, qty="0.4")
    for bad in ("", "x" * 37, "has space", "semi;colon", "ü-1"):
        with pytest.raises(InvalidClientOrderId):
            _intent(repo, cid=bad)
    assert len(_intent(repo, cid="A" * 36).client_order_id) == 36


# -- state machine --------------------------------------------------------------------------------------------
def test_happy_path_transitions_are_audited(repo):
    cid = _intent(repo, order_type="Limit", price="100").client_order_id
    repo.transition(cid, OrderState.SUBMITTED)
    repo.transition(cid, "Acknowledged", exchange_order_id="1321003749386327552")
    repo.transition(cid, "Acknowledged", exchange_order_id="1321003749386327552")  # duplicate message: no-op
    repo.transition(cid, "Open", last_exchange_update_ms=1_767_614_400_123)
    o = repo.transition(cid, "Cancelled", note="cancel on signal flip")
    assert o.state == "Cancelled" and o.submit_attempts == 1 and o.exchange_order_id == "1321003749386327552"
    assert [(e.from_state, e.to_state) for e in repo.events(cid)] == [
        (None, "Created"), ("Created", "Submitted"), ("Submitted", "Acknowledged"), ("Acknowledged", "Open"),
        ("Open", "Cancelled")]
    assert repo.open_orders() == []


@pytest.mark.parametrize("path, bad", [
    (["Submitted", "Acknowledged", "Open", "Filled"], "Open"),  # Filled -> Open
    (["Submitted", "Rejected"], "Submitted"),
    (["Cancelled"], "Open"),
    ([], "Filled"),  # Created -> Filled only through a fill, never a bare transition
    (["Submitted", "Open"], "Acknowledged"),
])
def test_illegal_transitions_raise(repo, path, bad):
    cid = _intent(repo).client_order_id
    for st in path:
        repo.transition(cid, st)
    with pytest.raises(IllegalTransition) as ei:
        repo.transition(cid, bad)
    assert ei.value.dst == bad
    assert repo.get_order(cid).state == (path[-1] if path else "Created")  # unchanged


def test_unknown_is_resolved_by_resend_or_query(repo):
    cid = _intent(repo).client_order_id
    repo.transition(cid, "Submitted")
    repo.transition(cid, "Unknown", last_error="ReadTimeout")
    o = repo.transition(cid, "Submitted")  # not found on the exchange: resend the same orderLinkId
    assert o.submit_attempts == 2 and o.last_error == "ReadTimeout"
    with pytest.raises(UnknownOrder):
        repo.transition("no-such-order", "Submitted")
    with pytest.raises(TypeError):
        repo.transition(cid, "Open", qty=5)


def test_transition_table_terminal_states_are_final():
    assert set(ALLOWED_TRANSITIONS) == set(OrderState)
    for st in TERMINAL_STATES:
        assert ALLOWED_TRANSITIONS[st] == frozenset()
    assert {s.value for s in OrderState} == {"Created", "Submitted", "Acknowledged", "Open", "PartiallyFilled",
                                             "Filled", "Cancelled", "Rejected", "Unknown"}


# -- fills ----------------------------------------------------------------------------------------------------
def test_duplicate_fills_are_ignored_and_decimals_exact(repo):
    cid = _intent(repo, qty="0.3").client_order_id
    repo.transition(cid, "Submitted")
    r1 = repo.record_fill("exec-1", cid, qty=0.1, price="100.5", exec_time=T0, fee="0.01", fee_currency="USDT")
    assert not r1.duplicate and r1.order.state == "PartiallyFilled"
    r2 = repo.record_fill("exec-1", cid, qty=0.1, price="100.5", exec_time=T0, fee="0.01")  # WS replay
    assert r2.duplicate and r2.order.filled_qty == Decimal("0.1")
    r3 = repo.record_fill("exec-2", cid, qty=0.2, price="101", exec_time=T0 + timedelta(seconds=1), is_maker=True)
    assert r3.order.state == "Filled"
    assert r3.order.filled_qty == Decimal("0.3")  # 0.1 + 0.2 exactly, on both backends
    vwap = (Decimal("100.5") * Decimal("0.1") + Decimal("101") * Decimal("0.2")) / Decimal("0.3")
    assert r3.order.avg_price == vwap.quantize(Decimal("1e-18")) == Decimal("100.833333333333333333")
    assert r3.order.fees == Decimal("0.01")
    assert repo.record_fill("exec-2", cid, qty=0.2, price="101", exec_time=T0).duplicate
    fills = repo.fills(cid)
    assert [f.exec_id for f in fills] == ["exec-1", "exec-2"]
    assert fills[0].exec_time == T0 and fills[0].exec_time.tzinfo is not None
    assert repo.get_order(cid).filled_qty == Decimal("0.3")
    with pytest.raises(UnknownOrder):
        repo.record_fill("exec-3", "missing", qty=1, price=1, exec_time=T0)


def test_late_fill_after_cancel_keeps_terminal_state(repo):
    cid = _intent(repo, qty="1").client_order_id
    repo.transition(cid, "Submitted")
    repo.transition(cid, "Cancelled")
    r = repo.record_fill("late-1", cid, qty="0.4", price=10, exec_time=T0)
    assert r.order.state == "Cancelled" and r.order.filled_qty == Decimal("0.4")


def test_concurrent_writers_do_not_lose_fills(db_url):
    """Two engines (two processes' worth of pools), two threads, overlapping exec ids: nothing lost or doubled."""
    migrate.upgrade(db_url)
    engines = [make_engine(db_url), make_engine(db_url)]
    repos = [Repository(e) for e in engines]
    cid = _intent(repos[0], qty="1000").client_order_id
    repos[0].transition(cid, "Submitted")
    n = 25
    shared = [f"shared-{i}" for i in range(10)]  # both writers see these (WS and REST gap-fill)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            barrier.wait()
            ids = [f"w{k}-{i}" for i in range(n)]
            for i, exec_id in enumerate(ids + shared):
                repos[k].record_fill(exec_id, cid, qty="1", price=str(100 + i % 7), exec_time=T0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert not errors, errors
        o = repos[1].get_order(cid)
        assert len(repos[1].fills(cid)) == 2 * n + len(shared)
        assert o.filled_qty == Decimal(2 * n + len(shared))
        assert o.state == "PartiallyFilled"
    finally:
        for e in engines:
            e.dispose()


# -- control, alerts, breaker ---------------------------------------------------------------------------------
def test_halt_resume_status_round_trip(repo, engine):
    st = repo.status()
    assert not st.halted and st.open_orders == 0
    _intent(repo)
    other = Repository(make_engine(str(engine.url.render_as_string(hide_password=False))))  # the CLI process
    try:
        st = other.set_halt("manual emergency stop", updated_by="cli")
        assert st.halted and st.reason == "manual emergency stop" and st.updated_by == "cli"
        assert repo.is_halted() and repo.status().open_orders == 1
        assert [a.code for a in repo.unacked_alerts()] == ["HALT"]
        assert repo.unacked_alerts()[0].severity == "P0"
        st = repo.clear_halt(updated_by="ops")
        assert not st.halted and st.updated_by == "ops" and st.updated_at.tzinfo is not None
        assert not other.is_halted()
    finally:
        other.engine.dispose()


def test_alerts_and_ack(repo):
    a = repo.add_alert("P1", "API_ERRORS", "10006 rate limit x5", {"retCode": 10006})
    assert a.id and not a.acked and a.created_at.tzinfo is not None
    with pytest.raises(ValueError):
        repo.add_alert("P9", "X", "bad severity")
    acked = repo.ack_alert(a.id, "ops")
    assert acked.acked and acked.acked_by == "ops"
    assert repo.unacked_alerts() == []


def test_breaker_state_round_trip_with_nan(repo):
    assert repo.load_breaker_state() is None
    repo.save_breaker_state(level=2, peak=105_000.5, halted_since_ns=-1, day=20_458, week=2_922,
                            day_anchor=101_000.0, week_anchor=math.nan, prev_nav=100_500.25, last_bar_ts=123)
    st = repo.load_breaker_state()
    assert st["level"] == 2 and st["peak"] == 105_000.5 and st["day"] == 20_458
    assert math.isnan(st["week_anchor"]) and st["prev_nav"] == 100_500.25 and st["last_bar_ts"] == 123
    repo.save_breaker_state(level=4, peak=105_000.5, halted_since_ns=1_767_614_400_000_000_000)
    assert repo.load_breaker_state()["halted_since_ns"] == 1_767_614_400_000_000_000


def test_positions_unique_per_sleeve_and_symbol(repo, engine):
    repo.upsert_position("TREND", "BTCUSDT", "0.5", "100000")
    repo.upsert_position("CORE_HODL", "BTCUSDT", "1.25", "90000", category="spot")
    p = repo.upsert_position("TREND", "BTCUSDT", "-0.1", "101000")
    assert p.qty == Decimal("-0.1")
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM positions")).scalar() == 2
    repo.save_engine_state("TREND", "LONG", bar_ts=5, allocation_pct=0.2, detail={"atr": 1.5})


# -- SQLite specifics and configuration ------------------------------------------------------------------------
def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    migrate.upgrade(url)
    eng = make_engine(url)
    try:
        with eng.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        eng.dispose()
    import sqlite3  # WAL is a property of the file: a plain connection sees it too

    with sqlite3.connect(tmp_path / "wal.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_database_url_default_and_env(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert database_url() == DEFAULT_URL == "sqlite:///./trading_bot.db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/ee")
    assert database_url() == "postgresql+psycopg://u:p@db:5432/ee"
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/x.db")
    assert database_url() == "sqlite:////tmp/x.db"


def test_naive_datetimes_are_refused(repo):
    cid = _intent(repo).client_order_id
    with pytest.raises(Exception, match="naive"):
        repo.record_fill("naive-1", cid, qty=1, price=1, exec_time=datetime(2026, 1, 1))


def test_missing_postgres_skips_unless_required(monkeypatch):
    from tests.live import conftest

    monkeypatch.setattr(conftest, "REQUIRE_PG", False)
    with pytest.raises(pytest.skip.Exception, match="EE_REQUIRE_POSTGRES"):
        conftest._unavailable("initdb not found")
    monkeypatch.setattr(conftest, "REQUIRE_PG", True)
    with pytest.raises(pytest.fail.Exception, match="required"):
        conftest._unavailable("initdb not found")
