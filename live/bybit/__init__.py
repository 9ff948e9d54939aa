"""Bybit V5 adapter: the only package that imports pybit.

* :mod:`live.bybit.errors` -- :class:`ExchangeError` and its kinds (transient / rejected / ambiguous) and
  :func:`classify`, the single translation point for pybit and requests failures;
* :mod:`live.bybit.client` -- :class:`BybitClient` (REST market data, account, orders, executions), the token-bucket
  rate limiter and the instrument-filter helpers;
* :mod:`live.bybit.streams` -- :class:`MarketStream` and :class:`PrivateStream` (pybit WebSocket streams with
  guarded callbacks and REST gap-fill).
"""
from live.bybit.errors import (
    AmbiguousError,
    AuthError,
    ClockSkewError,
    DuplicateOrderError,
    ExchangeError,
    InsufficientBalanceError,
    OrderNotActiveError,
    RateLimitError,
    RejectedError,
    TransientError,
    classify,
)
from live.bybit.client import (
    BybitClient,
    CoinBalance,
    Execution,
    Instrument,
    Order,
    OrderAck,
    OrderBook,
    Position,
    RateLimiter,
    TokenBucket,
    WalletBalance,
    round_price,
    round_qty,
)
from live.bybit.streams import MarketStream, PrivateStream, StreamConfig

__all__ = [
    "AmbiguousError", "AuthError", "BybitClient", "ClockSkewError", "CoinBalance", "DuplicateOrderError",
    "ExchangeError", "Execution", "InsufficientBalanceError", "Instrument", "Order", "OrderAck", "OrderBook",
    "MarketStream", "OrderNotActiveError", "Position", "PrivateStream", "RateLimitError", "RateLimiter",
    "RejectedError", "StreamConfig", "TokenBucket", "TransientError", "WalletBalance", "classify", "round_price",
    "round_qty",
]
