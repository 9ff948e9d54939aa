"""Importers: CryptoDataDownload, Binance klines and generic OHLCV files -> clean UTC frames."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eternal_engine.data import from_frames
from eternal_engine.data.importers import (epoch_to_utc, import_files, read_binance_klines,
                                           read_cryptodatadownload, read_ohlcv)
from eternal_engine.errors import DataError

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
GENERIC_COLUMNS = {"Time (UTC)": "timestamp", "Opening Px": "open", "Hi": "high", "Lo": "low", "Last": "close",
                   "Base Qty": "volume", "Funding": "funding_rate"}
UTC = "UTC"


def ts(s):
    return pd.Timestamp(s, tz=UTC)


def assert_clean(df, n):
    assert len(df) == n
    assert list(df.columns[:5]) == ["open", "high", "low", "close", "volume"]
    assert str(df.index.tz) == UTC and df.index.name == "timestamp"
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert all(df[c].dtype == np.float64 for c in df.columns)


def expected(df):
    return df.set_axis(df.index.as_unit("ns").rename("timestamp"))


def row(df, i):
    return df.iloc[i][["open", "high", "low", "close", "volume"]].tolist()


# --------------------------------------------------------------------------------------- example files
def test_cryptodatadownload_example_newest_first_with_comment_line():
    path = EXAMPLES / "cryptodatadownload_BTCUSDT_1h.csv"
    first_lines = path.read_text().splitlines()[:3]
    assert first_lines[0].startswith("https://") and first_lines[2].startswith("1709427600000")  # newest first
    df = read_cryptodatadownload(path)
    assert_clean(df, 50)
    assert df.attrs["symbol"] == "BTC-SPOT"
    assert df.index[0] == ts("2024-03-01 00:00") and df.index[-1] == ts("2024-03-03 01:00")
    assert row(df, 0) == [62000.00, 62091.67, 61973.26, 62042.87, 20.6802]  # base-asset volume (Volume BTC)
    assert row(df, -1) == [61666.71, 61817.26, 61606.88, 61776.72, 28.5405]
    assert (np.diff(df.index.asi8) == 3600 * 10**9).all()


def test_binance_example_milliseconds():
    df = read_binance_klines(EXAMPLES / "binance_BTCUSDT-1m.csv", "BTC-SPOT")
    assert_clean(df, 60)
    assert df.index[0] == ts("2024-03-01 00:00") and df.index[-1] == ts("2024-03-01 00:59")
    assert row(df, 0) == [62000.0, 62034.10, 61994.66, 62023.45, 37.108]
    assert row(df, -1) == [62690.70, 62728.81, 62537.44, 62594.09, 21.7979]


def test_binance_example_microseconds():
    path = EXAMPLES / "binance_ETHUSDT-1m_us.csv"
    assert path.read_text().startswith("1735689600000000,")  # 16 digits: microseconds
    df = read_binance_klines(path, "ETH-SPOT")
    assert_clean(df, 60)
    assert df.index[0] == ts("2025-01-01 00:00") and df.index[-1] == ts("2025-01-01 00:59")
    assert row(df, 0) == [3300.0, 3315.96, 3297.22, 3313.5, 8.8386]
    assert row(df, -1) == [3291.47, 3297.84, 3289.77, 3294.71, 44.7351]


def test_generic_example_with_column_mapping_and_funding_at_settlements():
    df = read_ohlcv(EXAMPLES / "generic_ohlcv.csv", columns=GENERIC_COLUMNS, symbol="BTC-PERP")
    assert_clean(df, 48)
    assert df.index[0] == ts("2024-03-01 00:00") and df.index[-1] == ts("2024-03-02 23:00")
    assert row(df, 0) == [62000.00, 62045.85, 61861.27, 61919.23, 35.5792]
    assert row(df, -1) == [61252.20, 61289.24, 61174.82, 61236.05, 13.6207]
    settle = df.index[df["funding_rate"] != 0]
    assert list(settle.hour) == [0, 8, 16] * 2 and (df.loc[settle, "funding_rate"] == 0.0001).all()


def test_import_files_builds_market_data():
    m = import_files({"BTC-SPOT": EXAMPLES / "cryptodatadownload_BTCUSDT_1h.csv"}, fmt="cryptodatadownload")
    assert m.symbols == ("BTC-SPOT",) and len(m) == 50 and m.freq == pd.Timedelta("1h")
    m = import_files({"BTC-PERP": EXAMPLES / "generic_ohlcv.csv"}, columns=GENERIC_COLUMNS)
    assert m.funding["BTC-PERP"].sum() == pytest.approx(0.0006)
    m = import_files({"BTC-SPOT": EXAMPLES / "binance_BTCUSDT-1m.csv"}, fmt="binance")
    assert len(m) == 60
    with pytest.raises(DataError, match="did you mean 'binance'"):
        import_files({"BTC-SPOT": EXAMPLES / "binance_BTCUSDT-1m.csv"}, fmt="binanse")


def test_example_readme_documents_every_file():
    text = (EXAMPLES / "README.md").read_text()
    for f in EXAMPLES.glob("*.csv"):
        assert f.name in text


# --------------------------------------------------------------------------------- writers for tests
def hourly(n=72, start="2024-01-01", seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n, freq="1h", tz=UTC)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.r_[100.0, close[:-1]]
    high = np.round(np.maximum(open_, close) + 0.5, 2)
    low = np.round(np.minimum(open_, close) - 0.5, 2)
    vol = np.round(rng.uniform(1, 9, n), 3)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": vol}, index=idx)


def write_cdd(path, df, unit="s", pair="BTC/USDT", newest_first=True):
    div = {"s": 10**9, "ms": 10**6}
    base, quote = pair.split("/")
    lines = ["https://www.CryptoDataDownload.com", f"unix,date,symbol,open,high,low,close,Volume {base},Volume {quote}"]
    rows = df.iloc[::-1] if newest_first else df
    for t, r in rows.iterrows():
        u = t.value // div[unit] if isinstance(unit, str) else t.value // div[unit(t)]
        lines.append(f"{u},{t:%Y-%m-%d %H:%M:%S},{pair},{r.open},{r.high},{r.low},{r.close},{r.volume},"
                     f"{r.volume * r.close:.2f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_binance(path, df, unit="ms", header=False):
    div = {"ms": 10**6, "us": 10**3}[unit]
    lines = ["open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
             "taker_buy_quote_volume,ignore"] if header else []
    for t, r in df.iterrows():
        lines.append(f"{t.value // div},{r.open},{r.high},{r.low},{r.close},{r.volume},{t.value // div + 1},"
                     f"0,1,0,0,0")
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------------ behaviour
def test_epoch_units_detected_by_magnitude():
    t = ts("2024-05-06 07:08:09")
    s = t.value // 10**9
    out = epoch_to_utc(np.array([s, s * 10**3, s * 10**6, s * 10**9]))
    assert (out == t).all() and str(out.tz) == UTC
    assert epoch_to_utc([s * 1000], unit="ms")[0] == t
    with pytest.raises(DataError, match="did you mean 'ms'"):
        epoch_to_utc([s], unit="mss")


def test_cryptodatadownload_mixed_seconds_and_milliseconds(tmp_path):
    df = hourly(48)
    cut = df.index[24]
    path = write_cdd(tmp_path / "mixed.csv", df, unit=lambda t: "ms" if t >= cut else "s")
    out = read_cryptodatadownload(path)
    assert out.index.equals(expected(df).index)
    pd.testing.assert_frame_equal(out, expected(df), check_freq=False)


def test_cryptodatadownload_oldest_first_and_explicit_symbol(tmp_path):
    df = hourly(10)
    out = read_cryptodatadownload(write_cdd(tmp_path / "a.csv", df, newest_first=False, pair="ETH/USDT"),
                                  symbol="ETH-PERP")
    assert out.attrs["symbol"] == "ETH-PERP" and out.index[0] == df.index[0]


def test_cryptodatadownload_date_column_only(tmp_path):
    df = hourly(6)
    p = write_cdd(tmp_path / "a.csv", df)
    text = p.read_text().splitlines()
    text[1] = text[1].replace("unix,", "skip,")
    p.write_text("\n".join([text[0], text[1].replace("skip,", "", 1)] +
                           [line.split(",", 1)[1] for line in text[2:]]) + "\n")
    out = read_cryptodatadownload(p)
    assert out.index[0] == df.index[0] and len(out) == 6


def test_binance_header_row_is_skipped(tmp_path):
    df = hourly(5)
    out = read_binance_klines(write_binance(tmp_path / "k.csv", df, header=True), "BTC-PERP")
    assert out.index.equals(expected(df).index)


def test_resampling_to_daily_is_identical_across_importers(tmp_path):
    df = hourly(72, start="2024-01-01 00:00")
    cdd = read_cryptodatadownload(write_cdd(tmp_path / "cdd.csv", df, unit="s"), symbol="BTC-SPOT")
    bn = read_binance_klines(write_binance(tmp_path / "bn.csv", df, unit="us"), "BTC-SPOT")
    # the same bars written as Tokyo local time: converted to UTC, never shifted
    local = df.copy()
    local.index = local.index.tz_convert("Asia/Tokyo").tz_localize(None)
    local.rename_axis("When").reset_index().to_csv(tmp_path / "g.csv", index=False)
    gen = read_ohlcv(tmp_path / "g.csv", columns={"When": "timestamp"}, symbol="BTC-SPOT", tz="Asia/Tokyo")
    days = [from_frames({"BTC-SPOT": f}).resample("1D") for f in (cdd, bn, gen)]
    assert days[0] == days[1] == days[2]
    d = days[0]
    assert list(d.index) == [ts("2024-01-01"), ts("2024-01-02"), ts("2024-01-03")]
    day2 = df.loc["2024-01-02"]
    assert d.ohlcv("BTC-SPOT").iloc[1].tolist() == pytest.approx(
        [day2.open.iloc[0], day2.high.max(), day2.low.min(), day2.close.iloc[-1], day2.volume.sum()])


def test_generic_parquet_with_datetime_index_and_epoch_column(tmp_path):
    df = hourly(6)
    df.rename_axis("timestamp").to_parquet(tmp_path / "a.parquet")
    out = read_ohlcv(tmp_path / "a.parquet", symbol="BTC-SPOT")
    pd.testing.assert_frame_equal(out, expected(df), check_freq=False)
    e = df.assign(t=df.index.as_unit("s").asi8).reset_index(drop=True)
    e.to_csv(tmp_path / "e.csv", index=False)
    out = read_ohlcv(tmp_path / "e.csv", columns={"t": "timestamp"}, symbol="BTC-SPOT", time_unit="s")
    assert out.index.equals(expected(df).index)


def test_generic_newest_first_and_symbol_column(tmp_path):
    df = hourly(6).iloc[::-1].rename_axis("timestamp").reset_index()
    df["ticker"] = "SOL-PERP"
    df.to_csv(tmp_path / "a.csv", index=False)
    out = read_ohlcv(tmp_path / "a.csv", columns={"ticker": "symbol"})
    assert out.attrs["symbol"] == "SOL-PERP" and out.index.is_monotonic_increasing


# ------------------------------------------------------------------------------------------- DataError
def test_duplicate_timestamp_raises(tmp_path):
    df = hourly(10)
    dup = pd.concat([df.iloc[:5], df.iloc[4:]])
    with pytest.raises(DataError, match="duplicate timestamp") as e:
        read_cryptodatadownload(write_cdd(tmp_path / "a.csv", dup))
    assert e.value.symbol == "BTC-SPOT" and e.value.timestamp == df.index[4] and e.value.fix
    with pytest.raises(DataError, match="duplicate timestamp"):
        read_binance_klines(write_binance(tmp_path / "b.csv", dup), "BTC-SPOT")


def test_unsorted_rows_raise(tmp_path):
    df = hourly(10)
    swapped = df.iloc[[0, 1, 2, 4, 3, 5, 6, 7, 8, 9]]
    with pytest.raises(DataError, match="not sorted") as e:
        read_binance_klines(write_binance(tmp_path / "b.csv", swapped), "BTC-SPOT")
    assert e.value.timestamp == df.index[3] and "sort" in e.value.fix
    with pytest.raises(DataError, match="not sorted"):  # newest first, but one pair of rows out of place
        read_cryptodatadownload(write_cdd(tmp_path / "a.csv", swapped))


def test_misaligned_daily_stamps_raise_instead_of_shifting(tmp_path):
    idx = pd.date_range("2024-01-01 04:00", periods=5, freq="1D")
    df = pd.DataFrame({"Date": idx.strftime("%Y-%m-%d %H:%M"), "open": 10.0, "high": 11.0, "low": 9.0,
                       "close": 10.5, "volume": 1.0})
    df.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="stamped at 04:00 UTC, not 00:00 UTC") as e:
        read_ohlcv(tmp_path / "d.csv", columns={"Date": "timestamp"}, symbol="BTC-SPOT")
    assert e.value.timestamp == ts("2024-01-01 04:00") and "resample" in e.value.fix
    # midnight New York is not midnight UTC: the day boundaries differ, so this is refused too
    df["Date"] = pd.date_range("2024-01-01", periods=5, freq="1D").strftime("%Y-%m-%d")
    df.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="not 00:00 UTC"):
        read_ohlcv(tmp_path / "d.csv", columns={"Date": "timestamp"}, symbol="BTC-SPOT", tz="America/New_York")
    assert len(read_ohlcv(tmp_path / "d.csv", columns={"Date": "timestamp"}, symbol="BTC-SPOT")) == 5


def test_misaligned_intraday_bars_raise(tmp_path):
    df = hourly(5)
    df.index = df.index + pd.Timedelta("30min")
    with pytest.raises(DataError, match="not aligned"):
        read_binance_klines(write_binance(tmp_path / "b.csv", df), "BTC-SPOT")


def test_missing_columns_suggest_the_right_name(tmp_path):
    df = hourly(4).rename(columns={"close": "Close"}).rename_axis("Time").reset_index()
    df.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match="no column for 'close'.*did you mean 'Close'"):
        read_ohlcv(tmp_path / "a.csv", columns={"Time": "timestamp"}, symbol="BTC-SPOT")
    with pytest.raises(DataError, match="'Tim'.*did you mean 'Time'"):
        read_ohlcv(tmp_path / "a.csv", columns={"Tim": "timestamp", "Close": "close"}, symbol="BTC-SPOT")
    with pytest.raises(DataError, match="unknown target column 'clsoe'.*did you mean 'close'"):
        read_ohlcv(tmp_path / "a.csv", columns={"Time": "timestamp", "Close": "clsoe"}, symbol="BTC-SPOT")
    p = write_cdd(tmp_path / "c.csv", hourly(4))
    p.write_text(p.read_text().replace("Volume BTC", "Volume BTX"))
    with pytest.raises(DataError, match="missing column 'Volume BTC'.*did you mean 'Volume BTX'"):
        read_cryptodatadownload(p)


@pytest.mark.parametrize("col, value, problem", [
    ("close", np.nan, "NaN"),
    ("low", 0.0, "non-positive low"),
    ("high", 1.0, "high < low"),
    ("volume", -1.0, "negative volume"),
])
def test_bad_rows_fail_early(tmp_path, col, value, problem):
    df = hourly(8)
    df.loc[df.index[5], col] = value
    with pytest.raises(DataError, match=problem) as e:
        read_binance_klines(write_binance(tmp_path / "b.csv", df), "BTC-SPOT")
    assert e.value.timestamp == df.index[5] and e.value.symbol == "BTC-SPOT"


def test_binance_needs_a_symbol_with_kind_and_twelve_columns(tmp_path):
    p = write_binance(tmp_path / "b.csv", hourly(4))
    with pytest.raises(DataError, match="no kind suffix"):
        read_binance_klines(p, "BTCUSDT")
    p.write_text("\n".join(line.rsplit(",", 1)[0] for line in p.read_text().splitlines()) + "\n")
    with pytest.raises(DataError, match="has 11 columns"):
        read_binance_klines(p, "BTC-SPOT")
    with pytest.raises(DataError, match="file not found"):
        read_binance_klines(tmp_path / "nope.csv", "BTC-SPOT")


def test_funding_on_a_spot_symbol_is_refused(tmp_path):
    with pytest.raises(DataError, match="funding rate given for a spot"):
        read_ohlcv(EXAMPLES / "generic_ohlcv.csv", columns=GENERIC_COLUMNS, symbol="BTC-SPOT")
