"""MarketData validation, loaders and resampling."""
import numpy as np
import pandas as pd
import pytest

from eternal_engine.data import MarketData, from_csv, from_frames, from_parquet
from eternal_engine.errors import DataError


def frame(n=6, start="2024-01-01", freq="1h", base=100.0, funding=False):
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    close = base + np.arange(n, dtype=float)
    df = pd.DataFrame({"open": close - 0.5, "high": close + 1, "low": close - 1, "close": close,
                       "volume": np.full(n, 10.0)}, index=idx)
    if funding:
        df["funding_rate"] = np.where(idx.hour % 8 == 0, 0.0001, 0.0)
    return df


def two_symbols(**kw):
    return {"BTC-SPOT": frame(**kw), "BTC-PERP": frame(funding=True, **kw)}


def test_from_frames_aligns_symbols_and_kinds():
    m = from_frames(two_symbols())
    assert m.symbols == ("BTC-SPOT", "BTC-PERP")
    assert m.kinds == ("spot", "perp") and m.perps == ("BTC-PERP",)
    assert m.freq == pd.Timedelta("1h")
    assert str(m.index.tz) == "UTC"
    assert m.arrays.close.flags.c_contiguous and m.arrays.close.shape == (6, 2)
    assert m.funding["BTC-PERP"].tolist() == [0.0001, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("mutate, problem", [
    (lambda d: d.iloc[[0, 2, 1, 3, 4, 5]], "not sorted"),
    (lambda d: d.iloc[[0, 1, 1, 2, 3, 4]], "duplicate timestamp"),
    (lambda d: d.assign(close=d["close"].where(d.index != d.index[3], np.nan)), "NaN"),
    (lambda d: d.assign(volume=d["volume"].where(d.index != d.index[3], np.inf)), "infinite"),
    (lambda d: d.assign(low=d["low"].where(d.index != d.index[3], -1.0)), "non-positive low"),
    (lambda d: d.assign(high=d["high"].where(d.index != d.index[3], 50.0)), "high < low"),
    (lambda d: d.assign(close=d["close"].where(d.index != d.index[3], 1e4),
                        high=d["high"].where(d.index != d.index[3], 200.0)), "close outside"),
    (lambda d: d.drop(d.index[3]), "gap of 0 days 02:00:00"),
])
def test_bad_data_raises_naming_symbol_timestamp_and_fix(mutate, problem):
    frames = two_symbols()
    bad = mutate(frames["BTC-PERP"])
    frames["BTC-PERP"] = bad
    frames["BTC-SPOT"] = mutate(frames["BTC-SPOT"]) if problem.startswith(("not", "dup", "gap")) else frames["BTC-SPOT"]
    with pytest.raises(DataError, match=problem) as e:
        from_frames(frames)
    err = e.value
    assert err.symbol in ("BTC-PERP", "BTC-SPOT") and err.fix
    assert err.timestamp is not None and "Fix:" in str(err)


def test_first_offending_timestamp_is_reported():
    df = frame(n=10)
    df.loc[df.index[7], "close"] = np.nan
    df.loc[df.index[4], "close"] = np.nan
    with pytest.raises(DataError) as e:
        from_frames({"ETH-PERP": df})
    assert e.value.timestamp == df.index[4] and e.value.symbol == "ETH-PERP"


def test_gap_within_tolerance_is_accepted_when_asked():
    df = frame(n=6).drop(pd.date_range("2024-01-01 02:00", periods=1, freq="1h", tz="UTC"))
    with pytest.raises(DataError, match="max_gap"):
        from_frames({"BTC-SPOT": df})
    m = from_frames({"BTC-SPOT": df}, max_gap="2h", freq="1h")
    assert len(m) == 5


def test_mismatched_calendars_name_the_first_differing_bar():
    frames = {"BTC-SPOT": frame(n=6), "ETH-SPOT": frame(n=6, start="2024-01-01 01:00")}
    with pytest.raises(DataError, match="calendars differ") as e:
        from_frames(frames)
    assert e.value.timestamp == pd.Timestamp("2024-01-01 00:00", tz="UTC")


def test_funding_on_spot_and_unknown_columns_are_rejected():
    with pytest.raises(DataError, match="spot"):
        from_frames({"BTC-SPOT": frame(funding=True)})
    with pytest.raises(DataError, match="did you mean 'volume'"):
        from_frames({"BTC-SPOT": frame().rename(columns={"volume": "volumes"})})
    with pytest.raises(DataError, match="kind suffix"):
        from_frames({"BTCUSDT": frame()})


def test_bar_size_outside_one_minute_to_one_day_is_rejected():
    with pytest.raises(DataError, match="outside 1 minute"):
        from_frames({"BTC-SPOT": frame(n=4, freq="7D")})
    with pytest.raises(DataError, match="outside 1 minute"):
        from_frames({"BTC-SPOT": frame(n=4, freq="30s")})


def test_naive_timestamps_are_read_as_utc_and_other_zones_converted():
    naive = frame().tz_localize(None)
    assert from_frames({"BTC-SPOT": naive}).index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    tokyo = frame().tz_convert("Asia/Tokyo")
    assert from_frames({"BTC-SPOT": tokyo}).index.equals(frame().index)


def test_csv_and_parquet_round_trip(tmp_path):
    m = from_frames(two_symbols(n=48))
    m.to_csv(tmp_path / "bars.csv")
    m.to_parquet(tmp_path / "bars.parquet")
    assert from_csv(tmp_path / "bars.csv") == m
    assert from_parquet(tmp_path / "bars.parquet") == m


def test_csv_with_epoch_millisecond_timestamps(tmp_path):
    m = from_frames(two_symbols(n=8))
    long = m.to_frame()
    long["timestamp"] = long["timestamp"].astype("int64") // 10**6
    long.to_csv(tmp_path / "ms.csv", index=False)
    assert from_csv(tmp_path / "ms.csv") == m


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        from_csv(tmp_path / "nope.csv")


def test_resample_aggregates_ohlcv_and_funding_on_utc_days():
    hourly = from_frames(two_symbols(n=72, start="2024-01-01 00:00"))
    daily = hourly.resample("1D")
    assert len(daily) == 3 and daily.freq == pd.Timedelta("1D")
    src = hourly.ohlcv("BTC-PERP")
    oracle = src.resample("1D").agg({"open": "first", "high": "max", "low": "min", "close": "last",
                                     "volume": "sum", "funding_rate": "sum"})
    pd.testing.assert_frame_equal(daily.ohlcv("BTC-PERP"), oracle, check_freq=False)
    assert daily.funding["BTC-PERP"].tolist() == pytest.approx([0.0003] * 3)


def test_resample_drops_partial_bins_unless_asked():
    hourly = from_frames(two_symbols(n=50, start="2024-01-01 05:00"))  # 05:00 day 1 .. 06:00 day 3
    assert len(hourly.resample("1D")) == 1
    keep = hourly.resample("1D", drop_partial=False)
    assert len(keep) == 3 and keep.index[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_resample_to_a_non_multiple_is_rejected():
    with pytest.raises(DataError, match="whole multiple"):
        from_frames(two_symbols(n=48)).resample("90min")


def test_select_and_slice():
    m = from_frames(two_symbols(n=24))
    assert m.select(["BTC-PERP"]).symbols == ("BTC-PERP",)
    part = m.slice("2024-01-01 03:00", "2024-01-01 05:00")
    assert len(part) == 3 and part.index[0].hour == 3
    with pytest.raises(DataError, match="unknown instrument 'BTC-PREP'; did you mean 'BTC-PERP'"):
        m.select(["BTC-PREP"])
    with pytest.raises(DataError, match="no bars"):
        m.slice("2030-01-01", None)


def test_constructor_validates_arrays_directly():
    idx = pd.date_range("2024-01-01", periods=3, freq="1D", tz="UTC")
    ones = np.ones((3, 1))
    with pytest.raises(DataError, match="shape"):
        MarketData(idx, ["BTC-SPOT"], ones, ones, ones, np.ones((2, 1)), ones)
    with pytest.raises(DataError, match="listed twice"):
        MarketData(idx, ["BTC-SPOT", "BTC-SPOT"], *(np.ones((3, 2)) for _ in range(5)))


def test_unreadable_file_is_a_data_error(tmp_path):
    bad = tmp_path / "bars.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataError, match="could not be read"):
        from_parquet(bad)
