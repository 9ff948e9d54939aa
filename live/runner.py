"""The live process in testnet/live mode: the private WebSocket feeds the order manager while the loop trades
(issue 5 items 2 and 6; ``/work/shared/spec/bybit-v5-notes.md`` A.7, C, D rows 8 and 11-13, E.5).

:class:`Runner` owns a :class:`~live.bybit.streams.PrivateStream` (order, execution, position, wallet), the
:class:`~live.loop.LiveTrader` and the stream's lock:

* start: the stream connects, authenticates and subscribes first (no push is missed after it), then the
  trader's start-up reconciliation runs; the process refuses to trade unless it is ``ok``;
* every ``OrderManager`` call of the trader and every reconciliation holds :attr:`PrivateStream.lock`, so a
  pushed update is never applied in the middle of one (e.g. an order's fill pushed before its HTTP ack); the
  simulator's decision runs without it (a long hold would stall the socket thread past its ping timeout);
* after every reconnect the full :func:`live.reconcile.reconcile` runs (orders, executions since the previous
  clean reconciliation, positions, balances); an unresolved discrepancy halts trading;
* the stream is checked between bars (every ``check_s``; a bar waits for a connected stream) and before each
  ``OrderManager`` call. A refused re-authentication, or no connection for ``max_down_s``, halts trading
  through the repository (``updated_by="private-stream"``), raises a P0 alert and ends the run with
  :class:`PrivateStreamLost`: never trading on a stale private feed (D8). The halt stays until
  ``eternal-engine resume``.

Paper mode has no private stream (:meth:`LiveTrader.run_forever`); ``--once`` uses REST only.
"""
from __future__ import annotations

import functools
import logging
import os
import time
from urllib.parse import urlsplit

from eternal_engine.errors import ConfigError, EternalError
from live.bybit.streams import PrivateStream, StreamConfig
from live.reconcile import OVERLAP_MS, reconcile

log = logging.getLogger("live.runner")

WS_ENDPOINT_ENV = "EE_BYBIT_WS_ENDPOINT"
HALTED_BY = "private-stream"
PRIVATE_PATH = "/v5/private"


class PrivateStreamLost(EternalError):
    """The private WebSocket died for good (auth refused, or disconnected too long); trading was halted."""


def private_ws_url(rest_endpoint: str, override: str | None = None) -> str:
    """The private WebSocket URL of the REST endpoint the client trades on.

    ``https://api[-testnet|-demo].bybit.com`` -> ``wss://stream[-testnet|-demo].bybit.com/v5/private`` (also
    ``bytick`` and other Bybit TLDs): a Bybit endpoint always pairs with its own stream. Any other endpoint (a
    proxy, a local fake) needs ``override`` (``$EE_BYBIT_WS_ENDPOINT``, e.g. ``ws://127.0.0.1:PORT``)."""
    parts = urlsplit(rest_endpoint)
    label, _, domain = (parts.hostname or "").partition(".")
    if parts.scheme == "https" and label.startswith("api") and domain.split(".")[0] in ("bybit", "bytick"):
        return f"wss://stream{label[3:]}.{domain}{PRIVATE_PATH}"
    if not override:
        raise ConfigError(f"no private WebSocket URL for the REST endpoint {rest_endpoint!r}: set {WS_ENDPOINT_ENV} "
                          "(e.g. ws://127.0.0.1:PORT) to the stream of that endpoint")
    base = override.rstrip("/")
    return base if base.endswith(PRIVATE_PATH) else base + PRIVATE_PATH


class _Locked:
    """The trader's view of the order manager: every method call runs ``guard`` first (it raises when the
    private stream is dead), then holds ``lock``."""

    def __init__(self, manager, lock, guard):
        self._manager, self._lock, self._guard = manager, lock, guard

    def __getattr__(self, name):
        attr = getattr(self._manager, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def locked(*args, **kw):
            self._guard()
            with self._lock:
                return attr(*args, **kw)

        return locked


class Runner:
    """A trader plus its private stream (see the module docstring). Takes over ``trader.manager`` (wrapped so
    that each call holds the stream's lock) and ``trader.reconcile``. ``url``: the private WebSocket URL, by
    default :func:`private_ws_url` of the trader's client endpoint."""

    def __init__(self, trader, *, api_key: str, api_secret: str, url: str | None = None,
                 config: StreamConfig = StreamConfig(), categories=("linear", "spot"), max_down_s: float = 60.0,
                 check_s: float = 1.0, settle_s: float = 5.0, retry_s: float = 60.0, clock=time.monotonic,
                 sleep=time.sleep):
        url = url or private_ws_url(trader.client.endpoint, os.environ.get(WS_ENDPOINT_ENV))
        self.trader, self.manager = trader, trader.manager
        self.stream = PrivateStream(self.manager, api_key=api_key, api_secret=api_secret, categories=categories,
                                    url=url, config=config, on_reconnect=self._reconnected)
        trader.manager = _Locked(self.manager, self.stream.lock, self.check)
        trader.reconcile = lambda _manager: self.reconcile()
        self.max_down_s, self.check_s = float(max_down_s), float(check_s)
        self.settle_s, self.retry_s = float(settle_s), float(retry_s)
        self.clock, self.sleep = clock, sleep
        self.reconciles = 0
        self._since_ms: int | None = None  # executions are re-read from here (the last clean run, less overlap)
        self._down_since: float | None = None

    # ------------------------------------------------------------------ reconciliation
    def reconcile(self):
        """:func:`live.reconcile.reconcile` under the stream's lock, reading executions from the previous clean
        run on (less :data:`~live.reconcile.OVERLAP_MS`): a fill pushed while the socket was down is imported
        even when its order is already final in the database."""
        with self.stream.lock:
            started_ms = int(self.manager.clock() * 1000)
            report = reconcile(self.manager, since_ms=self._since_ms)
            self.reconciles += 1
            if report.ok:
                self._since_ms = started_ms - OVERLAP_MS
        return report

    def _reconnected(self) -> None:
        report = self.reconcile()
        if report.ok:
            log.info("private stream reconnected: reconciliation clean")
        else:
            log.error("private stream reconnected: reconciliation left %d discrepancies, trading halted",
                      len(report.unresolved))

    # ------------------------------------------------------------------ run
    def start(self):
        """Connect the stream (:class:`~live.bybit.errors.AuthError` if refused), then reconcile through the
        trader (:class:`~live.loop.NotReconciled` unless ok)."""
        self.stream.start()
        try:
            return self.trader.start()
        except BaseException:
            self.stream.close()
            raise

    def run_forever(self) -> None:
        """Start, then every bar through :meth:`LiveTrader.run_forever`, watching the stream between bars;
        returns only by an exception (:class:`PrivateStreamLost` when the stream died)."""
        self.start()
        try:
            self.trader.run_forever(settle_s=self.settle_s, retry_s=self.retry_s, sleep=self.wait)
        finally:
            self.stream.close()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` checking the stream every ``check_s``, then on until it is connected."""
        end = self.clock() + seconds
        while True:
            connected = self.check()
            left = end - self.clock()
            if left <= 0 and connected:
                return
            self.sleep(min(self.check_s, left) if left > 0 else self.check_s)

    def check(self) -> bool:
        """True when the stream is connected, False while it reconnects; when it is dead: halt, P0 alert,
        :class:`PrivateStreamLost`."""
        if self.stream.auth_failed:
            self._lost("the exchange refused the private WebSocket's authentication")
        if self.stream.is_connected():
            self._down_since = None
            return True
        now = self.clock()
        if self._down_since is None:
            self._down_since = now
        elif now - self._down_since >= self.max_down_s:
            self._lost(f"the private WebSocket has been disconnected for {now - self._down_since:.1f}s "
                       f"(limit {self.max_down_s:.1f}s)")
        return False

    def _lost(self, why: str) -> None:
        reason = f"{why}: no trading on a stale private feed"
        with self.stream.lock:  # after a reconnect's reconciliation, never in the middle of one
            self.trader.repo.set_halt(reason, updated_by=HALTED_BY)
        self.trader.alert("P0", "PRIVATE_STREAM_LOST", f"{reason}; trading halted until `eternal-engine resume`")
        raise PrivateStreamLost(reason)


__all__ = ["PrivateStreamLost", "Runner", "WS_ENDPOINT_ENV", "private_ws_url"]
