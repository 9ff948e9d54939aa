"""The fake exchange and a client pointed at it, shared by the live tests."""
import time

from live.bybit.client import BybitClient
from tests.fakes.bybit_exchange import FakeBybitExchange

KEY, SECRET = "testkey", "s3cr3t-VALUE-never-shown-0123456789"
CREATE = "/v5/order/create"
PRICES = {"BTCUSDT": 50_000, "ETHUSDT": 2_000}


def start_exchange():
    return FakeBybitExchange(api_key=KEY, api_secret=SECRET, prices=dict(PRICES))


def history_exchange(**kw):
    """The fake with daily bars of 2024-01-01 .. 2024-04-10 (replayed by the loop tests) and a deep wallet."""
    kw.setdefault("wallet_usdt", 10_000_000)
    kw.setdefault("prices", {"BTCUSDT": 40_000, "ETHUSDT": 2_200})
    return FakeBybitExchange(api_key=KEY, api_secret=SECRET, start="2024-01-01", end="2024-04-10", **kw)


class Clock:
    """Wall time plus an offset the test moves (grace periods pass without sleeping)."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def make_client(fake, secret=SECRET, **kw):
    """A client with short timeouts and no retries unless asked: each fault shows as it is."""
    kw.setdefault("timeout", (1.0, 0.5))
    kw.setdefault("retries", 0)
    kw.setdefault("retry_backoff", 0.01)
    return BybitClient(KEY, secret, endpoint=fake.url, **kw)
