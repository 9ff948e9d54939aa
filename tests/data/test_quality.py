"""quality_report: gaps, zero-volume runs and funding-interval changes are reported; bad order raises."""
import numpy as np
import pandas as pd
import pytest

from eternal_engine.data import from_frames
from eternal_engine.data.importers import read_cryptodatadownload
from eternal_engine.data.quality import QualityReport, quality_report
from eternal_engine.errors import DataError

from .test_importers import EXAMPLES


def ts(s):
    return pd.Timestamp(s, tz="UTC")


def frame(n=48, start="2024-01-01", freq="1h", funding=None):
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    df = pd.DataFrame({"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 5.0}, index=idx)
    if funding is not None:
        df["funding_rate"] = funding(idx)
    return df


def test_maintenance_gap_is_reported_exactly():
    df = frame().drop([ts("2024-01-01 11:00"), ts("2024-01-01 12:00")])  # a 2-hour maintenance window
    rep = quality_report({"BTC-SPOT": df})
    assert isinstance(rep, QualityReport)
    s = rep.summary.loc["BTC-SPOT"]
    assert s["bars"] == 46 and s["n_gaps"] == 1 and s["missing_bars"] == 2
    assert s["largest_gap"] == pd.Timedelta("2h") and s["freq"] == pd.Timedelta("1h")
    assert s["first"] == ts("2024-01-01 00:00") and s["last"] == ts("2024-01-02 23:00")
    assert rep.gaps.to_dict("records") == [{"symbol": "BTC-SPOT", "start": ts("2024-01-01 11:00"),
                                            "end": ts("2024-01-01 13:00"), "duration": pd.Timedelta("2h"),
                                            "missing_bars": 2}]
    assert "2024-01-01 11:00 .. 2024-01-01 13:00  (2 bars, 2h)" in str(rep)
    assert not rep.ok
    # the same data loaded with the gap accepted reports the same gap; without it MarketData refuses it
    with pytest.raises(DataError, match="max_gap"):
        from_frames({"BTC-SPOT": df})
    m = from_frames({"BTC-SPOT": df}, max_gap="3h")
    assert quality_report(m).gaps.equals(rep.gaps)


def test_several_gaps_and_expected_freq():
    df = frame(n=24).drop([ts("2024-01-01 03:00"), ts("2024-01-01 10:00"), ts("2024-01-01 11:00"),
                           ts("2024-01-01 12:00")])
    s = quality_report(df, symbol="ETH-SPOT").summary.loc["ETH-SPOT"]
    assert (s["n_gaps"], s["missing_bars"], s["largest_gap"]) == (2, 4, pd.Timedelta("3h"))
    # every other bar missing: the most common spacing alone would hide it, expected_freq does not
    sparse = frame(n=24).iloc[::2]
    assert quality_report(sparse).summary["n_gaps"].iloc[0] == 0
    s = quality_report(sparse, expected_freq="1h").summary.iloc[0]
    assert (s["n_gaps"], s["missing_bars"]) == (11, 11)


def test_zero_volume_runs_are_counted():
    df = frame(n=40)
    vol = df["volume"].to_numpy().copy()
    vol[[2, 3]] = 0            # run of 2
    vol[10:13] = 0             # run of 3
    vol[20:25] = 0             # run of 5
    vol[30] = 0                # run of 1
    df["volume"] = vol
    s = quality_report(df, symbol="BTC-SPOT").summary.iloc[0]
    assert s["zero_volume_runs"] == 2 and s["longest_zero_volume_run"] == 5
    rep = quality_report(df, symbol="BTC-SPOT", zero_volume_min=2)
    assert rep.summary.iloc[0]["zero_volume_runs"] == 3
    assert rep.zero_volume["start"].tolist() == [df.index[2], df.index[10], df.index[20]]
    assert rep.zero_volume["bars"].tolist() == [2, 3, 5]
    assert "zero-volume runs (>= 2 bars): 3, longest 5 bars" in str(rep)


def test_funding_interval_change_from_8h_to_4h():
    switch = ts("2024-01-03 16:00")  # last 8h settlement; from here on every 4 hours

    def rates(idx):
        eight = (idx.hour % 8 == 0) & (idx <= switch)
        four = (idx.hour % 4 == 0) & (idx > switch)
        return np.where(eight | four, 0.0001, 0.0)

    df = frame(n=24 * 5, funding=rates)
    s = quality_report({"BTC-PERP": df}).summary.loc["BTC-PERP"]
    assert s["funding_interval_changes"] == [(ts("2024-01-03 20:00"), pd.Timedelta("8h"), pd.Timedelta("4h"))]
    assert s["funding_interval"] == pd.Timedelta("4h")
    assert "funding interval 8h -> 4h from 2024-01-03 20:00" in str(quality_report({"BTC-PERP": df}))
    # the same through MarketData
    m = from_frames({"BTC-PERP": df})
    assert quality_report(m).summary.loc["BTC-PERP", "funding_interval_changes"] == s["funding_interval_changes"]


def test_one_zero_rate_settlement_is_not_an_interval_change():
    def rates(idx):
        r = np.where(idx.hour % 8 == 0, 0.0001, 0.0)
        r[idx == ts("2024-01-02 08:00")] = 0.0  # a settlement at exactly 0 looks like a 16h interval
        return r

    s = quality_report({"BTC-PERP": frame(n=24 * 4, funding=rates)}).summary.iloc[0]
    assert s["funding_interval_changes"] == [] and s["funding_interval"] == pd.Timedelta("8h")


def test_long_format_and_importer_output():
    long = from_frames({"BTC-SPOT": frame(), "BTC-PERP": frame(funding=lambda i: np.where(i.hour % 8 == 0,
                                                                                         1e-4, 0.0))}).to_frame()
    rep = quality_report(long)
    assert list(rep.summary.index) == ["BTC-SPOT", "BTC-PERP"] and rep.ok
    assert pd.isna(rep.summary.loc["BTC-SPOT", "funding_interval"])
    cdd = read_cryptodatadownload(EXAMPLES / "cryptodatadownload_BTCUSDT_1h.csv")
    rep = quality_report(cdd)
    assert list(rep.summary.index) == ["BTC-SPOT"] and rep.summary.iloc[0]["bars"] == 50 and rep.ok
    assert "BTC-SPOT: 50 bars of 1h, 2024-03-01 00:00 .. 2024-03-03 01:00 UTC" in str(rep)


@pytest.mark.parametrize("order, problem, at", [
    ([0, 1, 2, 2, 3, 4], "duplicate timestamp", 2),
    ([0, 1, 3, 2, 4, 5], "not sorted", 2),
])
def test_duplicate_or_unsorted_raw_input_raises(order, problem, at):
    df = frame(n=6)
    with pytest.raises(DataError, match=problem) as e:
        quality_report({"SOL-PERP": df.iloc[order]})
    assert e.value.symbol == "SOL-PERP" and e.value.timestamp == df.index[at] and e.value.fix


def test_unusable_values_raise_the_foundation_errors():
    df = frame(n=6)
    df.loc[df.index[4], "close"] = np.nan
    with pytest.raises(DataError, match="NaN") as e:
        quality_report(df, symbol="BTC-SPOT")
    assert e.value.timestamp == df.index[4]
    with pytest.raises(DataError, match="zero_volume_min"):
        quality_report(frame(), zero_volume_min=0)


def test_gap_in_an_imported_file_is_kept_and_reported(tmp_path):
    from .test_importers import hourly, write_cdd

    df = hourly(30).drop([ts("2024-01-01 05:00"), ts("2024-01-01 06:00"), ts("2024-01-01 07:00")])
    out = read_cryptodatadownload(write_cdd(tmp_path / "gap.csv", df))
    assert len(out) == 27  # nothing filled, nothing dropped
    g = quality_report(out).gaps
    assert g[["start", "end", "missing_bars"]].values.tolist() == [[ts("2024-01-01 05:00"),
                                                                   ts("2024-01-01 08:00"), 3]]
