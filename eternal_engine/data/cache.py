"""A local Parquet store for downloaded market data, safe against interruption.

Location: the ``cache_dir`` argument, else the ``EE_DATA_CACHE`` environment variable, else
``~/.cache/eternal-engine/bybit``. Layout, one folder ("file set") per series::

    <root>/<category>/<SYMBOL>/<interval>/<kind>/manifest.json      kind: kline | mark | index
    <root>/<category>/<SYMBOL>/funding/manifest.json                 funding settlements (any interval)
    <root>/<category>/<SYMBOL>/instrument.json                       instruments-info item
    .../part-<start>-<end>-<id>.parquet | data-<id>.parquet           rows (column ``ts``: int64 epoch ms)

``manifest.json`` is the single source of truth: ``{"ranges": [[start_ms, end_ms), ...], "files": [...]}``.
A range ``[a, b)`` is *covered* when every row the exchange has with ``a <= ts < b`` is in the listed files
(an exchange gap inside a covered range is simply absent, and is not fetched again).

Atomicity: rows are written to a temp file in the same folder, flushed, fsynced and ``os.replace``-d into
place; only then is the manifest (itself written the same way) updated to list the file and the range. A
crash at any point leaves either the old manifest (the page is fetched again; an orphan part file is ignored
and removed at the next compaction) or the new one (the page is complete). So the cache never holds a
partial page as complete, and :func:`missing_ranges` tells exactly what to fetch on resume. Rows are
de-duplicated on ``ts`` when read (the newest write wins). One writer per series at a time is assumed.

:func:`scan_cache` lists what a cache holds (instrument, interval, kind, covered ranges) from the manifests alone.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import uuid
from pathlib import Path

import pandas as pd

ENV_VAR = "EE_DATA_CACHE"
MANIFEST = "manifest.json"
VERSION = 1


def default_cache_dir() -> Path:
    """``$EE_DATA_CACHE`` if set, else ``~/.cache/eternal-engine/bybit``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "eternal-engine" / "bybit"


def resolve_cache_dir(cache_dir=None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


# ------------------------------------------------------------------ ranges
def merge_ranges(ranges) -> list[tuple[int, int]]:
    """Sort and merge half-open ``[a, b)`` ranges (touching ranges merge); empty ones are dropped."""
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges if int(b) > int(a)):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def missing_ranges(covered, start: int, end: int) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` not inside any ``covered`` range, in increasing order."""
    out, cur = [], int(start)
    for a, b in merge_ranges(covered):
        if b <= cur:
            continue
        if a >= end:
            break
        if a > cur:
            out.append((cur, min(a, end)))
        cur = max(cur, b)
        if cur >= end:
            break
    if cur < end:
        out.append((cur, int(end)))
    return out


# ------------------------------------------------------------------ atomic writes
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def _atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


# ------------------------------------------------------------------ one series
class SeriesStore:
    """The file set of one (category, symbol, interval, kind) series. ``interval`` is ignored for funding."""

    def __init__(self, root, category: str, symbol: str, interval: str, kind: str):
        self.root = Path(root)
        self.category, self.symbol, self.interval, self.kind = category, symbol, str(interval), kind
        base = self.root / category / symbol
        self.path = base / "funding" if kind == "funding" else base / self.interval / kind

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def manifest(self) -> dict:
        try:
            m = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return {"version": VERSION, "category": self.category, "symbol": self.symbol,
                    "interval": None if self.kind == "funding" else self.interval, "kind": self.kind,
                    "ranges": [], "files": []}
        return m

    def covered(self) -> list[tuple[int, int]]:
        return merge_ranges(self.manifest()["ranges"])

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        return missing_ranges(self.covered(), start, end)

    def write_page(self, rows: pd.DataFrame, start: int, end: int) -> None:
        """Durably store ``rows`` (column ``ts`` in ms, all within ``[start, end)``) and mark the range covered."""
        m = self.manifest()
        if len(rows):
            ts = rows["ts"].to_numpy()
            if ts.min() < start or ts.max() >= end:
                raise ValueError(f"rows outside the page range [{start}, {end})")
            name = f"part-{start}-{end}-{uuid.uuid4().hex[:8]}.parquet"
            _atomic_write_parquet(self.path / name, rows.reset_index(drop=True))
            m["files"].append(name)
        m["ranges"] = [list(r) for r in merge_ranges(m["ranges"] + [[start, end]])]
        atomic_write_json(self.manifest_path, m)

    def read(self, start: int | None = None, end: int | None = None) -> pd.DataFrame:
        """Rows with ``start <= ts < end`` (both optional), sorted by ``ts``, de-duplicated."""
        files = self.manifest()["files"]
        parts = [pd.read_parquet(self.path / f) for f in files]
        parts = [p for p in parts if len(p)]
        if not parts:
            return pd.DataFrame({"ts": pd.Series([], dtype="int64")})
        df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        df = df.drop_duplicates("ts", keep="last").sort_values("ts", kind="stable")
        if start is not None:
            df = df[df["ts"] >= start]
        if end is not None:
            df = df[df["ts"] < end]
        return df.reset_index(drop=True)

    def compact(self) -> None:
        """Merge all part files into one (atomically) and remove files the manifest no longer lists."""
        m = self.manifest()
        if len(m["files"]) > 1:
            df = self.read()
            name = f"data-{uuid.uuid4().hex[:8]}.parquet"
            _atomic_write_parquet(self.path / name, df)
            m["files"] = [name]
            atomic_write_json(self.manifest_path, m)
        keep = set(m["files"]) | {MANIFEST}
        if self.path.exists():
            for p in self.path.iterdir():
                if p.name not in keep and (p.name.startswith(("part-", "data-", ".tmp-"))):
                    try:
                        p.unlink()
                    except OSError:
                        pass


class Cache:
    """The store root: series file sets plus small JSON documents (instrument info)."""

    def __init__(self, cache_dir=None):
        self.root = resolve_cache_dir(cache_dir)

    def series(self, category: str, symbol: str, interval: str, kind: str) -> SeriesStore:
        return SeriesStore(self.root, category, symbol, interval, kind)

    def instrument_path(self, category: str, symbol: str) -> Path:
        return self.root / category / symbol / "instrument.json"

    def read_instrument(self, category: str, symbol: str) -> dict | None:
        try:
            return json.loads(self.instrument_path(category, symbol).read_text())
        except FileNotFoundError:
            return None

    def write_instrument(self, category: str, symbol: str, item: dict) -> None:
        atomic_write_json(self.instrument_path(category, symbol), item)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"


# ------------------------------------------------------------------ inventory
SCAN_COLUMNS = ["name", "category", "symbol", "interval", "kind", "start", "end", "ranges", "files"]


def cached_name(category: str, symbol: str) -> str | None:
    """Our name of a cached Bybit instrument: linear ``BTCUSDT`` -> ``"BTC-PERP"``, spot -> ``"BTC-SPOT"``
    (``None`` for anything else)."""
    s = str(symbol).upper()
    if s.endswith("USDT") and len(s) > 4 and category in ("linear", "spot"):
        return s[:-4] + ("-PERP" if category == "linear" else "-SPOT")
    return None


def scan_cache(cache_dir=None) -> pd.DataFrame:
    """What the cache holds, read from the manifests only (no data file is opened, nothing is requested).

    One row per series: ``name`` (ours, e.g. ``BTC-PERP`` / ``BTC-SPOT``), ``category`` (``linear`` |
    ``spot``), ``symbol`` (Bybit's, e.g. ``BTCUSDT``), ``interval`` (Bybit's code, e.g. ``"60"``; ``None`` for
    funding, which serves every interval), ``kind`` (``kline`` | ``mark`` | ``index`` | ``funding``),
    ``start`` / ``end`` (UTC, of the earliest and latest covered range: the span, which may have holes),
    ``ranges`` (the covered half-open ranges ``[(start, end), ...]`` as UTC timestamps, merged and sorted) and
    ``files`` (the number of data files). Empty (with these columns) when the folder holds no cache.
    """
    root = resolve_cache_dir(cache_dir)
    found = []
    if root.is_dir():
        found += [(p, p.parent.parent.parent.parent.name, p.parent.parent.parent.name, p.parent.parent.name,
                   p.parent.name) for p in root.glob(f"*/*/*/*/{MANIFEST}") if p.parent.parent.name != "funding"]
        found += [(p, p.parent.parent.parent.name, p.parent.parent.name, None, "funding")
                  for p in root.glob(f"*/*/funding/{MANIFEST}")]
    rows = []
    for path, category, symbol, interval, kind in found:
        try:
            m = json.loads(path.read_text())
            ranges = merge_ranges(m.get("ranges", []))
            files = len(m.get("files", []))
        except (OSError, ValueError, TypeError, AttributeError) as e:
            from eternal_engine.errors import DataError

            raise DataError(f"unreadable cache manifest {path} ({type(e).__name__}: {e})",
                            fix="delete that series folder and run `eternal-engine data fetch` again") from None
        spans = [(pd.Timestamp(a, unit="ms", tz="UTC"), pd.Timestamp(b, unit="ms", tz="UTC")) for a, b in ranges]
        rows.append({"name": cached_name(category, symbol), "category": category, "symbol": symbol,
                     "interval": interval, "kind": kind,
                     "start": spans[0][0] if spans else pd.NaT, "end": spans[-1][1] if spans else pd.NaT,
                     "ranges": spans, "files": files})
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in SCAN_COLUMNS})
    df = pd.DataFrame(rows, columns=SCAN_COLUMNS)
    order = {"kline": 0, "mark": 1, "index": 2, "funding": 3}
    df["_k"] = df["kind"].map(order).fillna(9)
    df["_i"] = df["interval"].map(_interval_minutes)
    df = df.sort_values(["category", "symbol", "_i", "_k"], kind="stable").drop(columns=["_k", "_i"])
    return df.reset_index(drop=True)


def _interval_minutes(interval) -> float:
    if interval is None:
        return float("inf")
    s = str(interval)
    if s.isdigit():
        return float(s)
    return {"D": 1440.0, "W": 10080.0, "M": 43200.0}.get(s, 1e12)
