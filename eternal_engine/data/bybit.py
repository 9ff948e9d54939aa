"""Download Bybit V5 market data through pybit into the local Parquet cache, and build `MarketData` from it.

This is the only module that imports pybit for market data (lazily, inside functions).

``fetch_bybit(["BTC-PERP", "BTC-SPOT"], interval="60", start="2024-01-01", end="2024-02-01")`` downloads, for
each instrument, what the cache (:mod:`eternal_engine.data.cache`) does not hold yet:

* klines (``/v5/market/kline``; spot for ``-SPOT``, linear for ``-PERP``);
* for perps also funding-rate history (``/v5/market/funding/history``) and mark- and index-price klines
  (``/v5/market/mark-price-kline``, ``/v5/market/index-price-kline``: the basis the FUNDING engine needs);
* instruments info once per instrument (``/v5/market/instruments-info``; validates the symbol).

Names: ``"BTC-SPOT"`` is spot ``BTCUSDT``, ``"BTC-PERP"`` linear ``BTCUSDT``; a raw Bybit name such as
``"BTCUSDT"`` is read in ``category`` (default ``"linear"``). ``start`` is inclusive and ``end`` exclusive
(bar open times, UTC); ``end`` is clamped to the last *closed* bar, so an unfinished candle is never cached.

Paging follows the API: klines come newest first, 1,000 per page; funding 200 per page. Each range is walked
from its end backwards (``end = oldest row``) and every page is written to the cache, atomically, before the
next request, so an interrupted download resumes from where it stopped with no gap and no duplicate, and a
second run over a covered range makes no request at all.

Requests go through a token bucket (``max_rate`` per second, default 10: Bybit's IP limit is 600 per 5 s)
and are retried with exponential backoff only on transient failures: connection errors, timeouts, broken
responses, HTTP 429/5xx, retCode 10006 (rate limit: waits until ``X-Bapi-Limit-Reset-Timestamp``), 10000 and
10016 (server timeout/busy). Parameter errors (10001...) are never retried; they raise `DataError` or
`ConfigError` naming the fix. The point of the API is ``endpoint`` or ``$EE_BYBIT_ENDPOINT`` (e.g. a testnet
or a local fake), set on pybit's ``HTTP.endpoint``.

:func:`cached_market` builds `MarketData` from whatever the cache holds (all or some of its instruments, over
the range they all cover), strictly offline; ``eternal-engine backtest --data <cache dir>`` uses it.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from eternal_engine.data.cache import Cache
from eternal_engine.errors import ConfigError, DataError, FetchError

ENDPOINT_ENV = "EE_BYBIT_ENDPOINT"
INTERVALS = {"1": 1, "3": 3, "5": 5, "15": 15, "30": 30, "60": 60, "120": 120, "240": 240, "360": 360,
             "720": 720, "D": 1440}
KLINE_LIMIT = 1000
FUNDING_LIMIT = 200
KLINE_KINDS = ("kline", "mark", "index")
KINDS = KLINE_KINDS + ("funding",)
_METHODS = {"kline": "get_kline", "mark": "get_mark_price_kline", "index": "get_index_price_kline",
            "funding": "get_funding_rate_history", "instrument": "get_instruments_info"}
TRANSIENT_CODES = {10000, 10006, 10016, 170007, 170032}
MS_MIN = 60_000


# ------------------------------------------------------------------ names and times
def bybit_symbol(name: str, category: str = "linear") -> tuple[str, str, str]:
    """``"BTC-PERP"`` -> ``("BTC-PERP", "linear", "BTCUSDT")``; raw ``"BTCUSDT"`` -> our name in ``category``."""
    s = str(name).strip().upper()
    if s.endswith("-PERP"):
        return s, "linear", s[:-5] + "USDT"
    if s.endswith("-SPOT"):
        return s, "spot", s[:-5] + "USDT"
    if "-" not in s and s.endswith("USDT") and len(s) > 4:
        if category not in ("linear", "spot"):
            raise ConfigError(f"category {category!r} is not supported: use 'linear' (USDT perps) or 'spot'")
        return s[:-4] + ("-PERP" if category == "linear" else "-SPOT"), category, s
    raise DataError(f"cannot map {name!r} to a Bybit instrument", symbol=str(name),
                    fix="use our names like 'BTC-PERP' (linear BTCUSDT) or 'BTC-SPOT' (spot BTCUSDT), "
                        "or a raw USDT symbol like 'BTCUSDT' with category='linear'|'spot'")


def bybit_interval(interval) -> str:
    """Bybit's kline interval code (``"1"``..``"720"``, ``"D"``) from a code or a pandas-style bar size."""
    s = str(interval).strip()
    if s in INTERVALS:
        return s
    if s.upper() in ("D", "1D"):
        return "D"
    try:
        minutes = pd.Timedelta(pd.tseries.frequencies.to_offset(s)).total_seconds() / 60
    except (ValueError, TypeError):
        minutes = None
    for code, m in INTERVALS.items():
        if minutes == m:
            return code
    raise ConfigError(f"interval {interval!r} is not a Bybit kline interval: use one of {list(INTERVALS)} "
                      "(minutes, or 'D'), or a bar size such as '1h', '4h', '1D'")


def _to_ms(ts, what) -> int:
    try:
        t = pd.Timestamp(ts)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}={ts!r} is not a date or time: use ISO format, e.g. '2024-01-01'") from e
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value // 1_000_000)


def _ms_index(ts) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ts, dtype="int64") * 1_000_000, tz="UTC")


# ------------------------------------------------------------------ rate limiter and progress
class TokenBucket:
    """``rate`` requests per second on average, bursts of at most ``burst``."""

    def __init__(self, rate: float, burst: float | None = None, clock=time.monotonic, sleep=time.sleep):
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else max(1.0, rate))
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.t = clock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the time slept."""
        if self.rate <= 0 or math.isinf(self.rate):
            return 0.0
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
        self.t = now
        waited = 0.0
        if self.tokens < 1.0:
            waited = (1.0 - self.tokens) / self.rate
            self.sleep(waited)
            self.t = self.clock()
            self.tokens = 1.0
        self.tokens -= 1.0
        return waited


class _ProgressBar:
    """Plain-text progress on stderr: redrawn in place on a terminal, a line per 10 % otherwise."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.total, self.done, self.enabled = max(int(total), 0), 0, enabled and total > 0
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_decile = -1

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        total = max(self.total, self.done)
        frac = self.done / total
        bar = "#" * int(frac * 30)
        line = f"bybit [{bar:<30}] {self.done}/{total} requests  {label}"
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
            self.stream.flush()
        elif int(frac * 10) != self._last_decile:
            self._last_decile = int(frac * 10)
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ------------------------------------------------------------------ the client
class _Client:
    """One pybit session with rate limiting, retries on transient errors and request counting."""

    def __init__(self, endpoint=None, *, max_rate=10.0, retries=5, backoff=1.0, max_wait=60.0, timeout=10):
        from pybit.unified_trading import HTTP  # lazily: the package never imports pybit at import time

        # max_retries=1 and a retry set without 10006: every failure comes back to us, headers included.
        self.session = HTTP(testnet=False, timeout=timeout, max_retries=1, retry_codes={10002})
        endpoint = endpoint or os.environ.get(ENDPOINT_ENV)
        if endpoint:
            self.session.endpoint = str(endpoint).rstrip("/")
        self.bucket = TokenBucket(max_rate)
        self.retries, self.backoff, self.max_wait = int(retries), float(backoff), float(max_wait)
        self.requests = 0
        self.rate_limited = 0
        self.retried = 0

    def call(self, kind: str, what: str, **params) -> dict:
        import requests
        from pybit.exceptions import FailedRequestError, InvalidRequestError

        method = getattr(self.session, _METHODS[kind])
        attempt = 0
        while True:
            self.bucket.acquire()
            self.requests += 1
            wait = None
            try:
                resp = method(**params)
                return resp["result"]
            except InvalidRequestError as e:
                code = int(e.status_code)
                if code not in TRANSIENT_CODES:
                    raise _rejected(code, e.message, what, params) from None
                if code == 10006:
                    self.rate_limited += 1
                    wait = _reset_wait(e.resp_headers)
                err = f"retCode {code} {e.message}"
            except FailedRequestError as e:
                status = int(e.status_code or 0)
                if status == 403:
                    raise FetchError(f"Bybit refused {what} with HTTP 403 (IP rate limit or restricted region)",
                                     fix="wait at least 10 minutes before retrying, and lower max_rate") from None
                if status == 404:
                    raise ConfigError(f"HTTP 404 for {what} at {self.session.endpoint}: the endpoint is not a "
                                      f"Bybit V5 API (check --endpoint / ${ENDPOINT_ENV})") from None
                if status not in (400, 409, 429) and status < 500:
                    raise FetchError(f"Bybit answered HTTP {status} for {what}: {e.message}") from None
                err = f"HTTP {status} {e.message}"
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as e:
                err = f"{type(e).__name__}: {e}"
            attempt += 1
            if attempt > self.retries:
                raise FetchError(
                    f"download of {what} failed after {attempt} attempts ({err})",
                    fix="check the network or the endpoint; every completed page is kept in the cache, so running "
                        "the same command again resumes where this one stopped",
                )
            self.retried += 1
            delay = min(self.backoff * 2 ** (attempt - 1), 30.0)
            if wait is not None:
                delay = max(min(wait, self.max_wait), self.backoff)
            time.sleep(delay)


def _reset_wait(headers) -> float | None:
    try:
        reset = int((headers or {}).get("X-Bapi-Limit-Reset-Timestamp"))
    except (TypeError, ValueError):
        return None
    return max(0.0, reset / 1000 - time.time())


def _rejected(code, message, what, params) -> Exception:
    msg = f"Bybit rejected {what}: {message} (retCode {code})"
    symbol = params.get("symbol")
    if code == 10001:
        low = str(message).lower()
        if "symbol" in low:
            return DataError(msg, symbol=symbol, fix="check the instrument exists on Bybit in this category "
                             "('BTC-PERP' is linear BTCUSDT, 'BTC-SPOT' spot BTCUSDT)")
        if "period" in low or "interval" in low:
            return ConfigError(msg + f"; use one of {list(INTERVALS)}")
        return ConfigError(msg + "; check the request parameters (category, symbol, interval, dates)")
    if code in (10003, 10004, 10005, 10010):
        return ConfigError(msg + "; market data needs no API key: do not pass one")
    return FetchError(msg)


# ------------------------------------------------------------------ the result
@dataclass
class BybitDownload:
    """Everything one fetch produced, read back from the cache.

    ``frames[name]`` is a DataFrame on the instrument's own bars (UTC open times in ``[start, end)``) with
    ``open, high, low, close, volume, turnover`` and, for perps, ``funding_rate`` (sum of rates settling in the
    bar), ``mark_open .. mark_close`` and ``index_open .. index_close`` (NaN where Bybit has no such bar).
    ``funding[name]`` holds the raw settlements (rate by settlement time), ``instruments[name]`` the
    instruments-info item. ``requests`` counts HTTP requests made (0 when everything came from the cache).
    """

    frames: dict
    funding: dict
    instruments: dict
    interval: str
    start: pd.Timestamp
    end: pd.Timestamp
    cache_dir: Path
    requests: int = 0
    rate_limited: int = 0
    retried: int = 0

    @property
    def freq(self) -> pd.Timedelta:
        return pd.Timedelta(minutes=INTERVALS[self.interval])

    def quality_report(self):
        """The data-quality report (gaps, zero-volume runs, funding-interval changes) of the downloaded frames,
        or ``None`` if :mod:`eternal_engine.data.quality` is not available."""
        try:
            from eternal_engine.data.quality import quality_report
        except ImportError:
            return None
        return quality_report(self.frames, expected_freq=self.freq)

    def to_market(self, *, max_gap=None):
        """`MarketData` of all instruments on their common bars (intersection); see :func:`to_market`."""
        return to_market(self, max_gap=max_gap)


def to_market(download: BybitDownload, *, max_gap=None):
    from eternal_engine.data.loaders import from_frames
    from eternal_engine.data.market import FIELDS

    frames = download.frames
    common = None
    for name, df in frames.items():
        if not len(df):
            raise DataError("no bars downloaded", symbol=name,
                            fix="check the dates: Bybit has no bars for this instrument in that range")
        common = df.index if common is None else common.intersection(df.index)
    if common is None or not len(common):
        raise DataError("the instruments share no bar", fix="choose a range all instruments traded in")
    out = {}
    for name, df in frames.items():
        cols = list(FIELDS) + (["funding_rate"] if "funding_rate" in df else [])
        out[name] = df.loc[common, cols]
    return from_frames(out, freq=download.freq, max_gap=max_gap)


# ------------------------------------------------------------------ fetching
def _plan(symbols, category):
    seen, plan = set(), []
    for s in symbols:
        name, cat, raw = bybit_symbol(s, category)
        if name in seen:
            continue
        seen.add(name)
        plan.append((name, cat, raw))
    if not plan:
        raise ConfigError("no symbols given: pass e.g. ['BTC-PERP', 'BTC-SPOT']")
    return plan


def _kinds(cat, kinds):
    return [k for k in kinds if cat == "linear" or k == "kline"]


def _range(interval, start, end, now_ms=None):
    step = INTERVALS[interval] * MS_MIN
    s = _to_ms(start, "start")
    s = -(-s // step) * step
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    last_closed_end = (now_ms // step) * step
    e = last_closed_end if end is None else min(-(-_to_ms(end, "end") // step) * step, last_closed_end)
    if e <= s:
        raise ConfigError(f"empty range: start={start} end={end} (end is exclusive and capped at the last "
                          "closed bar); choose end after start")
    return s, e, step


def fetch_bybit_frames(symbols, *, interval="60", start, end=None, category="linear", cache_dir=None,
                       endpoint=None, progress=True, kinds=KINDS, max_rate=10.0, retries=5, backoff=1.0,
                       max_wait=60.0, timeout=10, offline=False) -> BybitDownload:
    """Fill the cache for ``symbols`` over ``[start, end)`` and return the frames (see `BybitDownload`).

    With ``offline=True`` nothing is requested: a range missing from the cache raises `DataError`.
    """
    interval = bybit_interval(interval)
    plan = _plan([symbols] if isinstance(symbols, str) else symbols, category)
    bad = [k for k in kinds if k not in KINDS]
    if bad or "kline" not in kinds:
        raise ConfigError(f"kinds must include 'kline' and be among {list(KINDS)}, got {list(kinds)}")
    s, e, step = _range(interval, start, end)
    cache = Cache(cache_dir)
    tasks = []  # (name, cat, raw, kind, store, missing)
    for name, cat, raw in plan:
        for kind in _kinds(cat, kinds):
            store = cache.series(cat, raw, interval, kind)
            tasks.append((name, cat, raw, kind, store, store.missing(s, e)))
    need_instr = [(n, c, r) for n, c, r in plan if cache.read_instrument(c, r) is None]
    todo = sum(1 for t in tasks if t[5]) + len(need_instr)
    if todo and offline:
        missing = next((f"{t[0]} {t[3]}" for t in tasks if t[5]), f"{need_instr[0][0]} instrument info"
                       if need_instr else "")
        raise DataError(f"the cache at {cache.root} does not cover {missing} over [{pd.Timestamp(s, unit='ms')}, "
                        f"{pd.Timestamp(e, unit='ms')})", fix="run `eternal-engine data fetch` for that range first")
    client = _Client(endpoint, max_rate=max_rate, retries=retries, backoff=backoff, max_wait=max_wait,
                     timeout=timeout) if todo else None
    est = len(need_instr)
    for name, cat, raw, kind, store, missing in tasks:
        lim = FUNDING_LIMIT if kind == "funding" else KLINE_LIMIT
        per = 8 * 3_600_000 if kind == "funding" else step
        est += sum(max(1, math.ceil((b - a) / per / lim)) for a, b in missing)
    bar = _ProgressBar(est, progress)
    try:
        instruments = {}
        for name, cat, raw in plan:
            item = cache.read_instrument(cat, raw)
            if item is None:
                res = client.call("instrument", f"{name} instruments-info", category=cat, symbol=raw)
                bar.step(f"{name} instrument")
                items = [i for i in res.get("list", []) if i.get("symbol") == raw]
                if not items:
                    raise DataError(f"Bybit has no {cat} instrument {raw!r}", symbol=name,
                                    fix="check the name: 'BTC-PERP' is linear BTCUSDT, 'BTC-SPOT' spot BTCUSDT; "
                                        "the instrument must be listed on Bybit")
                item = items[0]
                cache.write_instrument(cat, raw, item)
            instruments[name] = item
        for name, cat, raw, kind, store, missing in tasks:
            for a, b in reversed(missing):
                _fetch_range(client, store, name, cat, raw, interval, kind, a, b, bar)
            if missing:
                store.compact()
    finally:
        bar.close()
    frames, funding = {}, {}
    for name, cat, raw in plan:
        frames[name], funding[name] = _assemble(cache, cat, raw, interval, s, e, step, kinds)
    dl = BybitDownload(frames=frames, funding=funding, instruments=instruments, interval=interval,
                       start=pd.Timestamp(s, unit="ms", tz="UTC"), end=pd.Timestamp(e, unit="ms", tz="UTC"),
                       cache_dir=cache.root, requests=client.requests if client else 0,
                       rate_limited=client.rate_limited if client else 0, retried=client.retried if client else 0)
    return dl


def _fetch_range(client, store, name, cat, raw, interval, kind, a, b, bar):
    """Walk ``[a, b)`` newest first, one page per request, writing each page before asking for the next."""
    hi = b
    while hi > a:
        if kind == "funding":
            res = client.call(kind, f"{name} funding history", category=cat, symbol=raw, startTime=a,
                              endTime=hi - 1, limit=FUNDING_LIMIT)
            rows = res.get("list") or []
            ts = np.array([int(r["fundingRateTimestamp"]) for r in rows], dtype=np.int64)
            vals = {"funding_rate": np.array([float(r["fundingRate"]) for r in rows], dtype=np.float64)}
            limit = FUNDING_LIMIT
        else:
            res = client.call(kind, f"{name} {kind} klines", category=cat, symbol=raw, interval=interval, start=a,
                              end=hi - 1, limit=KLINE_LIMIT)
            rows = res.get("list") or []
            arr = np.array([[float(x) for x in r[1:7 if kind == "kline" else 5]] for r in rows], dtype=np.float64)
            ts = np.array([int(r[0]) for r in rows], dtype=np.int64)
            cols = ["open", "high", "low", "close"] + (["volume", "turnover"] if kind == "kline" else [])
            arr = arr.reshape(len(rows), len(cols))
            vals = {c: arr[:, j] for j, c in enumerate(cols)}
            limit = KLINE_LIMIT
        bar.step(f"{name} {kind}")
        # A full page, or a kline page that stops short of `a` (robust to a server cap below our limit), means
        # older rows may exist: continue below the oldest row. An empty or short page that reaches `a` ends it.
        step = INTERVALS[interval] * MS_MIN
        if len(rows) >= limit or (kind != "funding" and len(rows) and int(ts.min()) >= a + step):
            lo = int(ts.min())
            if lo >= hi:
                raise FetchError(f"Bybit returned {name} {kind} rows outside the requested range",
                                 fix="report this: the paging cannot make progress")
            lo = max(lo, a)
        else:
            lo = a  # a short page: nothing older in [a, hi)
        keep = (ts >= lo) & (ts < hi)
        page = pd.DataFrame({"ts": ts[keep], **{k: v[keep] for k, v in vals.items()}})
        page = page.drop_duplicates("ts", keep="last").sort_values("ts").reset_index(drop=True)
        store.write_page(page, lo, hi)
        hi = lo


def _assemble(cache, cat, raw, interval, s, e, step, kinds):
    k = cache.series(cat, raw, interval, "kline").read(s, e)
    idx = _ms_index(k["ts"].to_numpy())
    df = pd.DataFrame({c: k[c].to_numpy() for c in ("open", "high", "low", "close", "volume", "turnover")
                       if c in k}, index=idx)
    for c in ("open", "high", "low", "close", "volume", "turnover"):
        if c not in df:
            df[c] = pd.Series(dtype="float64")
    events = pd.Series(dtype="float64", name="funding_rate", index=pd.DatetimeIndex([], tz="UTC"))
    if cat == "linear":
        if "funding" in kinds:
            f = cache.series(cat, raw, interval, "funding").read(s, e)
            events = pd.Series(f["funding_rate"].to_numpy(dtype=np.float64) if len(f) else [],
                               index=_ms_index(f["ts"].to_numpy()), name="funding_rate", dtype="float64")
            bars = (f["ts"].to_numpy(dtype=np.int64) // step) * step
            per_bar = pd.Series(events.to_numpy(), index=_ms_index(bars)).groupby(level=0).sum()
            df["funding_rate"] = per_bar.reindex(df.index, fill_value=0.0).to_numpy(dtype=np.float64)
        for kind in ("mark", "index"):
            if kind in kinds:
                m = cache.series(cat, raw, interval, kind).read(s, e)
                mf = pd.DataFrame({f"{kind}_{c}": m[c].to_numpy() if c in m else [] for c in
                                   ("open", "high", "low", "close")}, index=_ms_index(m["ts"].to_numpy()))
                df = df.join(mf, how="left")
    df.index.name = "timestamp"
    return df, events


def load_cached(symbols, *, interval="60", start, end=None, category="linear", cache_dir=None,
                kinds=KINDS) -> BybitDownload:
    """Read a range back from the cache without any request (`DataError` if it is not fully cached)."""
    return fetch_bybit_frames(symbols, interval=interval, start=start, end=end, category=category,
                              cache_dir=cache_dir, kinds=kinds, progress=False, offline=True)


def fetch_bybit(symbols, *, interval="60", start, end=None, category="linear", cache_dir=None, endpoint=None,
                progress=True, max_gap=None, **options):
    """Download (or read from the cache) and return `MarketData` aligned on the instruments' common bars.

    ``funding`` of each perp is the sum of the rates settling in each bar (the `MarketData` convention);
    mark and index klines stay in the cache (:func:`fetch_bybit_frames` / :func:`load_cached` return them).
    ``options`` go to :func:`fetch_bybit_frames` (``max_rate``, ``retries``, ``backoff``, ``max_wait``,
    ``timeout``, ``kinds``, ``offline``). Gaps in Bybit's bars raise `DataError` unless ``max_gap`` allows them.
    """
    dl = fetch_bybit_frames(symbols, interval=interval, start=start, end=end, category=category,
                            cache_dir=cache_dir, endpoint=endpoint, progress=progress, **options)
    return dl.to_market(max_gap=max_gap)



# ------------------------------------------------------------------ offline: whatever the cache holds
def _intersect(a, b) -> list[tuple[int, int]]:
    """Intersection of two merged, sorted lists of half-open ranges."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _fmt_ranges(ranges) -> str:
    return ", ".join(f"[{pd.Timestamp(a, unit='ms'):%Y-%m-%d %H:%M}, {pd.Timestamp(b, unit='ms'):%Y-%m-%d %H:%M})"
                     for a, b in ranges) or "nothing"


def cached_market(cache_dir=None, *, interval=None, symbols=None, start=None, end=None, max_gap=None):
    """`MarketData` from what the cache already holds, strictly offline (no request, no pybit session).

    ``symbols``: our names (``"BTC-PERP"``, ``"BTC-SPOT"``) or raw linear names; default: every instrument
    with klines of ``interval`` in the cache (see :func:`~eternal_engine.data.cache.scan_cache`). ``interval``
    may be omitted when the cache (for those symbols) holds a single kline interval; with several, `DataError`
    names the choices. Klines are loaded for every instrument and, for perps, the funding settlements (summed
    per bar); mark/index klines are not needed.

    The range is the one all the chosen series cover together: the latest common start to the earliest common
    end. When holes split that into several pieces, the longest one is used (the latest on a tie), unless
    ``start`` (inclusive) / ``end`` (exclusive) pick one: they must then lie inside a single common piece.
    Gaps in Bybit's own bars raise `DataError` unless ``max_gap`` allows them (as in :func:`fetch_bybit`).
    """
    from eternal_engine.data.cache import _interval_minutes, scan_cache

    cache = Cache(cache_dir)
    root = cache.root
    fetch_fix = (f"download it first, e.g. `eternal-engine data fetch --cache {root} --symbols BTC-PERP,BTC-SPOT "
                 "--interval 60 --start 2024-01-01`")
    inv = scan_cache(root)
    kl = inv[(inv["kind"] == "kline") & inv["name"].notna()] if len(inv) else inv
    kl = kl[kl["ranges"].map(len) > 0] if len(kl) else kl
    if not len(kl):
        raise DataError(f"the cache at {root} holds no klines", fix=fetch_fix)
    if symbols is not None:
        plan = _plan([symbols] if isinstance(symbols, str) else symbols, "linear")
        names = [n for n, _, _ in plan]
        absent = [n for n in names if n not in set(kl["name"])]
        if absent:
            raise DataError(f"the cache at {root} holds no klines of {', '.join(absent)}",
                            fix=f"it holds {', '.join(sorted(set(kl['name'])))}; choose among them or "
                                f"{fetch_fix[0].lower()}{fetch_fix[1:]}")
        kl = kl[kl["name"].isin(names)]
    intervals = sorted(set(kl["interval"]), key=_interval_minutes)
    if interval is None:
        if len(intervals) > 1:
            raise DataError(f"the cache at {root} holds klines of several intervals ({', '.join(intervals)})"
                            + ("" if symbols is None else f" for {', '.join(names)}"),
                            fix=f"say which: interval= one of {intervals} (on the command line: --interval "
                                f"{intervals[0]})")
        interval = intervals[0]
    else:
        interval = bybit_interval(interval)
        if interval not in intervals:
            raise DataError(f"the cache at {root} holds no {interval} klines"
                            + ("" if symbols is None else f" of {', '.join(names)}"),
                            fix=f"choose one of the cached intervals {intervals}, or {fetch_fix[0].lower()}"
                                f"{fetch_fix[1:]}")
    sel = kl[kl["interval"] == interval]
    if symbols is None:
        sel = sel.sort_values(["category", "symbol"], ascending=[False, True], kind="stable")  # spot, then perps
        plan = list(zip(sel["name"], sel["category"], sel["symbol"]))
    else:
        have = set(sel["name"])
        absent = [n for n in names if n not in have]
        if absent:
            other = {n: sorted(set(kl.loc[kl["name"] == n, "interval"]), key=_interval_minutes) for n in absent}
            raise DataError(f"the cache at {root} holds no {interval} klines of {', '.join(absent)} (it has "
                            + "; ".join(f"{n}: {', '.join(v)}" for n, v in other.items()) + ")",
                            fix="choose another interval, or fetch those symbols at this one")
    step = INTERVALS[interval] * MS_MIN
    common, by_series = None, []
    for name, cat, raw in plan:
        for kind in ("kline", "funding") if cat == "linear" else ("kline",):
            covered = cache.series(cat, raw, interval, kind).covered()
            if not covered:
                raise DataError(f"the cache at {root} holds {name} klines but no funding history", symbol=name,
                                fix=f"run `eternal-engine data fetch --cache {root} --symbols {name} ...` over the "
                                    "same range (it downloads funding with the perp's klines)")
            by_series.append((f"{name} {kind}", covered))
            common = covered if common is None else _intersect(common, covered)
    pieces = [(-(-a // step) * step, (b // step) * step) for a, b in common]
    pieces = [(a, b) for a, b in pieces if b > a]
    listing = "; ".join(f"{what}: {_fmt_ranges(r)}" for what, r in by_series)
    if not pieces:
        raise DataError(f"the cached series share no common range of {interval} bars ({listing})",
                        fix="fetch all of them over one range, or pass fewer symbols")
    if start is None and end is None:
        s, e = max(pieces, key=lambda p: (p[1] - p[0], p[1]))
    else:
        s0 = None if start is None else -(-_to_ms(start, "start") // step) * step
        e0 = None if end is None else -(-_to_ms(end, "end") // step) * step
        if s0 is not None and e0 is not None and e0 <= s0:
            raise ConfigError(f"empty range: start={start} end={end} (end is exclusive); choose end after start")
        inside = [(a, b) for a, b in pieces if (s0 is None or a <= s0 < b) and (e0 is None or a < e0 <= b)]
        if not inside:
            raise DataError(f"the cache does not cover all of {', '.join(n for n, _, _ in plan)} over "
                            f"[{start if start is not None else '...'}, {end if end is not None else '...'}): "
                            f"together they cover {_fmt_ranges(pieces)}",
                            fix="choose start/end inside that, or fetch the missing range")
        a, b = inside[0]
        s, e = (a if s0 is None else s0), (b if e0 is None else e0)
    # offline=True raises before any client exists when something is missing, so no pybit session is created.
    dl = fetch_bybit_frames([n for n, _, _ in plan], interval=interval, start=pd.Timestamp(s, unit="ms", tz="UTC"),
                            end=pd.Timestamp(e, unit="ms", tz="UTC"), cache_dir=root, kinds=("kline", "funding"),
                            progress=False, offline=True)
    return dl.to_market(max_gap=max_gap)
