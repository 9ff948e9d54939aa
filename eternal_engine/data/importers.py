"""Importers for the bar files quants already have on disk -> clean per-symbol OHLCV frames.

Every reader returns one instrument's bars as a DataFrame ready for :func:`eternal_engine.data.from_frames`:
a UTC ``DatetimeIndex`` named ``timestamp`` of bar **open** times, strictly ascending, and float columns
``open, high, low, close, volume`` (base-asset volume) plus ``funding_rate`` when the source has one
(perps only). ``df.attrs["symbol"]`` and ``df.attrs["source"]`` record where the bars came from.

Formats
-------
CryptoDataDownload (:func:`read_cryptodatadownload`)
    A URL comment line (``https://www.CryptoDataDownload.com``) above the header
    ``unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT[,tradecount]``, newest row first.
    ``unix`` is read per value by magnitude (CryptoDataDownload switched some files from seconds to
    milliseconds part-way through). Without a ``unix`` column the ``date`` column is parsed as UTC.
    Volume is the base-asset column (``Volume BTC`` for ``BTC/USDT``). ``BTC/USDT`` becomes ``BTC-SPOT``
    unless ``symbol=`` is given (pass ``symbol="BTC-PERP"`` for a futures file).
Binance klines (:func:`read_binance_klines`)
    The data.binance.vision files: no header (a header row, as in some futures files, is skipped), 12 columns
    ``open_time, open, high, low, close, volume, close_time, quote_volume, trades, taker_buy_base,
    taker_buy_quote, ignore``. ``open_time`` is in milliseconds, or microseconds in Binance spot files since
    2025; detected per value by magnitude. ``symbol`` (e.g. ``"BTC-SPOT"``) is required.
Generic OHLCV CSV/Parquet (:func:`read_ohlcv`)
    Any column names, mapped with ``columns={"your name": "our name"}`` onto ``timestamp, open, high, low,
    close, volume[, funding_rate, symbol]``. Time as ISO strings, datetimes, or epoch numbers (give
    ``time_unit=`` or let the magnitude decide).

Epoch magnitude rule (documented, deterministic): ``|t| < 1e11`` seconds, ``< 1e14`` milliseconds,
``< 1e17`` microseconds, otherwise nanoseconds. Every range covers 1973..5138 for its unit, so bars from
any real exchange history are read unambiguously.

Time zones and alignment: timestamps without a zone are UTC (``read_ohlcv(tz=...)`` says otherwise for
that file); everything is converted to UTC and **never shifted**. Bars must sit on the epoch-aligned grid of
their size (a daily bar is 00:00-24:00 UTC, 4h bars open at 00, 04, 08 ... UTC); a file whose daily bars are
stamped at another hour raises `DataError` with the fix instead of being guessed at.

Nothing is repaired: duplicate timestamps, rows out of order (other than a whole file written newest first,
which is reversed), NaN, non-positive prices, high < low, a close outside [low, high] and negative volume
raise the foundation's `DataError` naming the symbol, the first bad bar and the fix. Gaps are *not*
errors here: they are real (exchange maintenance) and are reported by
:func:`eternal_engine.data.quality.quality_report`; :func:`from_frames` applies ``max_gap`` when loading.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from eternal_engine._hints import did_you_mean
from eternal_engine.data.loaders import _values, from_frames
from eternal_engine.data.market import FIELDS, PERP, MarketData, parse_symbol
from eternal_engine.data.validate import MAX_FREQ, check_arrays, check_index, check_order, infer_freq
from eternal_engine.errors import DataError

__all__ = ["read_cryptodatadownload", "read_binance_klines", "read_ohlcv", "import_files", "epoch_to_utc",
           "BINANCE_KLINE_COLUMNS"]

BINANCE_KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                         "trades", "taker_buy_base", "taker_buy_quote", "ignore")
TARGETS = ("timestamp",) + FIELDS + ("funding_rate", "symbol")
QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USD", "EUR", "BTC", "ETH")
_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_NO_GAP_LIMIT = pd.Timedelta(days=100 * 365).as_unit("ns")  # gaps: reported by quality_report, not refused


# ------------------------------------------------------------------------------------------------- time
def epoch_to_utc(values, unit=None, *, symbol=None, source="file") -> pd.DatetimeIndex:
    """Epoch numbers -> UTC ``DatetimeIndex``. ``unit`` is s/ms/us/ns; ``None`` detects it per value by magnitude."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        num = pd.to_numeric(pd.Series(arr), errors="coerce")
        if num.isna().any():
            i = int(np.flatnonzero(num.isna().to_numpy())[0])
            raise DataError(f"epoch time {arr[i]!r} in row {i} of {source} is not a number", symbol=symbol,
                            fix="give integer epoch times, or ISO strings with time_unit=None")
        arr = num.to_numpy()
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            i = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise DataError(f"missing epoch time in row {i} of {source}", symbol=symbol,
                            fix="drop rows without a timestamp before importing")
        arr = np.round(arr).astype(np.int64)
    arr = arr.astype(np.int64)
    if unit is None:
        mag = np.abs(arr)
        scale = np.select([mag < 10**11, mag < 10**14, mag < 10**17], [10**9, 10**6, 10**3], 1).astype(np.int64)
    else:
        unit = {"us": "us", "µs": "us", "microseconds": "us", "milliseconds": "ms", "seconds": "s",
                "nanoseconds": "ns"}.get(unit, unit)
        if unit not in _UNIT_NS:
            raise DataError(f"unknown time_unit {unit!r}{did_you_mean(unit, _UNIT_NS)}",
                            fix="use one of 's', 'ms', 'us', 'ns' or None (detect by magnitude)")
        scale = _UNIT_NS[unit]
    ns = arr * scale
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")


def _parse_times(col: pd.Series, *, unit=None, tz="UTC", symbol=None, source="file") -> pd.DatetimeIndex:
    if unit is not None or pd.api.types.is_numeric_dtype(col):
        return epoch_to_utc(col.to_numpy(), unit, symbol=symbol, source=source)
    if col.isna().any():
        i = int(np.flatnonzero(col.isna().to_numpy())[0])
        raise DataError(f"missing timestamp in row {i} of {source}", symbol=symbol,
                        fix="drop rows without a timestamp before importing")
    try:
        if pd.api.types.is_datetime64_any_dtype(col):
            idx = pd.DatetimeIndex(col)
        else:
            idx = pd.DatetimeIndex(pd.to_datetime(col.astype(str), format="mixed"))
    except (TypeError, ValueError) as e:
        raise DataError(f"timestamps in {source} could not be parsed: {e}", symbol=symbol,
                        fix="give ISO-8601 strings (e.g. 2024-01-01 13:00:00) or epoch numbers with time_unit=") from e
    idx = idx.tz_localize(tz) if idx.tz is None else idx
    return idx.tz_convert("UTC").as_unit("ns")


# --------------------------------------------------------------------------------------------- finishing
def _finish(idx: pd.DatetimeIndex, cols: dict, *, symbol: str, source: str) -> pd.DataFrame:
    """Orient, check order/alignment/values with the foundation's rules, and build the clean frame."""
    _, kind = parse_symbol(symbol)
    df = pd.DataFrame(cols, index=idx)
    if len(idx) >= 2 and idx[0] > idx[-1]:  # the whole file is newest first: read it the other way round
        df = df.iloc[::-1]
    check_order(df.index, symbol=symbol)
    if len(df.index) >= 2:
        _check_alignment(df.index, symbol=symbol, source=source)
        check_index(df.index, max_gap=_NO_GAP_LIMIT, symbol=symbol)
    values = {c: _values(df, c, symbol) for c in df.columns}
    fund = values.get("funding_rate", np.zeros(len(df)))
    check_arrays(df.index, [symbol], *(values[f][:, None] for f in FIELDS), fund[:, None],
                 np.array([kind], dtype=np.int8))
    out = pd.DataFrame(values, index=pd.DatetimeIndex(df.index, name="timestamp"))
    out.attrs["symbol"] = symbol
    out.attrs["source"] = source
    return out


def _check_alignment(idx: pd.DatetimeIndex, *, symbol, source) -> None:
    freq = infer_freq(idx)
    if freq <= pd.Timedelta(0) or freq > MAX_FREQ or MAX_FREQ.value % freq.value:
        return  # check_index reports bar sizes outside 1 minute .. 1 day and irregular spacing
    off = np.flatnonzero(idx.asi8 % freq.value)
    if not off.size:
        return
    t = idx[off[0]]
    if freq == MAX_FREQ:
        raise DataError(
            f"daily bars in {source} are stamped at {t:%H:%M} UTC, not 00:00 UTC (a daily bar is 00:00-24:00 UTC)",
            symbol=symbol, timestamp=t,
            fix="the file's days follow another time zone or are stamped at the close; export the days in UTC, "
                "or import the intraday bars and aggregate them with MarketData.resample('1D')")
    raise DataError(
        f"{pd.tseries.frequencies.to_offset(freq).freqstr} bars in {source} are not aligned to the UTC grid "
        f"(a bar opens at {t:%H:%M:%S})", symbol=symbol, timestamp=t,
        fix="bar open times must be whole multiples of the bar size since 1970-01-01 UTC; check the time zone "
            "and whether the file stamps bars at their close")


def _read_table(path, **kw) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}", fix="check the path")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            df = pd.read_parquet(path)
            if isinstance(df.index, pd.DatetimeIndex) or df.index.name is not None:
                df = df.reset_index()
            return df
        return pd.read_csv(path, **kw)
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise DataError(f"{path} could not be read: {e}", fix="check the file format") from e


def _missing(what: str, name: str, have, source, symbol=None) -> DataError:
    return DataError(f"missing column {name!r} in {source}{did_you_mean(name, have)}", symbol=symbol,
                     fix=f"{what}; the file has columns {[str(c) for c in have]}")


# ------------------------------------------------------------------------------------- CryptoDataDownload
def _cdd_header_row(path: Path) -> int:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for i, line in enumerate(fh):
            low = line.lower()
            if "open" in low and "close" in low and "," in low:
                return i
            if i >= 5:
                break
    raise DataError(f"no header line (with 'open' and 'close') in the first lines of {path}",
                    fix="give a CryptoDataDownload CSV: a URL comment line, then unix,date,symbol,open,...")


def _base_from_pair(pair: str) -> str:
    pair = pair.strip().upper()
    if "/" in pair:
        return pair.split("/")[0]
    for sep in ("-", "_"):
        if sep in pair:
            return pair.split(sep)[0]
    for q in QUOTES:
        if pair.endswith(q) and len(pair) > len(q):
            return pair[: -len(q)]
    return pair


def read_cryptodatadownload(path, symbol=None) -> pd.DataFrame:
    """Read a CryptoDataDownload CSV (comment line, newest row first) -> clean ascending UTC OHLCV frame.

    ``symbol`` defaults to ``<BASE>-SPOT`` from the file's ``symbol`` column (``BTC/USDT`` -> ``BTC-SPOT``).
    Volume is the base-asset column (``Volume BTC``); ``unix`` seconds or milliseconds are detected per value.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}", fix="check the path")
    raw = _read_table(path, skiprows=_cdd_header_row(path))
    source = path.name
    lower = {str(c).strip().lower(): c for c in raw.columns}
    for need in ("open", "high", "low", "close"):
        if need not in lower:
            raise _missing("CryptoDataDownload files have unix,date,symbol,open,high,low,close,Volume <BASE>",
                           need, raw.columns, source, symbol)
    pairs = raw[lower["symbol"]].dropna().astype(str).str.strip().unique() if "symbol" in lower else []
    if len(pairs) > 1:
        raise DataError(f"{source} mixes several symbols: {list(pairs)[:5]}", symbol=symbol,
                        fix="give one file per instrument")
    base = _base_from_pair(pairs[0]) if len(pairs) else (parse_symbol(symbol)[0] if symbol else None)
    if symbol is None:
        if base is None:
            raise DataError(f"{source} has no symbol column", fix="pass symbol='BTC-SPOT' (or '-PERP')")
        symbol = f"{base}-SPOT"
    parse_symbol(symbol)
    vol_cols = {str(c).strip().lower()[len("volume"):].strip(): c for c in raw.columns
                if str(c).strip().lower().startswith("volume")}
    base_key = (base or parse_symbol(symbol)[0]).lower()
    if base_key in vol_cols:
        vol = vol_cols[base_key]
    elif "" in vol_cols:
        vol = vol_cols[""]
    else:
        raise _missing(f"volume is the base-asset column 'Volume {base_key.upper()}'",
                       f"Volume {base_key.upper()}", raw.columns, source, symbol)
    if "unix" in lower or "unix timestamp" in lower:
        idx = _parse_times(raw[lower.get("unix", lower.get("unix timestamp"))], symbol=symbol, source=source)
    elif "date" in lower:
        idx = _parse_times(_cdd_dates(raw[lower["date"]]), symbol=symbol, source=source)
    else:
        raise _missing("CryptoDataDownload files have a 'unix' or 'date' column", "unix", raw.columns, source,
                       symbol)
    cols = {f: raw[lower[f]].to_numpy() for f in ("open", "high", "low", "close")}
    cols["volume"] = raw[vol].to_numpy()
    return _finish(idx, cols, symbol=symbol, source=source)


def _cdd_dates(col: pd.Series) -> pd.Series:
    # Old hourly files write "2019-08-01 11-PM"; everything else is ISO-like.
    s = col.astype(str).str.strip()
    ampm = s.str.match(r"^\d{4}-\d{2}-\d{2} \d{1,2}-[AP]M$")
    if ampm.all():
        return pd.Series(pd.to_datetime(s, format="%Y-%m-%d %I-%p"))
    return s


# ------------------------------------------------------------------------------------------------ Binance
def read_binance_klines(path, symbol) -> pd.DataFrame:
    """Read a Binance kline CSV (data.binance.vision: 12 columns, no header) -> clean UTC OHLCV frame.

    ``open_time`` in milliseconds or microseconds (Binance spot files since 2025) is detected per value.
    """
    if not symbol:
        raise DataError("Binance kline files do not name the instrument", fix="pass symbol='BTC-SPOT' or 'BTC-PERP'")
    parse_symbol(symbol)
    path = Path(path)
    source = path.name
    raw = _read_table(path, header=None, dtype=str)
    if len(raw) and not _is_number(raw.iat[0, 0]):  # futures files carry a header row
        raw = raw.iloc[1:].reset_index(drop=True)
    if raw.shape[1] != len(BINANCE_KLINE_COLUMNS):
        raise DataError(f"{source} has {raw.shape[1]} columns, a Binance kline file has 12", symbol=symbol,
                        fix=f"columns must be {list(BINANCE_KLINE_COLUMNS)} (use read_ohlcv for other layouts)")
    raw.columns = list(BINANCE_KLINE_COLUMNS)
    try:  # exact integers (microsecond epochs do not fit a float64 exactly)
        times = raw["open_time"].astype("int64")
    except (TypeError, ValueError):
        times = pd.to_numeric(raw["open_time"], errors="coerce").astype("float64")
    idx = _parse_times(times, unit=None, symbol=symbol, source=source)
    cols = {f: pd.to_numeric(raw[f], errors="coerce").to_numpy() for f in FIELDS}
    for f, arr in cols.items():
        bad = np.flatnonzero(np.isnan(arr) & raw[f].notna().to_numpy())
        if bad.size:
            raise DataError(f"column {f!r} is not numeric ({raw[f].iat[bad[0]]!r})", symbol=symbol,
                            timestamp=idx[bad[0]], fix="remove text values from the price/volume columns")
    return _finish(idx, cols, symbol=symbol, source=source)


def _is_number(x) -> bool:
    try:
        float(x)
        return True
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------ generic
def read_ohlcv(path, *, columns: dict | None = None, symbol=None, time_unit=None, tz="UTC") -> pd.DataFrame:
    """Read a generic OHLCV CSV or Parquet file with a column mapping -> clean UTC OHLCV frame.

    ``columns`` maps the file's names to ours: ``timestamp, open, high, low, close, volume`` (required),
    ``funding_rate`` (optional, perps: the rate at its settlement bar, 0 elsewhere) and ``symbol`` (optional,
    one value per file). Columns already named like ours need no entry. ``time_unit`` (s/ms/us/ns) reads
    numeric times as epochs; ``None`` detects by magnitude, strings are parsed as ISO dates. Times without a
    zone are in ``tz`` (UTC by default) and converted to UTC; bars are never shifted.
    """
    path = Path(path)
    source = path.name
    raw = _read_table(path)
    have = [str(c) for c in raw.columns]
    raw.columns = have
    columns = dict(columns or {})
    for src, dst in columns.items():
        if str(src) not in have:
            raise DataError(f"column {src!r} (mapped to {dst!r}) is not in {source}{did_you_mean(src, have)}",
                            symbol=symbol, fix=f"the file has columns {have}")
        if dst not in TARGETS:
            raise DataError(f"unknown target column {dst!r} for {src!r}{did_you_mean(dst, TARGETS)}",
                            symbol=symbol, fix=f"map onto {list(TARGETS)}")
    targets = {dst: src for src, dst in columns.items()}
    if len(targets) != len(columns):
        dup = pd.Series(list(columns.values())).duplicated()
        raise DataError(f"two columns mapped to {list(columns.values())[int(np.flatnonzero(dup)[0])]!r}",
                        symbol=symbol, fix="map each of our columns from one of yours")
    for t in TARGETS:
        if t not in targets and t in have and t not in columns:
            targets[t] = t
    if "symbol" in targets:
        names = raw[targets["symbol"]].dropna().astype(str).unique()
        if len(names) > 1:
            raise DataError(f"{source} holds several symbols {list(names)[:5]}", symbol=symbol,
                            fix="give one file per instrument, or use from_csv for long-format files")
        if symbol is None and len(names):
            symbol = str(names[0])
    if symbol is None:
        raise DataError(f"{source} does not name its instrument", fix="pass symbol='BTC-SPOT' (or '-PERP')")
    parse_symbol(symbol)
    for t in ("timestamp",) + FIELDS:
        if t not in targets:
            unmapped = [c for c in have if c not in columns]
            raise DataError(f"no column for {t!r} in {source}{did_you_mean(t, unmapped)}", symbol=symbol,
                            fix=f"add it to columns=, e.g. columns={{'<your name>': {t!r}}}; "
                                f"the file has columns {have}")
    idx = _parse_times(raw[targets["timestamp"]], unit=time_unit, tz=tz, symbol=symbol, source=source)
    cols = {f: raw[targets[f]].to_numpy() for f in FIELDS}
    if "funding_rate" in targets:
        cols["funding_rate"] = raw[targets["funding_rate"]].to_numpy()
    return _finish(idx, cols, symbol=symbol, source=source)


# -------------------------------------------------------------------------------------------- convenience
FORMATS = {"cryptodatadownload": "cryptodatadownload", "cdd": "cryptodatadownload", "binance": "binance",
           "binance_klines": "binance", "ohlcv": "ohlcv", "generic": "ohlcv"}


def import_files(mapping: dict, fmt: str = "ohlcv", *, columns: dict | None = None, time_unit=None, tz="UTC",
                 freq=None, max_gap=None) -> MarketData:
    """``{"BTC-SPOT": path, ...}`` in one format -> validated `MarketData` (see :func:`from_frames`).

    ``fmt`` is ``"cryptodatadownload"`` (``"cdd"``), ``"binance"`` or ``"ohlcv"`` (``"generic"``, which takes
    ``columns``, ``time_unit`` and ``tz``). ``freq``/``max_gap`` go to :func:`from_frames`: gaps beyond
    ``max_gap`` (default: none) raise `DataError`; see them first with ``quality_report``.
    """
    kind = FORMATS.get(str(fmt).lower())
    if kind is None:
        raise DataError(f"unknown format {fmt!r}{did_you_mean(fmt, FORMATS)}",
                        fix="use 'cryptodatadownload', 'binance' or 'ohlcv'")
    if not mapping:
        raise DataError("no files given", fix="pass {'BTC-SPOT': 'path/to/file.csv', ...}")
    frames = {}
    for sym, path in mapping.items():
        if kind == "cryptodatadownload":
            frames[sym] = read_cryptodatadownload(path, symbol=sym)
        elif kind == "binance":
            frames[sym] = read_binance_klines(path, sym)
        else:
            frames[sym] = read_ohlcv(path, columns=columns, symbol=sym, time_unit=time_unit, tz=tz)
        if "funding_rate" in frames[sym] and parse_symbol(sym)[1] != PERP:
            frames[sym] = frames[sym].drop(columns="funding_rate")
    return from_frames(frames, freq=freq, max_gap=max_gap)
