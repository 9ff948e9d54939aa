"""The live pieces wired together: the order manager reports to the metrics and alerts through the alerter
(stored, then Telegram); the loop raises a P0 on a breaker step; the live process never logs its secrets."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from live.alerts import Alerter, TelegramConfig
from live.loop import LiveTrader
from live.metrics import LiveMetrics
from live.orders import OrderManager
from tests.fakes.telegram import FakeTelegram
from tests.live.exchange_setup import KEY, SECRET, make_client, start_exchange
from tests.live.test_loop import live_fake, live_process  # noqa: F401  (live_fake is a fixture)
from tests.live.test_orders import intent


def samples(metrics: LiveMetrics, name: str) -> dict[str, float]:
    """``{'name{labels}': value}`` of the exposition lines of metric ``eternal_<name>``."""
    out = {}
    for line in metrics.exposition().decode().splitlines():
        if line.startswith(f"eternal_{name}"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


@pytest.fixture
def telegram():
    with FakeTelegram() as t:
        yield t


def test_order_manager_feeds_metrics_and_alerts_through_the_alerter(repo, telegram):
    metrics = LiveMetrics()
    alerter = Alerter(repo, TelegramConfig(token=telegram.token, chat_id="42", api_url=telegram.url),
                      metrics=metrics)
    with start_exchange() as fake:
        om = OrderManager(repo, make_client(fake), alert=alerter.alert, metrics=metrics, unknown_grace_s=60.0)
        assert om.submit(intent()).state in ("Acknowledged", "Filled")
        fake.error_5xx(before=True, status=502)  # ambiguous answer, nothing created
        lost = om.submit(intent())
        assert lost.state == "Unknown"
        om.resolve()  # not on the exchange yet, within the grace: kept Unknown with one P1 alert

    assert sum(samples(metrics, "order_latency_seconds_count").values()) == 1  # the acknowledged create only
    errors = {k: v for k, v in samples(metrics, "errors_total").items() if v}
    assert errors == {'eternal_errors_total{kind="ambiguous"}': 1.0}
    outcomes = samples(metrics, "orders_total")
    assert outcomes['eternal_orders_total{outcome="unknown"}'] == 1.0 and sum(outcomes.values()) == 2
    (alert,) = [a for a in repo.unacked_alerts() if a.code == "ORDER_UNKNOWN"]
    assert alert.severity == "P1" and lost.client_order_id in alert.message
    assert [m.chat_id for m in telegram.messages] == ["42"] and lost.client_order_id in telegram.messages[0].text


def test_a_breaker_step_raises_a_p0_alert_and_updates_the_metrics():
    metrics, calls = LiveMetrics(), []
    me = SimpleNamespace(metrics=metrics, alert=lambda *a: calls.append(a))
    bar = pd.Timestamp("2024-03-01", tz="UTC")

    def decision(level, prev):
        return SimpleNamespace(bar_ts=bar.value, sleeve_equity={"trend": 880.0, "core_hodl": 20.0},
                               breaker=dict(level=level, prev_level=prev, peak=1.25, prev_nav=1.1))

    LiveTrader._observe(me, decision(1, 1), bar)
    assert calls == []  # no step, no alert
    LiveTrader._observe(me, decision(2, 1), bar)
    assert [(c[0], c[1]) for c in calls] == [("P0", "BREAKER_L2")] and "12.0%" in calls[0][2]
    assert samples(metrics, "breaker_level") == {"eternal_breaker_level": 2.0}
    assert samples(metrics, "drawdown_fraction")["eternal_drawdown_fraction"] == pytest.approx(0.12)
    assert samples(metrics, "portfolio_value_usd")["eternal_portfolio_value_usd"] == 900.0
    assert samples(metrics, "last_bar_timestamp_seconds")["eternal_last_bar_timestamp_seconds"] == bar.timestamp()


def test_the_live_process_never_logs_its_secrets(live_fake, tmp_path, telegram, monkeypatch):
    # DEBUG: every request line of pybit and urllib3 is logged; Telegram on, so its URL holds the token
    for k, v in dict(LOG_LEVEL="DEBUG", TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_CHAT_ID="42",
                     TELEGRAM_API_URL=telegram.url, TELEGRAM_MIN_SEVERITY="P3").items():
        monkeypatch.setenv(k, v)
    p = live_process(live_fake, tmp_path)
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err[-3000:]
    assert live_fake.creates() >= 1 and len(err.splitlines()) > 20  # it traded and logged
    for secret in (KEY, SECRET, telegram.token):
        assert secret not in out + err
    assert all(json.loads(line) for line in err.splitlines() if line.strip())  # one JSON object per line
