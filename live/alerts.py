"""Alerts: stored in the database first, then pushed to Telegram (spec 11.2).

=====  ========  ==========================================================================
P0     CRITICAL  circuit breaker tripped, major loss, trading halted
P1     HIGH      API/auth errors, order of unknown outcome, position mismatch
P2     MEDIUM    performance degradation (database + dashboard only by default)
P3     LOW       minor anomalies (database + daily report only by default)
=====  ========  ==========================================================================

:meth:`Alerter.alert` always writes the row through :meth:`Repository.add_alert` first, so an alert is never lost
to a network problem. Then, when Telegram is configured (:meth:`TelegramConfig.from_env`), alerts at or above
``min_severity`` (default P1, the spec's Telegram channels) are sent with one ``POST {api_url}/bot{token}/
sendMessage`` and a short timeout. Identical alerts (severity, code, message) are sent once per
``dedup_window_s``; at most ``max_per_minute`` messages go out per minute, P0 exempt. A failed send never raises:
it is logged with the token scrubbed and counted in :attr:`Alerter.counts`.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from live.db.models import SEVERITIES

log = logging.getLogger("live.alerts")

SEVERITY_NAMES = {"P0": "CRITICAL", "P1": "HIGH", "P2": "MEDIUM", "P3": "LOW"}
DEFAULT_API_URL = "https://api.telegram.org"
MAX_MESSAGE_CHARS = 4096  # Telegram's limit for one message


def _check_severity(severity: str) -> str:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    return severity


@dataclass(frozen=True, kw_only=True, slots=True)
class TelegramConfig:
    """Where and what to send. ``min_severity``: the least urgent level still sent (P1 sends P0 and P1)."""

    token: str = field(repr=False)
    chat_id: str
    api_url: str = DEFAULT_API_URL
    min_severity: str = "P1"
    timeout_s: float = 3.0

    def __post_init__(self):
        _check_severity(self.min_severity)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TelegramConfig | None:
        """``TELEGRAM_BOT_TOKEN`` and ``TELEGRAM_CHAT_ID`` (both required, else None: Telegram off),
        ``TELEGRAM_API_URL`` (default https://api.telegram.org), ``TELEGRAM_MIN_SEVERITY`` (default P1)."""
        env = os.environ if environ is None else environ
        token, chat_id = env.get("TELEGRAM_BOT_TOKEN", "").strip(), env.get("TELEGRAM_CHAT_ID", "").strip()
        if not token or not chat_id:
            return None
        return cls(token=token, chat_id=chat_id,
                   api_url=env.get("TELEGRAM_API_URL", "").strip().rstrip("/") or DEFAULT_API_URL,
                   min_severity=env.get("TELEGRAM_MIN_SEVERITY", "").strip().upper() or "P1")


class Alerter:
    """The live process's alert sink; :meth:`alert` has the signature of ``Repository.add_alert``.

    ``counts`` keys: ``stored``, ``store_failed``, ``sent``, ``failed`` (send errors), ``duplicate`` and
    ``rate_limited`` (not sent on purpose). ``metrics`` (a :class:`live.metrics.LiveMetrics`) gets the same."""

    def __init__(self, repo, telegram: TelegramConfig | None = None, *, dedup_window_s: float = 600.0,
                 max_per_minute: int = 20, clock: Callable[[], float] = time.monotonic, metrics=None):
        self.repo = repo
        self.telegram = telegram
        self.dedup_window_s = float(dedup_window_s)
        self.max_per_minute = int(max_per_minute)
        self.clock = clock
        self.metrics = metrics
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._last_sent: dict[tuple[str, str, str], float] = {}
        self._repeats: Counter[tuple[str, str, str]] = Counter()
        self._sent_at: deque[float] = deque()

    @classmethod
    def from_env(cls, repo, **kwargs) -> Alerter:
        return cls(repo, TelegramConfig.from_env(), **kwargs)

    def alert(self, severity: str, code: str, message: str, detail: dict[str, Any] | None = None):
        """Store the alert (the row is returned), then send it if routing allows. Only a database error raises
        (after the send attempt)."""
        _check_severity(severity)
        try:
            row = self.repo.add_alert(severity, code, message, detail)
        except Exception:
            self._count(severity, "store_failed")
            self._route(severity, code, message, detail)  # the database is down: Telegram may be the only trace
            raise
        self._count(severity, "stored")
        self._route(severity, code, message, detail)
        return row

    def _route(self, severity, code, message, detail) -> None:
        cfg = self.telegram
        if cfg is None or SEVERITIES.index(severity) > SEVERITIES.index(cfg.min_severity):
            return
        text = self._admit(severity, code, message, detail)
        if text is not None:
            self._count(severity, "sent" if self._send(text) else "failed")

    def _admit(self, severity, code, message, detail) -> str | None:
        """The text to send now, or None (counted) when it is a duplicate or over the rate limit."""
        key = (severity, code, message)
        now = self.clock()
        with self._lock:
            last = self._last_sent.get(key)
            if last is not None and now - last < self.dedup_window_s:
                self._repeats[key] += 1
                outcome = "duplicate"
            else:
                while self._sent_at and now - self._sent_at[0] >= 60.0:
                    self._sent_at.popleft()
                if severity != "P0" and len(self._sent_at) >= self.max_per_minute:
                    outcome = "rate_limited"
                else:
                    repeats = self._repeats.pop(key, 0)
                    self._forget_expired(now)
                    self._last_sent[key] = now
                    self._sent_at.append(now)
                    return format_alert(severity, code, message, detail, repeats=repeats)
        self._count(severity, outcome)
        return None

    def _forget_expired(self, now: float) -> None:
        """Drop alerts last sent a window ago (keeps the state small; their repeat counts are in the database)."""
        for key in [k for k, t in self._last_sent.items() if now - t >= self.dedup_window_s]:
            del self._last_sent[key]
            self._repeats.pop(key, None)

    def _send(self, text: str) -> bool:
        cfg = self.telegram
        try:
            r = requests.post(f"{cfg.api_url}/bot{cfg.token}/sendMessage",
                              json={"chat_id": cfg.chat_id, "text": text}, timeout=cfg.timeout_s)
        except Exception as exc:  # whatever goes wrong, trading code must not see it
            log.warning("telegram send failed: %s: %s", type(exc).__name__, str(exc).replace(cfg.token, "***"))
            return False
        if r.status_code != 200:
            log.warning("telegram send failed: HTTP %d %s", r.status_code, r.text[:200].replace(cfg.token, "***"))
            return False
        return True

    def _count(self, severity: str, outcome: str) -> None:
        self.counts[outcome] += 1
        if self.metrics is not None:
            self.metrics.record_alert(severity, outcome)


def format_alert(severity: str, code: str, message: str, detail: dict[str, Any] | None = None, *,
                 repeats: int = 0) -> str:
    """``P1 HIGH ORDER_UNKNOWN`` / message / detail as JSON / repeat note, cut to Telegram's 4096 characters."""
    lines = [f"{severity} {SEVERITY_NAMES[severity]} {code}", message]
    if detail:
        lines.append(json.dumps(detail, default=str, sort_keys=True))
    if repeats:
        lines.append(f"(repeated {repeats} more time{'s' if repeats > 1 else ''} since the last message)")
    return "\n".join(lines)[:MAX_MESSAGE_CHARS]


__all__ = ["Alerter", "SEVERITY_NAMES", "TelegramConfig", "format_alert"]
