"""Structured JSON logging for the live process, with credentials redacted.

:func:`configure_logging` installs one handler on the root logger that writes one JSON object per line::

    {"ts": "2026-11-02T08:00:00.123Z", "level": "WARNING", "logger": "live.bybit", "message": "...",
     "client_order_id": "TRENBTCUSDT-...", "exception": "Traceback ..."}

``extra={...}`` fields become top-level keys (the fixed keys win on a clash). Before anything is formatted,
:class:`RedactingFilter` replaces every secret with ``***`` in the message, its arguments, the extras and the
exception traceback. The secrets come from the environment (:func:`secrets_from_env`); a Telegram bot token
inside a URL (``/bot<token>/``) is redacted even when it is not in the environment.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

SECRET_ENV_VARS = ("BYBIT_API_KEY", "BYBIT_API_SECRET", "TELEGRAM_BOT_TOKEN")
SECRET_ENV_SUFFIXES = ("_SECRET", "_TOKEN", "_KEY", "_PASSWORD")
MIN_SECRET_LEN = 4  # shorter values ("1", "on") would mangle every message and protect nothing
REDACTED = "***"
TELEGRAM_TOKEN_IN_URL = re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+")

_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """The secret values in ``environ`` (default ``os.environ``): the named credentials, every variable ending
    in ``_SECRET``/``_TOKEN``/``_KEY``/``_PASSWORD``, and the password of ``DATABASE_URL``. Longest first."""
    env = os.environ if environ is None else environ
    values = [v for k, v in env.items() if k in SECRET_ENV_VARS or k.upper().endswith(SECRET_ENV_SUFFIXES)]
    password = urlsplit(env.get("DATABASE_URL", "")).password
    if password:
        values += [password, unquote(password)]
    return sorted({v for v in values if len(v) >= MIN_SECRET_LEN}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret and any Telegram bot token in a URL replaced by ``***``."""
    for s in secrets:
        text = text.replace(s, REDACTED)
    return TELEGRAM_TOKEN_IN_URL.sub(r"\1" + REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record in place so that no handler after it can see a secret; never drops a record."""

    def __init__(self, secrets: Iterable[str] | None = None):
        super().__init__()
        self.secrets = secrets_from_env() if secrets is None else sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad %-arguments must not raise into the caller
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = self._scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self._scrub(record.stack_info)
        for key, value in extra_fields(record).items():
            setattr(record, key, self._scrub(value))
        return True

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, Mapping):
            return {self._scrub(str(k)): self._scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self._scrub(v) for v in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return redact(str(value), self.secrets)


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The attributes a caller added with ``extra={...}``."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC ISO 8601), level, logger, message, extras, exception, stack."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {"ts": ts.replace("+00:00", "Z"), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        for key, value in extra_fields(record).items():
            out.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: int | str | None = None, stream: TextIO | None = None) -> logging.Handler:
    """Log JSON lines to ``stream`` (default stderr) at ``level`` (default ``LOG_LEVEL`` or INFO), redacting the
    environment's secrets as read now. Replaces a handler installed by an earlier call; returns the handler."""
    level = level if level is not None else os.environ.get("LOG_LEVEL", "INFO")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


__all__ = ["JsonFormatter", "RedactingFilter", "configure_logging", "redact", "secrets_from_env"]
