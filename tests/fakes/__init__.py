"""Local fakes of external services that speak the real wire protocol (used by tests only).

* :mod:`tests.fakes.bybit_server`: a Bybit V5 REST server (market data today; the live adapter extends
  :class:`~tests.fakes.bybit_server.FakeBybit` with signed order/position endpoints).
"""
from tests.fakes.bybit_server import FakeBybit

__all__ = ["FakeBybit"]
