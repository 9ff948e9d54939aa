"""Data-quality report for raw bar frames (before loading) and for `MarketData` (after).

:func:`quality_report` **reports** what is real but worth knowing, per symbol:

* gaps: missing bars, e.g. exchange maintenance windows. They are never hidden or filled; ``MarketData``
  still rejects gaps beyond ``max_gap`` when you load, the report shows them first so you can decide;
* runs of zero-volume bars (a halted or dead market prints flat bars with no volume);
* changes of the funding interval, read from the settlement timestamps (bars with a non-zero
  ``funding_rate``): Bybit moved some perps from 8h to 4h or 1h settlements.

What cannot be used raises the foundation's `DataError` (see :mod:`eternal_engine.data.validate`):
duplicate or out-of-order timestamps, and, when a frame has all of open/high/low/close/volume, NaN,
non-positive prices, high < low, a close outside [low, high] and negative volume.

Funding intervals can only be seen when bars are finer than the interval (with 8h bars an 8h interval
looks like "every bar"). A change is reported once the new spacing holds for ``funding_confirm``
consecutive settlements (default 2), so one skipped or zero-rate settlement is not taken for a change; its
timestamp is the first settlement at the new spacing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from eternal_engine.data.market import FIELDS, PERP, SPOT, MarketData, parse_symbol
from eternal_engine.data.validate import check_arrays, check_order, infer_freq, to_utc_index
from eternal_engine.errors import DataError

__all__ = ["QualityReport", "quality_report"]

SUMMARY_COLUMNS = ["bars", "freq", "first", "last", "n_gaps", "missing_bars", "largest_gap", "zero_volume_runs",
                   "longest_zero_volume_run", "funding_interval", "funding_interval_changes"]
GAP_COLUMNS = ["symbol", "start", "end", "duration", "missing_bars"]


@dataclass
class QualityReport:
    """Result of :func:`quality_report`.

    ``summary``: one row per symbol (index ``symbol``) with ``bars, freq, first, last, n_gaps, missing_bars,
    largest_gap, zero_volume_runs, longest_zero_volume_run, funding_interval, funding_interval_changes``
    (a list of ``(timestamp, old_interval, new_interval)``).
    ``gaps``: one row per gap: ``symbol, start, end, duration, missing_bars``; the bars opening in
    ``[start, end)`` are missing (``end`` is the open of the next bar present).
    """

    summary: pd.DataFrame
    gaps: pd.DataFrame
    zero_volume_min: int = 3
    zero_volume: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["symbol", "start", "bars"]))

    @property
    def ok(self) -> bool:
        """No gaps, no zero-volume runs and no funding-interval changes."""
        s = self.summary
        return bool((s["n_gaps"] == 0).all() and (s["zero_volume_runs"] == 0).all()
                    and all(len(c) == 0 for c in s["funding_interval_changes"]))

    def __str__(self) -> str:
        lines = [f"Data quality: {len(self.summary)} symbol(s)"]
        for sym, r in self.summary.iterrows():
            freq = _fmt_td(r["freq"]) if pd.notna(r["freq"]) else "?"
            lines.append(f"{sym}: {r['bars']} bars of {freq}, {_fmt_ts(r['first'])} .. {_fmt_ts(r['last'])} UTC")
            if r["n_gaps"]:
                lines.append(f"  gaps: {r['n_gaps']} ({r['missing_bars']} missing bars, largest "
                             f"{_fmt_td(r['largest_gap'])})")
                g = self.gaps[self.gaps["symbol"] == sym]
                for _, row in g.head(10).iterrows():
                    lines.append(f"    {_fmt_ts(row['start'])} .. {_fmt_ts(row['end'])}  "
                                 f"({row['missing_bars']} bars, {_fmt_td(row['duration'])})")
                if len(g) > 10:
                    lines.append(f"    ... {len(g) - 10} more (see .gaps)")
            else:
                lines.append("  gaps: none")
            if r["zero_volume_runs"]:
                lines.append(f"  zero-volume runs (>= {self.zero_volume_min} bars): {r['zero_volume_runs']}, "
                             f"longest {r['longest_zero_volume_run']} bars")
            if pd.notna(r["funding_interval"]) and not r["funding_interval_changes"]:
                lines.append(f"  funding interval: {_fmt_td(r['funding_interval'])}")
            for t, old, new in r["funding_interval_changes"]:
                lines.append(f"  funding interval {_fmt_td(old)} -> {_fmt_td(new)} from {_fmt_ts(t)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:  # notebooks
        return "<pre>" + str(self) + "</pre>"


def quality_report(data, *, expected_freq=None, zero_volume_min: int = 3, funding_confirm: int = 2,
                   symbol: str | None = None) -> QualityReport:
    """Report gaps, zero-volume runs and funding-interval changes of ``data``.

    ``data`` is a `MarketData`, a ``{symbol: DataFrame}`` dict, one per-symbol DataFrame (DatetimeIndex or a
    ``timestamp`` column; name it with ``symbol=`` or ``df.attrs["symbol"]``, as the importers set it) or a
    long-format frame with ``timestamp`` and ``symbol`` columns. ``expected_freq`` is the bar size gaps are
    measured against (default: the most common spacing per symbol). A zero-volume run counts when it lasts at
    least ``zero_volume_min`` consecutive bars.
    """
    if zero_volume_min < 1:
        raise DataError(f"zero_volume_min={zero_volume_min} must be >= 1", fix="pass a positive bar count")
    freq = None if expected_freq is None else pd.Timedelta(pd.tseries.frequencies.to_offset(expected_freq))
    rows, gaps, zeros = {}, [], []
    for sym, idx, volume, funding in _series(data, symbol):
        f = freq if freq is not None else (infer_freq(idx) if len(idx) >= 2 else pd.NaT)
        sym_gaps = _gaps(sym, idx, f)
        runs = _zero_runs(idx, volume, zero_volume_min)
        interval, changes = _funding_changes(idx, funding, funding_confirm)
        gaps.extend(sym_gaps)
        zeros.extend({"symbol": sym, "start": s, "bars": n} for s, n in runs)
        rows[sym] = {
            "bars": len(idx), "freq": f,
            "first": idx[0] if len(idx) else pd.NaT, "last": idx[-1] if len(idx) else pd.NaT,
            "n_gaps": len(sym_gaps), "missing_bars": int(sum(g["missing_bars"] for g in sym_gaps)),
            "largest_gap": max((g["duration"] for g in sym_gaps), default=pd.Timedelta(0)),
            "zero_volume_runs": len(runs) if volume is not None else 0,
            "longest_zero_volume_run": _longest_zero_run(volume),
            "funding_interval": interval, "funding_interval_changes": changes,
        }
    summary = pd.DataFrame.from_dict(rows, orient="index", columns=SUMMARY_COLUMNS)
    summary.index.name = "symbol"
    gap_df = pd.DataFrame(gaps, columns=GAP_COLUMNS)
    zero_df = pd.DataFrame(zeros, columns=["symbol", "start", "bars"])
    return QualityReport(summary, gap_df, zero_volume_min, zero_df)


# ----------------------------------------------------------------------------------------------- inputs
def _series(data, symbol):
    """Yield ``(symbol, utc_index, volume or None, funding or None)`` per instrument, checking raw frames."""
    if isinstance(data, MarketData):
        a = data.arrays
        for j, sym in enumerate(data.symbols):
            yield sym, data.index, a.volume[:, j], (a.funding[:, j] if a.kind[j] == PERP else None)
        return
    if isinstance(data, pd.DataFrame):
        if "symbol" in data.columns and "timestamp" in data.columns:
            ts = data["timestamp"]
            if pd.api.types.is_integer_dtype(ts):
                ts = pd.to_datetime(ts, unit="ms", utc=True)
            data = {str(s): data[data["symbol"] == s].drop(columns="symbol").set_axis(ts[data["symbol"] == s])
                    .drop(columns="timestamp") for s in pd.unique(data["symbol"])}
        else:
            data = {symbol or data.attrs.get("symbol") or "data": data}
    if not isinstance(data, dict) or not data:
        raise DataError(f"cannot report on {type(data).__name__}",
                        fix="pass MarketData, a DataFrame or {symbol: DataFrame}")
    for sym, df in data.items():
        yield _check_frame(str(sym), df)


def _check_frame(sym, df):
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"expected a DataFrame, got {type(df).__name__}", symbol=sym)
    if "timestamp" in df.columns and not isinstance(df.index, pd.DatetimeIndex):
        df = df.set_index("timestamp")
    idx = to_utc_index(df.index, symbol=sym)
    check_order(idx, symbol=sym)
    cols = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
            for c in (*FIELDS, "funding_rate") if c in df.columns}
    funding = cols.get("funding_rate")
    if all(f in cols for f in FIELDS):
        try:
            kind = parse_symbol(sym)[1]
        except DataError:
            kind = PERP if funding is not None else SPOT
        fund = funding if funding is not None else np.zeros(len(idx))
        check_arrays(idx, [sym], *(cols[f][:, None] for f in FIELDS), fund[:, None],
                     np.array([kind], dtype=np.int8))
    elif funding is not None and not np.isfinite(funding).all():
        i = int(np.flatnonzero(~np.isfinite(funding))[0])
        raise DataError("funding has NaN or infinite values", symbol=sym, timestamp=idx[i],
                        fix="use 0.0 at bars without a settlement")
    return sym, idx, cols.get("volume"), funding


# --------------------------------------------------------------------------------------------- measures
def _gaps(sym, idx, freq) -> list[dict]:
    if len(idx) < 2 or pd.isna(freq):
        return []
    step = freq.value
    d = np.diff(idx.asi8)
    out = []
    for i in np.flatnonzero(d > step):
        start = idx[i] + freq
        end = idx[i + 1]
        out.append({"symbol": sym, "start": start, "end": end, "duration": end - start,
                    "missing_bars": int(-(-int(d[i]) // step)) - 1})
    return out


def _run_bounds(mask):
    """Start positions and lengths of the runs of True in ``mask``."""
    m = np.r_[False, np.asarray(mask, dtype=bool), False].astype(np.int8)
    edges = np.diff(m)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return starts, ends - starts


def _zero_runs(idx, volume, min_len):
    if volume is None:
        return []
    starts, lengths = _run_bounds(volume == 0)
    keep = lengths >= min_len
    return [(idx[s], int(n)) for s, n in zip(starts[keep], lengths[keep])]


def _longest_zero_run(volume) -> int:
    if volume is None:
        return 0
    _, lengths = _run_bounds(volume == 0)
    return int(lengths.max()) if lengths.size else 0


def _funding_changes(idx, funding, confirm):
    """Established funding interval at the end and the list of ``(timestamp, old, new)`` changes."""
    if funding is None:
        return pd.NaT, []
    settle = idx[np.flatnonzero(np.isfinite(funding) & (funding != 0))]
    if len(settle) < 2:
        return pd.NaT, []
    d = np.diff(settle.asi8)
    # runs of equal spacing: a run starts where the spacing changes
    change = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
    lengths = np.diff(np.r_[change, len(d)])
    current, changes = None, []
    for k0, n in zip(change, lengths):
        if n < max(confirm, 1):
            continue
        v = int(d[k0])
        if current is None:
            current = v
        elif v != current:
            changes.append((settle[k0 + 1], pd.Timedelta(current), pd.Timedelta(v)))
            current = v
    return (pd.Timedelta(current) if current is not None else pd.NaT), changes


def _fmt_ts(t) -> str:
    if pd.isna(t):
        return "-"
    return f"{t:%Y-%m-%d %H:%M}"


def _fmt_td(td) -> str:
    if pd.isna(td):
        return "?"
    ns = pd.Timedelta(td).value
    for unit, size in (("D", 86_400 * 10**9), ("h", 3_600 * 10**9), ("min", 60 * 10**9), ("s", 10**9)):
        if ns and ns % size == 0:
            return f"{ns // size}{unit}"
    return str(pd.Timedelta(td))
