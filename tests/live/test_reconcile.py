"""live.reconcile against the fake Bybit exchange (unmodified pybit over loopback), on SQLite and PostgreSQL:
notes D rows 10 and 15, invariant I4, and the rule that a failed query is unknown, never flat."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from live.db.models import Fill
from live.db.repo import RECONCILE_EXEC_TYPE
from live.db.session import session_scope
from live.orders import OrderIntent, OrderManager, TradingHalted
from live.reconcile import OVERLAP_MS, RECONCILER, WINDOW_MS, reconcile
from tests.live.exchange_setup import CREATE, make_client

BAR = 1_767_614_400_000_000_000
DAY_MS = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
POSITIONS, EXECUTIONS, WALLET = "/v5/position/list", "/v5/execution/list", "/v5/account/wallet-balance"
_bars = itertools.count()


@pytest.fixture
def om(repo, fake, clock):
    return OrderManager(repo, make_client(fake), clock=clock)


def intent(order_type="market", side="Buy", qty="0.01", price=None, symbol="BTCUSDT", sleeve="TREND", **kw):
    kw.setdefault("bar_ts", BAR + next(_bars))
    return OrderIntent(sleeve=sleeve, symbol=symbol, side=side, qty=qty, intent="entry", order_type=order_type,
                       price=price, **kw)


def kinds(report) -> list[tuple[str, str]]:
    return [(d.kind, d.symbol) for d in report.discrepancies]


def alert_codes(repo) -> list[str]:
    return [a.code for a in repo.unacked_alerts()]


def exchange_exec_ids(fake, cid) -> set[str]:
    return {e["execId"] for e in fake.executions if e["orderLinkId"] == cid}


def all_fills(repo) -> list[Fill]:
    with session_scope(repo.engine) as s:
        return list(s.scalars(select(Fill)))


def filled_position(om, qty="0.01"):
    o = om.submit(intent(qty=qty))
    om.resolve()
    assert om.repo.get_order(o.client_order_id).state == "Filled"
    return o


# ============================================================================================ clean start
def test_clean_start_is_ok_and_records_balances(om, repo, fake):
    filled_position(om)
    om.submit(intent("limit", qty="0.01", price="49000"))  # resting: known, not external
    om.submit(intent(category="spot", qty="0.001", reference_price=50_000))  # buy fee paid in BTC
    rep = reconcile(om)
    assert rep.ok and rep.discrepancies == [] and not rep.halted and not repo.is_halted()
    assert alert_codes(repo) == []
    balances = repo.balances()
    assert balances["USDT"].wallet_balance == fake.wallet["USDT"]
    assert balances["BTC"].wallet_balance == fake.wallet["BTC"] == Decimal("0.000999")
    assert rep.equity is not None and rep.equity > 0


# ============================================================================================ executions
def test_fills_while_down_are_imported_once(repo, fake, clock):
    om = OrderManager(repo, make_client(fake), clock=clock)
    resting = om.submit(intent("limit", qty="0.010", price="49000")).client_order_id
    ws_only = om.submit(intent("limit", qty="0.020", price="48000")).client_order_id
    om.resolve()
    # while the process is down: both fill in two parts; for ws_only the order update ("Filled") reached the
    # database but its execution messages were lost
    for cid in (resting, ws_only):
        fake.fill(cid, "0.004")
        fake.fill(cid)
    repo.transition(ws_only, "Filled", note="order stream: Filled")
    om2 = OrderManager(repo, make_client(fake), clock=clock)
    rep = reconcile(om2)
    assert rep.ok, rep.discrepancies
    assert rep.fills_imported == 2  # ws_only's two fills; resting's came through resolve
    for cid in (resting, ws_only):
        assert {f.exec_id for f in repo.fills(cid)} == exchange_exec_ids(fake, cid)
    assert repo.get_order(ws_only).filled_qty == Decimal("0.020")
    assert om2.db_net_positions() == {"BTCUSDT": Decimal("0.030")} and om2.check_positions() == {}
    again = reconcile(om2)
    assert again.ok and again.fills_imported == 0
    assert sum(len(repo.fills(c)) for c in (resting, ws_only)) == 4


def test_executions_read_in_windows_of_at_most_seven_days(om, clock):
    seen = []
    real = om.client.executions

    def spy(category, *a, start_ms=None, end_ms=None, **kw):
        seen.append((category, start_ms, end_ms))
        return real(category, *a, start_ms=start_ms, end_ms=end_ms, **kw)

    om.client.executions = spy
    now = int(clock() * 1000)
    reconcile(om, since_ms=now - 20 * DAY_MS)
    linear = [(lo, hi) for cat, lo, hi in seen if cat == "linear"]
    assert len(linear) == 3 and linear[0][0] == now - 20 * DAY_MS and linear[-1][1] >= now
    assert all(hi - lo < WINDOW_MS for lo, hi in linear)
    assert all(b[0] == a[1] + 1 for a, b in zip(linear, linear[1:]))  # contiguous: no gap, no overlap


def test_executions_start_at_the_last_persisted_fill(om, clock):
    o = filled_position(om)
    (fill,) = om.repo.fills(o.client_order_id)
    seen = {}
    real = om.client.executions

    def spy(category, *a, start_ms=None, **kw):
        seen.setdefault(category, start_ms)
        return real(category, *a, start_ms=start_ms, **kw)

    om.client.executions = spy
    reconcile(om)
    assert seen["linear"] == (fill.exec_time - EPOCH) // timedelta(milliseconds=1) - OVERLAP_MS
    assert seen["spot"] <= int(clock() * 1000) - 7 * DAY_MS + 1000  # no spot fill yet: the 7-day lookback


# ============================================================================================ linear positions
def test_external_linear_position_alerts_halts_and_is_not_traded(om, repo, fake):
    fake.external_position_change("BTCUSDT", "0.5")
    rep = reconcile(om)
    assert not rep.ok and rep.halted
    (d,) = rep.discrepancies
    assert (d.kind, d.symbol, d.db, d.exchange, d.resolved) == ("external_position", "BTCUSDT", 0,
                                                                Decimal("0.5"), False)
    status = repo.status()
    assert status.halted and status.updated_by == RECONCILER and "BTCUSDT" in status.reason
    assert sorted(alert_codes(repo)) == ["EXTERNAL_POSITION", "HALT"]
    with pytest.raises(TradingHalted):
        om.submit(intent())
    assert fake.creates() == 0 and fake.positions["BTCUSDT"]["size"] == Decimal("0.5")
    again = reconcile(om)  # still there: still halted, alerted once
    assert not again.ok and repo.is_halted() and sorted(alert_codes(repo)) == ["EXTERNAL_POSITION", "HALT"]
    fake.external_position_change("BTCUSDT", "-0.5")  # the operator closes it on the exchange
    assert reconcile(om).ok and not repo.is_halted()


def test_clean_run_keeps_an_operator_halt(om, repo):
    repo.set_halt("maintenance", updated_by="operator")
    assert reconcile(om).ok
    assert repo.is_halted() and repo.status().reason == "maintenance"


def test_db_only_position_closed_externally_once_positions_and_executions_confirm(om, repo, fake):
    o = filled_position(om)
    fake.external_position_change("BTCUSDT", "-0.01")  # closed by hand on the exchange: no execution of ours
    rep = reconcile(om)
    assert rep.ok and not repo.is_halted()
    (d,) = rep.discrepancies
    assert (d.kind, d.symbol, d.db, d.exchange, d.resolved) == ("closed_externally", "BTCUSDT",
                                                                Decimal("0.01"), 0, True)
    assert om.db_net_positions() == {"BTCUSDT": Decimal(0)} and om.check_positions() == {}
    synthetic = [f for f in all_fills(repo) if f.exec_type == RECONCILE_EXEC_TYPE]
    assert len(synthetic) == 1 and synthetic[0].qty == Decimal("0.01")
    assert repo.get_order(synthetic[0].client_order_id).state == "Filled"  # terminal: never sent
    assert repo.fills(o.client_order_id)[0].exec_type == "Trade"
    assert alert_codes(repo) == ["CLOSED_EXTERNALLY"]
    again = reconcile(om)
    assert again.ok and again.discrepancies == [] and len(all_fills(repo)) == 2
    assert fake.creates() == 1


def test_db_only_position_not_closed_while_executions_are_unknown(om, repo, fake):
    filled_position(om)
    fake.external_position_change("BTCUSDT", "-0.01")
    fake.error_5xx(before=True, n=50, path=EXECUTIONS)
    rep = reconcile(om)
    assert not rep.ok and rep.halted
    assert ("executions_unknown", "*") in kinds(rep) and ("position_unknown", "BTCUSDT") in kinds(rep)
    assert "closed_externally" not in [k for k, _ in kinds(rep)]
    assert om.db_net_positions() == {"BTCUSDT": Decimal("0.01")}


def test_missing_position_row_is_not_evidence_of_flat(om, fake):
    filled_position(om)
    fake.external_position_change("BTCUSDT", "-0.01")
    real = om.client.positions
    om.client.positions = lambda category="linear", symbol=None, **kw: [] if symbol else real(category, **kw)
    rep = reconcile(om)
    assert kinds(rep) == [("position_unknown", "BTCUSDT")] and not rep.ok
    assert om.db_net_positions() == {"BTCUSDT": Decimal("0.01")}


def test_failed_position_query_is_unknown_not_flat(om, repo, fake):
    filled_position(om)
    fake.error_5xx(before=True, n=50, path=POSITIONS)
    rep = reconcile(om)
    assert not rep.ok and rep.halted
    assert kinds(rep) == [("position_unknown", "*")] and rep.discrepancies[0].exchange is None
    assert om.db_net_positions() == {"BTCUSDT": Decimal("0.01")}  # not closed on a failed query
    assert not [f for f in all_fills(repo) if f.exec_type == RECONCILE_EXEC_TYPE]
    assert "POSITION_UNKNOWN" in alert_codes(repo)
    fake.clear_faults()
    rep = reconcile(om)
    assert rep.ok and not repo.is_halted()  # the reconciler lifts its own halt once clean


# ============================================================================================ spot and balances
def test_spot_wallet_mismatch_alerts_and_halts(om, repo, fake):
    om.submit(intent(category="spot", qty="0.001", reference_price=50_000))
    assert reconcile(om).ok
    fake.set_wallet("BTC", "0.5")
    rep = reconcile(om)
    assert not rep.ok and rep.halted
    (d,) = rep.discrepancies
    assert (d.kind, d.symbol, d.db, d.exchange) == ("spot_mismatch", "BTC", Decimal("0.000999"), Decimal("0.5"))
    assert "SPOT_MISMATCH" in alert_codes(repo)


def test_spot_assets_declare_coins_held_outside_the_engine(om, fake):
    fake.set_wallet("ETH", "2")
    rep = reconcile(om)
    assert kinds(rep) == [("spot_mismatch", "ETH")] and rep.discrepancies[0].exchange == Decimal("2")
    assert reconcile(om, spot_assets={"ETH": "2"}).ok


def test_failed_wallet_query_is_unknown(om, repo, fake):
    fake.error_5xx(before=True, n=50, path=WALLET)
    rep = reconcile(om)
    assert not rep.ok and kinds(rep) == [("balance_unknown", "*")] and rep.equity is None
    assert repo.balances() == {}


# ============================================================================================ orders
def test_external_open_order_is_tagged_and_never_traded(om, repo, fake):
    om.client.place_order("linear", "BTCUSDT", "Buy", "0.01", price="45000", client_order_id="MANUAL-1")
    rep = reconcile(om)
    assert not rep.ok and rep.halted
    (d,) = rep.discrepancies
    assert (d.kind, d.symbol, d.detail["tag"], d.detail["client_order_id"]) == (
        "external_order", "BTCUSDT", "EXTERNAL", "MANUAL-1")
    (alert,) = [a for a in repo.unacked_alerts() if a.code == "EXTERNAL_ORDER"]
    assert alert.detail["tag"] == "EXTERNAL" and alert.severity == "P1"
    assert repo.get_order("MANUAL-1") is None  # not adopted
    reconcile(om)
    assert alert_codes(repo).count("EXTERNAL_ORDER") == 1
    assert fake.order("MANUAL-1")["orderStatus"] == "New" and fake.private_count("/v5/order/cancel") == 0
    assert fake.creates() == 1


def test_unknown_order_blocks_trading_until_resolved(om, repo, fake, clock):
    fake.error_5xx(before=True, status=502, path=CREATE)  # ambiguous to us; nothing was created
    o = om.submit(intent())
    rep = reconcile(om)
    assert kinds(rep) == [("order_unresolved", "BTCUSDT")] and rep.discrepancies[0].db == "Unknown"
    assert rep.halted
    clock.offset = om.unknown_grace_s + 1
    rep = reconcile(om)
    assert rep.ok and repo.get_order(o.client_order_id).state == "Rejected" and not repo.is_halted()
    assert fake.creates() == 1
