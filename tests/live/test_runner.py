"""live.runner: the private WebSocket feeding the live loop, reconciliation after every reconnect and a dead
stream halting trading, with the unmodified pybit clients against the fake exchange and its fake WebSocket
server (notes D rows 8, 11 and 15; issue 5 items 2 and 6)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from sqlalchemy import select

from eternal_engine.errors import ConfigError
from live.bybit.streams import StreamConfig
from live.db.models import Fill
from live.db.repo import Repository
from live.db.session import make_engine, session_scope
from live.reconcile import RECONCILER
from live.runner import HALTED_BY, WS_ENDPOINT_ENV, PrivateStreamLost, Runner, private_ws_url
from tests.fakes.bybit_ws import FakeBybitWS
from tests.live.exchange_setup import KEY, SECRET, history_exchange
from tests.live.test_loop import CRASH_CONFIG, Replay, db_orders, live_fake, trader_for  # noqa: F401 (fixture)
from tests.live.test_orders import _MAP, assert_invariants, wait_for

CFG = StreamConfig(ping_interval_s=0.5, ping_timeout_s=0.25, ack_timeout_s=2.0, fill_wait_s=0.3)


@pytest.fixture
def fake():
    with history_exchange() as f:
        yield f


@pytest.fixture
def ws(fake):
    with FakeBybitWS(fake) as w:
        yield w


@pytest.fixture
def replay(fake):
    return Replay(fake)


@pytest.fixture
def runner(db, fake, ws, replay):
    r = Runner(trader_for(db, fake, replay), api_key=KEY, api_secret=SECRET, url=ws.url("private"), config=CFG,
               max_down_s=0.5, check_s=0.02)
    yield r
    r.stream.close()


def exchange_exec_ids(fake) -> set[str]:
    return {e["execId"] for e in fake.executions}


def db_exec_ids(db) -> set[str]:
    with session_scope(db) as s:
        return set(s.scalars(select(Fill.exec_id)))


def settled(db, fake) -> bool:
    """Every execution recorded and every order in the exchange's state."""
    by_link = {o["orderLinkId"]: o["orderStatus"] for o in fake.orders}
    return db_exec_ids(db) == exchange_exec_ids(fake) and all(
        o.state == _MAP[by_link[o.client_order_id]].value for o in db_orders(db) if o.client_order_id in by_link)


def p0_codes(repo) -> list[str]:
    return [a.code for a in repo.unacked_alerts() if a.severity == "P0"]


# ============================================================================================ the WebSocket URL
@pytest.mark.parametrize("rest, ws_url", [
    ("https://api.bybit.com", "wss://stream.bybit.com/v5/private"),
    ("https://api-testnet.bybit.com", "wss://stream-testnet.bybit.com/v5/private"),
    ("https://api-demo.bybit.com", "wss://stream-demo.bybit.com/v5/private"),
    ("https://api.bytick.com", "wss://stream.bytick.com/v5/private"),
])
def test_a_bybit_rest_endpoint_pairs_with_its_own_stream_whatever_the_override(rest, ws_url):
    assert private_ws_url(rest) == private_ws_url(rest, "ws://127.0.0.1:1") == ws_url


def test_another_rest_endpoint_needs_the_ws_endpoint_setting():
    assert private_ws_url("http://127.0.0.1:8080", "ws://127.0.0.1:9090/") == "ws://127.0.0.1:9090/v5/private"
    with pytest.raises(ConfigError, match=WS_ENDPOINT_ENV):
        private_ws_url("http://127.0.0.1:8080")


# ============================================================================================ the lock
def test_the_traders_order_manager_calls_hold_the_stream_lock(runner):
    done = threading.Event()
    with runner.stream.lock:  # as a pushed update being applied
        t = threading.Thread(target=lambda: (runner.trader.manager.resolve(), done.set()), daemon=True)
        t.start()
        assert not done.wait(0.3)
    assert done.wait(5)


# ============================================================================================ (a) reconnect
def test_a_reconnect_runs_the_full_reconciliation_which_halts_on_an_external_position(runner, db, fake, ws):
    repo = Repository(db)
    runner.start()
    assert runner.reconciles == 1 and not repo.is_halted()
    assert ws.drop("private", hold=True) == 1  # new handshakes wait until release()
    fake.external_position_change("BTCUSDT", "0.5")  # made by hand while the socket is down
    assert not repo.is_halted()

    ws.release()

    assert wait_for(lambda: runner.reconciles == 2)
    status = repo.status()
    assert status.halted and status.updated_by == RECONCILER and "external_position BTCUSDT" in status.reason
    assert "EXTERNAL_POSITION" in [a.code for a in repo.unacked_alerts()]
    assert runner.stream.connects == 2 and runner.stream.gap_fills == 1  # the reconnect ran reconcile instead


# ============================================================================================ (b) fills pushed
def test_b_fills_pushed_while_the_loop_trades_are_recorded_once(runner, db, fake, replay):
    runner.start()
    pushed = 0
    for t in range(30):
        before = db_exec_ids(db)
        replay.to_close_of(t)  # resting post-only limits that the prices cross fill here
        new = exchange_exec_ids(fake) - before
        assert wait_for(lambda: db_exec_ids(db) == exchange_exec_ids(fake))  # by the pushes: no REST call yet
        pushed += len(new)
        runner.trader.run_bar()  # its IOC fills are pushed while it records them by REST

    assert pushed > 0 and wait_for(lambda: settled(db, fake))
    assert runner.stream.skipped == 0 and runner.stream.connects == 1
    assert_invariants(Repository(db), fake)  # one order per id, DB fills == executions, positions


# ============================================================================================ (c) a dead stream
def test_c_refused_reauthentication_halts_trading_with_a_p0_alert(runner, db, fake, ws, replay):
    repo = Repository(db)
    replay.to_close_of(0)
    deadline = time.monotonic() + 20

    def sleep(seconds):  # between bars the socket drops and the exchange refuses the new auth
        if not ws.auth_refused:
            ws.refuse_auth()
            assert ws.drop("private") == 1
        assert time.monotonic() < deadline, "the dead stream was not noticed"
        time.sleep(min(seconds, 0.02))

    runner.sleep = sleep
    with pytest.raises(PrivateStreamLost, match="authentication"):
        runner.run_forever()

    creates = fake.creates()
    status = repo.status()
    assert creates >= 2 and status.halted and status.updated_by == HALTED_BY  # the first bar traded
    assert "PRIVATE_STREAM_LOST" in p0_codes(repo)
    assert runner.stream.auth_failed and not runner.stream.is_connected()


def test_c_a_stream_down_longer_than_the_limit_halts_trading_with_a_p0_alert(runner, db, ws):
    repo = Repository(db)
    runner.start()
    ws.stop()  # connections closed, reconnects refused until pybit gives up

    with pytest.raises(PrivateStreamLost, match="disconnected"):
        runner.wait(10)  # max_down_s=0.5

    status = repo.status()
    assert status.halted and status.updated_by == HALTED_BY and "PRIVATE_STREAM_LOST" in p0_codes(repo)


# ============================================================================================ the process
def test_the_live_process_trades_with_its_private_stream_and_stops_when_auth_is_refused(live_fake, tmp_path):
    (tmp_path / "cfg.yaml").write_text(CRASH_CONFIG)
    start = (pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=30)).strftime("%Y-%m-%d")
    db = f"sqlite:///{tmp_path / 'live.db'}"
    with FakeBybitWS(live_fake) as ws:
        env = {k: v for k, v in os.environ.items() if k not in ("EE_CRASH_AT", "TRADING_MODE")}
        env.update(EE_BYBIT_ENDPOINT=live_fake.url, BYBIT_API_KEY=KEY, BYBIT_API_SECRET=SECRET,
                   PYTHONPATH=os.getcwd(), **{WS_ENDPOINT_ENV: f"ws://127.0.0.1:{ws.port}"})
        p = subprocess.Popen([sys.executable, "-m", "eternal_engine.cli", "live", "--mode", "testnet", "--config",
                              str(tmp_path / "cfg.yaml"), "--db", db, "--start", start, "--engines",
                              "core_hodl,trend"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_for(lambda: ws.subscribed("private", "wallet") and live_fake.creates() >= 2, timeout=90)
            ws.refuse_auth()
            ws.drop("private")
            _, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert p.returncode == 1, err[-3000:]
    repo = Repository(make_engine(db))
    status = repo.status()
    assert status.halted and status.updated_by == HALTED_BY and "PRIVATE_STREAM_LOST" in p0_codes(repo)
