"""The fake exchange and a client pointed at it, shared by the live tests."""
from live.bybit.client import BybitClient
from tests.fakes.bybit_exchange import FakeBybitExchange

KEY, SECRET = "testkey", "s3cr3t-VALUE-never-shown-0123456789"
CREATE = "/v5/order/create"
PRICES = {"BTCUSDT": 50_000, "ETHUSDT": 2_000}


def start_exchange():
    return FakeBybitExchange(api_key=KEY, api_secret=SECRET, prices=dict(PRICES))


def make_client(fake, secret=SECRET, **kw):
    """A client with short timeouts and no retries unless asked: each fault shows as it is."""
    kw.setdefault("timeout", (1.0, 0.5))
    kw.setdefault("retries", 0)
    kw.setdefault("retry_backoff", 0.01)
    return BybitClient(KEY, secret, endpoint=fake.url, **kw)
