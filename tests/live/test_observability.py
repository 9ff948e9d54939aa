"""Alerts (database first, then Telegram), JSON logs with secrets redacted, Prometheus metrics over HTTP."""
from __future__ import annotations

import io
import json
import logging
import time
from datetime import datetime

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from live.alerts import Alerter, TelegramConfig
from live.bybit.errors import AmbiguousError, DuplicateOrderError, TransientError
from live.logs import configure_logging
from live.metrics import LiveMetrics
from tests.fakes.telegram import FakeTelegram

TOKEN = "987654321:AAF-sEcReT_t0ken-value"
CHAT = "-100123"


class ManualClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sqlite_repo(tmp_path):
    from live.db.migrate import upgrade
    from live.db.repo import Repository
    from live.db.session import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'alerts.db'}")
    upgrade(engine)
    yield Repository(engine)
    engine.dispose()


@pytest.fixture
def telegram():
    with FakeTelegram(token=TOKEN) as fake:
        yield fake


def telegram_config(fake: FakeTelegram | str, **kw) -> TelegramConfig:
    url = fake if isinstance(fake, str) else fake.url
    return TelegramConfig(token=TOKEN, chat_id=CHAT, api_url=url, **kw)


@pytest.fixture
def closed_url():
    """The URL of a port where nothing listens any more (connection refused)."""
    with FakeTelegram(token=TOKEN) as fake:
        url = fake.url
    return url


@pytest.fixture
def json_log():
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("DEBUG", stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def log_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# ============================================================================================ alerts
def test_alert_is_stored_when_telegram_answers_500(repo, telegram):
    telegram.fail()
    alerter = Alerter(repo, telegram_config(telegram))

    row = alerter.alert("P0", "BREAKER_TRIPPED", "drawdown 15 %", {"level": 3})

    stored = repo.unacked_alerts()
    assert [(a.id, a.severity, a.code, a.message, a.detail) for a in stored] == [
        (row.id, "P0", "BREAKER_TRIPPED", "drawdown 15 %", {"level": 3})]
    assert telegram.requests == 1 and telegram.messages == []
    assert alerter.counts["failed"] == 1 and alerter.counts["sent"] == 0


def test_alert_is_stored_when_telegram_is_unreachable(sqlite_repo, closed_url):
    alerter = Alerter(sqlite_repo, telegram_config(closed_url))

    alerter.alert("P1", "API_ERROR", "bybit 10016")

    assert [a.code for a in sqlite_repo.unacked_alerts()] == ["API_ERROR"]
    assert alerter.counts["failed"] == 1


def test_hanging_telegram_costs_at_most_the_timeout(sqlite_repo, telegram):
    telegram.hang(30)
    alerter = Alerter(sqlite_repo, telegram_config(telegram, timeout_s=0.3))

    t0 = time.monotonic()
    alerter.alert("P0", "HALTED", "trading halted")
    elapsed = time.monotonic() - t0

    assert elapsed < 3.0
    assert alerter.counts["failed"] == 1
    assert [a.code for a in sqlite_repo.unacked_alerts()] == ["HALTED"]


def test_telegram_receives_the_alert_text(sqlite_repo, telegram):
    alerter = Alerter(sqlite_repo, telegram_config(telegram))

    alerter.alert("P1", "ORDER_UNKNOWN", "order TRENBTCUSDT-x not found", {"client_order_id": "TRENBTCUSDT-x"})

    [msg] = telegram.messages
    assert msg.chat_id == CHAT
    assert msg.text.splitlines() == ["P1 HIGH ORDER_UNKNOWN", "order TRENBTCUSDT-x not found",
                                     '{"client_order_id": "TRENBTCUSDT-x"}']
    assert alerter.counts["sent"] == 1


def test_config_from_env_reaches_the_fake(sqlite_repo, telegram, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_CHAT_ID", CHAT)
    monkeypatch.setenv("TELEGRAM_API_URL", telegram.url + "/")

    Alerter.from_env(sqlite_repo).alert("P0", "MAJOR_LOSS", "equity -12 % today")

    assert [m.text.splitlines()[0] for m in telegram.messages] == ["P0 CRITICAL MAJOR_LOSS"]


def test_telegram_is_off_without_token_or_chat_and_the_token_is_not_in_repr(monkeypatch):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("TELEGRAM_CHAT_ID", CHAT)
    assert TelegramConfig.from_env() is None

    cfg = TelegramConfig.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": CHAT})
    assert (cfg.api_url, cfg.min_severity) == ("https://api.telegram.org", "P1")
    assert TOKEN not in repr(cfg)


def test_alert_below_the_minimum_severity_is_stored_but_not_sent(sqlite_repo, telegram):
    alerter = Alerter(sqlite_repo, telegram_config(telegram, min_severity="P1"))

    alerter.alert("P2", "SLOW_BAR", "bar processed in 40 s")
    alerter.alert("P3", "MINOR", "one funding print missing")

    assert [a.severity for a in sqlite_repo.unacked_alerts()] == ["P2", "P3"]
    assert telegram.requests == 0


def test_identical_alerts_are_sent_once_per_dedup_window_and_always_stored(sqlite_repo, telegram):
    clock = ManualClock()
    alerter = Alerter(sqlite_repo, telegram_config(telegram), dedup_window_s=600, clock=clock)

    for _ in range(3):
        alerter.alert("P1", "API_ERROR", "bybit 10016")
    alerter.alert("P1", "API_ERROR", "bybit 10000")  # a different message is a different alert
    clock.now += 601
    alerter.alert("P1", "API_ERROR", "bybit 10016")

    assert len(sqlite_repo.unacked_alerts()) == 5
    texts = [m.text for m in telegram.messages]
    assert [t.splitlines()[1] for t in texts] == ["bybit 10016", "bybit 10000", "bybit 10016"]
    assert "repeated 2 more times" in texts[2] and "repeated" not in texts[0]
    assert alerter.counts["duplicate"] == 2


def test_rate_limit_holds_back_p1_but_never_p0(sqlite_repo, telegram):
    clock = ManualClock()
    alerter = Alerter(sqlite_repo, telegram_config(telegram), max_per_minute=2, clock=clock)

    for i in range(3):
        alerter.alert("P1", "API_ERROR", f"error {i}")
    alerter.alert("P0", "HALTED", "halted")
    clock.now += 60
    alerter.alert("P1", "API_ERROR", "error 3")

    assert [m.text.splitlines()[1] for m in telegram.messages] == ["error 0", "error 1", "halted", "error 3"]
    assert alerter.counts["rate_limited"] == 1


def test_invalid_severity_is_refused_before_storing_or_sending(sqlite_repo, telegram):
    alerter = Alerter(sqlite_repo, telegram_config(telegram))

    with pytest.raises(ValueError, match="P0"):
        alerter.alert("P9", "X", "y")

    assert sqlite_repo.unacked_alerts() == [] and telegram.requests == 0


def test_database_failure_raises_after_the_alert_is_sent(telegram):
    class BrokenRepo:
        def add_alert(self, *args):
            raise OSError("database is locked")

    alerter = Alerter(BrokenRepo(), telegram_config(telegram))

    with pytest.raises(OSError):
        alerter.alert("P0", "BREAKER_TRIPPED", "level 3")

    assert [m.text.splitlines()[0] for m in telegram.messages] == ["P0 CRITICAL BREAKER_TRIPPED"]
    assert alerter.counts["store_failed"] == 1


def test_alert_outcomes_are_counted_in_the_metrics(sqlite_repo, telegram):
    metrics = LiveMetrics()
    telegram.fail(1)
    alerter = Alerter(sqlite_repo, telegram_config(telegram), metrics=metrics)

    alerter.alert("P0", "A", "first")
    alerter.alert("P0", "A", "second")

    value = metrics.registry.get_sample_value
    assert value("eternal_alerts_total", {"severity": "P0", "outcome": "stored"}) == 2
    assert value("eternal_alerts_total", {"severity": "P0", "outcome": "failed"}) == 1
    assert value("eternal_alerts_total", {"severity": "P0", "outcome": "sent"}) == 1


# ============================================================================================ logs
def test_json_log_lines_parse_and_carry_the_fields(json_log):
    log = logging.getLogger("live.test")

    log.info("order %s acknowledged", "TRENBTCUSDT-a", extra={"client_order_id": "TRENBTCUSDT-a", "qty": 0.5})
    try:
        raise ValueError("bad fill")
    except ValueError:
        log.exception("resolve failed")

    first, second = log_lines(json_log)
    assert (first["level"], first["logger"], first["message"]) == ("INFO", "live.test",
                                                                   "order TRENBTCUSDT-a acknowledged")
    assert (first["client_order_id"], first["qty"]) == ("TRENBTCUSDT-a", 0.5)
    assert first["ts"].endswith("Z") and datetime.fromisoformat(first["ts"]).utcoffset().total_seconds() == 0
    assert abs(datetime.fromisoformat(first["ts"]).timestamp() - time.time()) < 60
    assert "exception" not in first
    assert second["level"] == "ERROR" and second["message"] == "resolve failed"
    assert "Traceback" in second["exception"] and "ValueError: bad fill" in second["exception"]


def test_configure_logging_twice_keeps_one_json_handler(json_log):
    stream = io.StringIO()
    handler = configure_logging("INFO", stream)
    try:
        logging.getLogger("live.test").info("once")
        assert json_log.getvalue() == ""
        assert [line["message"] for line in log_lines(stream)] == ["once"]
    finally:
        logging.getLogger().removeHandler(handler)


SECRETS = {
    "BYBIT_API_KEY": "bybitKEY123456",
    "BYBIT_API_SECRET": "bybitSECRETabcdef",
    "TELEGRAM_BOT_TOKEN": TOKEN,
    "SOME_SERVICE_PASSWORD": "hunter2hunter2",
    "REDIS_TOKEN": "redisTOKENxyz",
}
DB_PASSWORD = "dbPa55word"


@pytest.fixture
def secret_env(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://trader:{DB_PASSWORD}@db.example:5432/ee")
    return [*SECRETS.values(), DB_PASSWORD]


def test_secrets_never_reach_the_log_output(secret_env, json_log):
    log = logging.getLogger("live.test")
    key, secret, token = SECRETS["BYBIT_API_KEY"], SECRETS["BYBIT_API_SECRET"], TOKEN

    log.info(f"signing with key {key}")
    log.warning("secret %s, password %s", secret, SECRETS["SOME_SERVICE_PASSWORD"])
    log.info("connect", extra={"url": f"postgresql://trader:{DB_PASSWORD}@db.example/ee",
                               "headers": {"X-BAPI-API-KEY": key, "nested": [SECRETS["REDIS_TOKEN"]]},
                               "error": RuntimeError(token)})
    try:
        raise ConnectionError(f"auth failed for {key}/{secret} via /bot{token}/sendMessage")
    except ConnectionError:
        log.exception("exchange down")
    log.info("stack", stack_info=True, extra={"token": token})

    out = json_log.getvalue()
    lines = log_lines(json_log)
    assert len(lines) == 5
    for value in secret_env:
        assert value not in out
    assert lines[0]["message"] == "signing with key ***"
    assert lines[2]["headers"] == {"X-BAPI-API-KEY": "***", "nested": ["***"]}
    assert lines[2]["url"] == "postgresql://trader:***@db.example/ee" and lines[2]["error"] == "***"
    assert "ConnectionError: auth failed for ***/*** via /bot***/sendMessage" in lines[3]["exception"]


def test_a_telegram_token_in_a_url_is_redacted_even_when_not_in_the_env(json_log, monkeypatch):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    other = "111222333:ZZunknownToken_-x"

    logging.getLogger("live.test").warning("POST https://api.telegram.org/bot%s/sendMessage failed", other)

    [line] = log_lines(json_log)
    assert line["message"] == "POST https://api.telegram.org/bot***/sendMessage failed"


def test_a_failed_telegram_send_logs_no_token(sqlite_repo, closed_url, telegram, caplog):
    caplog.set_level(logging.WARNING, logger="live.alerts")  # pytest's own handler: no redaction filter
    telegram.fail()
    unreachable = Alerter(sqlite_repo, telegram_config(closed_url))
    failing = Alerter(sqlite_repo, telegram_config(telegram))

    unreachable.alert("P0", "HALTED", "unreachable")
    failing.alert("P0", "HALTED", "answers 500")

    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "ConnectionError" in warnings[0] and "HTTP 500" in warnings[1]
    assert "/bot***/sendMessage" in warnings[0]  # requests names the URL: the token is scrubbed from it
    assert TOKEN not in caplog.text


def test_a_failed_telegram_send_leaves_no_secret_in_the_json_log(sqlite_repo, telegram, secret_env, json_log):
    telegram.fail()

    Alerter(sqlite_repo, telegram_config(telegram)).alert("P0", "HALTED", "answers 500")

    lines = log_lines(json_log)  # at DEBUG, urllib3 logs the request line with the token in the path too
    assert any(x["logger"] == "live.alerts" and "HTTP 500" in x["message"] for x in lines)
    assert any(x["logger"].startswith("urllib3") and "/bot***/sendMessage" in x["message"] for x in lines)
    for value in secret_env:
        assert value not in json_log.getvalue()


# ============================================================================================ metrics
def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = requests.get(url, timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_endpoint_serves_the_values_set():
    metrics = LiveMetrics()
    metrics.update_portfolio(value_usd=127_450.0, drawdown=0.084, breaker_level=2,
                             sleeve_equity={"core": 76_470.0, "trend": 25_490.0})
    metrics.observe_order_latency(0.04)
    metrics.observe_order_latency(0.3)
    metrics.record_error(AmbiguousError("read timeout"))
    metrics.record_error(DuplicateOrderError("110072"))
    metrics.record_error(TransientError("10006"))
    metrics.record_error(KeyError("x"))
    metrics.record_order("Filled")
    metrics.record_order("Filled")
    metrics.record_order("Rejected")
    metrics.set_last_bar(1_704_067_200_000_000_000)  # 2024-01-01T00:00Z in ns

    with metrics.start_metrics_server(0) as server:
        samples = scrape(server.url)

    assert samples[("eternal_portfolio_value_usd", ())] == 127_450.0
    assert samples[("eternal_drawdown_fraction", ())] == 0.084
    assert samples[("eternal_breaker_level", ())] == 2
    assert samples[("eternal_sleeve_equity_usd", (("sleeve", "trend"),))] == 25_490.0
    assert samples[("eternal_order_latency_seconds_count", ())] == 2
    assert samples[("eternal_order_latency_seconds_sum", ())] == pytest.approx(0.34)
    assert samples[("eternal_order_latency_seconds_bucket", (("le", "0.05"),))] == 1
    assert {k: samples[("eternal_errors_total", (("kind", k),))] for k in
            ("transient", "rejected", "ambiguous", "other")} == {"transient": 1, "rejected": 1, "ambiguous": 1,
                                                                 "other": 1}
    assert samples[("eternal_orders_total", (("outcome", "filled"),))] == 2
    assert samples[("eternal_orders_total", (("outcome", "rejected"),))] == 1
    assert samples[("eternal_orders_total", (("outcome", "unknown"),))] == 0
    assert samples[("eternal_last_bar_timestamp_seconds", ())] == 1_704_067_200


def test_stopped_metrics_server_refuses_connections():
    server = LiveMetrics().start_metrics_server(0)
    url = server.url
    assert requests.get(url, timeout=5).status_code == 200

    server.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)


def test_two_metrics_objects_do_not_share_values():
    a, b = LiveMetrics(), LiveMetrics()

    a.record_order("filled")

    assert a.registry.get_sample_value("eternal_orders_total", {"outcome": "filled"}) == 1
    assert b.registry.get_sample_value("eternal_orders_total", {"outcome": "filled"}) == 0
