"""The exchange exception tree and the one place where pybit/requests failures are translated into it.

Three kinds (``/work/shared/spec/bybit-v5-notes.md`` A.5, A.9, section 0):

* :class:`TransientError` -- nothing happened on the exchange, a retry is safe (with the same ``orderLinkId``
  for a write): connection refused / connect timeout (never sent), 10006 and the other rate limits, HTTP 429,
  HTTP 503 (the gateway refused the request), and -- on *reads* only -- every timeout, dropped connection,
  5xx and "server error" retCode (10000, 10016, 170001, 170007, 170032, ...);
* :class:`RejectedError` -- the exchange definitely refused (invalid params, filters, balance, auth, clock);
  carries ``ret_code``. Subclasses: :class:`DuplicateOrderError` (110072/170141/10014: the order is *already
  placed*, query it), :class:`InsufficientBalanceError`, :class:`OrderNotActiveError` (cancel of a finished or
  unknown order: query the final state), :class:`AuthError` (10003/10004/10005/10010, HTTP 401: halt),
  :class:`ClockSkewError` (10002: sync the clock);
* :class:`AmbiguousError` -- a *write* whose outcome is unknown: read timeout or connection dropped after the
  request was sent, HTTP 5xx other than 503, retCodes 10000/10016/170001/170007/170032/170146/170147, an
  undecodable answer, pybit's synthetic "Retries exceeded maximum". Resolve it by querying the order by
  ``orderLinkId`` -- never by resending blindly.

:func:`classify` never raises; it returns the exception to raise. Messages never contain credentials: they are
built from the operation, retCode/HTTP status and the exchange's retMsg only (and :func:`redact` scrubs any
registered secret as a last line of defence).
"""
from __future__ import annotations

import json
import time

import requests

from eternal_engine.errors import EternalError

try:  # pybit is imported only inside live.bybit
    from pybit.exceptions import FailedRequestError, InvalidRequestError
except ImportError:  # pragma: no cover - pybit is a dependency of the live adapter
    FailedRequestError = InvalidRequestError = ()  # type: ignore[assignment]

try:
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
except ImportError:  # pragma: no cover
    ConnectTimeoutError = MaxRetryError = NewConnectionError = ()  # type: ignore[assignment]


class ExchangeError(EternalError):
    """Base class of every exchange failure. ``ret_code``: Bybit retCode; ``http_status``: HTTP status."""

    kind = "exchange"

    def __init__(self, message: str, *, ret_code: int | None = None, http_status: int | None = None,
                 operation: str | None = None, ret_msg: str | None = None, retry_after: float | None = None,
                 client_order_id: str | None = None):
        super().__init__(message)
        self.ret_code = ret_code
        self.http_status = http_status
        self.operation = operation
        self.ret_msg = ret_msg
        self.retry_after = retry_after
        self.client_order_id = client_order_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, ret_code={self.ret_code}, http_status={self.http_status})"


class TransientError(ExchangeError):
    """Nothing happened on the exchange; retrying (with the same orderLinkId) is safe. ``retry_after``: seconds."""

    kind = "transient"


class RateLimitError(TransientError):
    """10006 / 170005 / 170222 / HTTP 429 / HTTP 403 (IP limit): wait ``retry_after`` seconds."""


class RejectedError(ExchangeError):
    """The exchange definitely refused the request (or the client refused it before sending: ``ret_code=None``)."""

    kind = "rejected"


class DuplicateOrderError(RejectedError):
    """110072 / 170141 / 10014: an order with this orderLinkId already exists -- the first attempt landed."""


class InsufficientBalanceError(RejectedError):
    """110004 / 110007 / 110012 / 110044 / 110045 / 170131: not enough balance or margin."""


class OrderNotActiveError(RejectedError):
    """110001 / 110008 / 170213 / 170142: the order does not exist or is already finished -- query it."""


class AuthError(RejectedError):
    """10003 / 10004 / 10005 / 10010 / HTTP 401: credentials, permissions or IP whitelist. Halt, do not retry."""


class ClockSkewError(RejectedError):
    """10002: the request timestamp is outside recv_window -- the local clock must be synced."""


class AmbiguousError(ExchangeError):
    """The outcome of a write is unknown. Resolve by querying (orderLinkId), never by resending blindly."""

    kind = "ambiguous"


# ---------------------------------------------------------------------------------------------- code tables
RATE_LIMIT_CODES = {10006, 10018, 170005, 170222}
SERVER_ERROR_CODES = {10000, 10016, 170001, 170007, 170032, 170146, 170147}  # ambiguous on writes
RETRY_LATER_CODES = {110079}  # "order is processing, try later"
DUPLICATE_CODES = {110072, 170141, 10014}
INSUFFICIENT_CODES = {110004, 110007, 110012, 110044, 110045, 170131}
NOT_ACTIVE_CODES = {110001, 110008, 170213, 170142}
AUTH_CODES = {10003, 10004, 10005, 10010}
CLOCK_CODES = {10002}

_AUTH_HINT = {
    10003: "API key is invalid: check the configured key (testnet vs mainnet)",
    10004: "signature rejected: check the API key/secret pair, and sync the system clock (NTP)",
    10005: "permission denied: the API key lacks the permission for this endpoint",
    10010: "unmatched IP: add this host's IP to the API key's whitelist",
}

_SECRETS: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a credential so that :func:`redact` scrubs it from every message."""
    if secret and len(secret) >= 4:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    for s in _SECRETS:
        if s in text:
            text = text.replace(s, "***")
    return text


def _headers_reset_after(headers) -> float | None:
    if not headers:
        return None
    try:
        reset_ms = int(headers.get("X-Bapi-Limit-Reset-Timestamp"))
    except (TypeError, ValueError):
        return None
    return max(0.0, min(reset_ms / 1000 - time.time(), 60.0))


def _not_sent(exc: BaseException) -> bool:
    """True when a requests ConnectionError happened before the request left this host."""
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if NewConnectionError and isinstance(e, (NewConnectionError, ConnectTimeoutError)):
            return True
        if isinstance(e, ConnectionRefusedError):
            return True
        if MaxRetryError and isinstance(e, MaxRetryError):
            stack.append(e.reason)
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        stack.append(e.__cause__)
        stack.append(e.__context__)
    return False


def _from_ret_code(code: int, msg: str, *, is_write: bool, op: str, headers=None, cid=None) -> ExchangeError:
    kw = dict(ret_code=code, operation=op, ret_msg=msg, client_order_id=cid)
    base = f"{op}: Bybit retCode {code} ({msg})"
    if code in RATE_LIMIT_CODES:
        after = _headers_reset_after(headers)
        return RateLimitError(f"{base}: rate limited, retry after the reset",
                              retry_after=1.0 if after is None else after, **kw)
    if code in RETRY_LATER_CODES:
        return TransientError(f"{base}: retry later", retry_after=0.5, **kw)
    if code in SERVER_ERROR_CODES:
        if is_write:
            return AmbiguousError(f"{base}: outcome unknown, query the order before doing anything else", **kw)
        return TransientError(f"{base}: server error, retry", retry_after=0.5, **kw)
    if code in DUPLICATE_CODES:
        return DuplicateOrderError(f"{base}: an order with this orderLinkId already exists", **kw)
    if code in INSUFFICIENT_CODES:
        return InsufficientBalanceError(f"{base}: insufficient balance or margin", **kw)
    if code in NOT_ACTIVE_CODES:
        return OrderNotActiveError(f"{base}: order does not exist or is finished, query its final state", **kw)
    if code in AUTH_CODES:
        return AuthError(f"{base}: {_AUTH_HINT[code]}", **kw)
    if code in CLOCK_CODES:
        return ClockSkewError(f"{base}: request timestamp outside recv_window -- sync the system clock (NTP) "
                              "or increase recv_window", **kw)
    return RejectedError(f"{base}", **kw)


def _from_http_status(status: int, msg: str, *, is_write: bool, op: str, headers=None, cid=None) -> ExchangeError:
    kw = dict(http_status=status, operation=op, ret_msg=msg, client_order_id=cid)
    base = f"{op}: HTTP {status}"
    if status == 429:
        return RateLimitError(f"{base}: system-level protection, retry later", retry_after=1.0, **kw)
    if status == 403:
        return RateLimitError(f"{base}: IP rate limit breached (or a US IP); wait at least 10 minutes",
                              retry_after=600.0, **kw)
    if status == 401:
        return AuthError(f"{base}: missing or invalid API key", **kw)
    if status == 503:
        return TransientError(f"{base}: service unavailable (refused before acceptance), retry", retry_after=1.0,
                              **kw)
    synthetic = (status == 400 and "retries exceeded" in msg.lower()) or status == 409  # pybit-made codes
    if status >= 500 or synthetic:
        if is_write:
            return AmbiguousError(f"{base}: {msg} -- outcome unknown, query the order before doing anything "
                                  "else", **kw)
        return TransientError(f"{base}: {msg}, retry", retry_after=1.0, **kw)
    return RejectedError(f"{base}: {msg}", **kw)


def classify(exc_or_response, *, is_write: bool, operation: str = "request",
             client_order_id: str | None = None) -> ExchangeError:
    """Translate a pybit/requests exception or a Bybit response dict into our exception tree.

    ``is_write``: the request creates or cancels something (a lost answer is then *ambiguous*; for a read it is
    merely *transient*). Returns the exception (does not raise it)."""
    e = exc_or_response
    op, cid = operation, client_order_id
    if isinstance(e, ExchangeError):
        return e
    if isinstance(e, dict):
        code = e.get("retCode", e.get("ret_code"))
        msg = str(e.get("retMsg", e.get("ret_msg", "")))
        try:
            code = int(code)
        except (TypeError, ValueError):
            return (AmbiguousError if is_write else TransientError)(f"{op}: malformed response envelope",
                                                                    operation=op, client_order_id=cid)
        if code == 0:
            raise ValueError("classify() called on a successful response (retCode 0)")
        return _from_ret_code(code, msg, is_write=is_write, op=op, cid=cid)
    if InvalidRequestError and isinstance(e, InvalidRequestError):
        return _from_ret_code(int(e.status_code), redact(str(e.message)), is_write=is_write, op=op,
                              headers=e.resp_headers, cid=cid)
    if FailedRequestError and isinstance(e, FailedRequestError):
        return _from_http_status(int(e.status_code), redact(str(e.message)), is_write=is_write, op=op,
                                 headers=e.resp_headers, cid=cid)
    if isinstance(e, PermissionError):  # pybit: "Authenticated endpoints require keys."
        return AuthError(f"{op}: API key and secret are required for this endpoint", operation=op)
    kw = dict(operation=op, client_order_id=cid)
    name = type(e).__name__
    if isinstance(e, requests.exceptions.ConnectTimeout):
        return TransientError(f"{op}: connect timeout (request not sent), retry", retry_after=1.0, **kw)
    if isinstance(e, requests.exceptions.ReadTimeout):
        if is_write:
            return AmbiguousError(f"{op}: read timeout after the request was sent -- outcome unknown, query the "
                                  "order before doing anything else", **kw)
        return TransientError(f"{op}: read timeout, retry", retry_after=0.5, **kw)
    if isinstance(e, requests.exceptions.ConnectionError):
        if _not_sent(e):
            return TransientError(f"{op}: connection failed before the request was sent ({name}), retry",
                                  retry_after=1.0, **kw)
        if is_write:
            return AmbiguousError(f"{op}: connection dropped after the request was sent ({name}) -- outcome "
                                  "unknown, query the order before doing anything else", **kw)
        return TransientError(f"{op}: connection dropped ({name}), retry", retry_after=0.5, **kw)
    if isinstance(e, (requests.exceptions.RequestException, json.JSONDecodeError, ValueError)):
        if is_write:
            return AmbiguousError(f"{op}: {name} while reading the answer -- outcome unknown, query the order "
                                  "before doing anything else", **kw)
        return TransientError(f"{op}: {name} while reading the answer, retry", retry_after=0.5, **kw)
    if is_write:
        return AmbiguousError(f"{op}: unexpected {name} -- outcome unknown, query the order", **kw)
    return TransientError(f"{op}: unexpected {name}, retry", **kw)
