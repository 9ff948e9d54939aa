"""Prometheus metrics of the live process (spec 11.3), on a private registry per :class:`LiveMetrics`.

=========================================  =======================================================
``eternal_portfolio_value_usd``            total equity
``eternal_drawdown_fraction``              drawdown from the equity peak as a fraction (0.084 = 8.4 %)
``eternal_breaker_level``                  circuit-breaker level, 0 = normal
``eternal_sleeve_equity_usd{sleeve}``      equity per sleeve (core, trend, funding, tactical)
``eternal_order_latency_seconds``          histogram: submit to exchange acknowledgement
``eternal_errors_total{kind}``             exchange errors: transient, rejected, ambiguous, other
``eternal_orders_total{outcome}``          orders by outcome (lower-case order state)
``eternal_alerts_total{severity,outcome}`` alerts: stored, store_failed, sent, failed, duplicate, rate_limited
``eternal_last_bar_timestamp_seconds``     open time of the last processed closed bar (Unix seconds)
=========================================  =======================================================

:meth:`LiveMetrics.start_metrics_server` serves ``/metrics`` over HTTP (loopback by default) and returns a
:class:`MetricsServer` to stop it.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

NAMESPACE = "eternal"
ERROR_KINDS = ("transient", "rejected", "ambiguous", "other")
ORDER_OUTCOMES = ("acknowledged", "filled", "cancelled", "rejected", "unknown")
LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LiveMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        kw = {"namespace": NAMESPACE, "registry": self.registry}
        self.portfolio_value = Gauge("portfolio_value_usd", "Total portfolio equity in USD", **kw)
        self.drawdown = Gauge("drawdown_fraction", "Drawdown from the equity peak as a fraction", **kw)
        self.breaker_level = Gauge("breaker_level", "Circuit-breaker level (0 = normal)", **kw)
        self.sleeve_equity = Gauge("sleeve_equity_usd", "Equity per sleeve in USD", ["sleeve"], **kw)
        self.order_latency = Histogram("order_latency_seconds", "Order submit to exchange acknowledgement",
                                       buckets=LATENCY_BUCKETS_S, **kw)
        self.errors = Counter("errors", "Exchange errors by kind", ["kind"], **kw)
        self.orders = Counter("orders", "Orders by outcome", ["outcome"], **kw)
        self.alerts = Counter("alerts", "Alerts by severity and delivery outcome", ["severity", "outcome"], **kw)
        self.last_bar = Gauge("last_bar_timestamp_seconds", "Open time of the last processed closed bar", **kw)
        for kind in ERROR_KINDS:  # present at 0 from the start, so rate() works on the first error
            self.errors.labels(kind=kind)
        for outcome in ORDER_OUTCOMES:
            self.orders.labels(outcome=outcome)

    def update_portfolio(self, *, value_usd: float, drawdown: float, breaker_level: int,
                         sleeve_equity: Mapping[str, float] | None = None) -> None:
        self.portfolio_value.set(value_usd)
        self.drawdown.set(drawdown)
        self.breaker_level.set(breaker_level)
        for sleeve, equity in (sleeve_equity or {}).items():
            self.sleeve_equity.labels(sleeve=sleeve).set(equity)

    def record_error(self, error: BaseException | str) -> None:
        """Count an exchange error by its ``kind`` (an exception of ``live.bybit.errors`` or the kind itself)."""
        kind = error if isinstance(error, str) else getattr(error, "kind", "other")
        self.errors.labels(kind=kind if kind in ERROR_KINDS else "other").inc()

    def record_order(self, outcome: str) -> None:
        """Count one order outcome: an ``OrderState`` or its value (``"Filled"`` -> ``filled``)."""
        self.orders.labels(outcome=str(outcome).lower()).inc()

    def observe_order_latency(self, seconds: float) -> None:
        self.order_latency.observe(seconds)

    def record_alert(self, severity: str, outcome: str) -> None:
        self.alerts.labels(severity=severity, outcome=outcome).inc()

    def set_last_bar(self, bar_ts_ns: int) -> None:
        """``bar_ts_ns``: the bar's open time in ns since the epoch (the orders' ``bar_ts``)."""
        self.last_bar.set(bar_ts_ns / 1e9)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)

    def start_metrics_server(self, port: int, addr: str = "127.0.0.1") -> MetricsServer:
        """Serve ``/metrics`` on ``addr:port`` (port 0: any free port) from a daemon thread."""
        server, thread = start_http_server(port, addr=addr, registry=self.registry)
        return MetricsServer(server, thread)


class MetricsServer:
    """A running metrics endpoint: ``url`` to scrape, :meth:`stop` (or ``with``) to shut it down."""

    def __init__(self, server, thread: threading.Thread):
        self._server, self._thread = server, thread

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["ERROR_KINDS", "LiveMetrics", "MetricsServer", "ORDER_OUTCOMES"]
