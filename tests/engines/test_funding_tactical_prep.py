"""FUNDING flags and TACTICAL as-of alignment: hand-worked cases, a reference oracle, no look-ahead, pandas parity."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eternal_engine.engines.funding_nb import F_DEEP_NEGATIVE, F_ENTRY, F_NEGATIVE, funding_flags_nb, premium_nb
from eternal_engine.engines.tactical import align_asof
from eternal_engine.engines.tactical_nb import asof_values_nb
from eternal_engine.errors import DataError

H = 3_600_000_000_000  # one hour in ns
DAY = 24 * H
ENTRY, DEEP = 1e-4, -5e-4  # spec: 0.01 % and -0.05 % per 8h


def flags_of(funding, *, ts=None, entry=ENTRY, min_periods=2, deep=DEEP, deep_ns=3 * DAY):
    f = np.asarray(funding, dtype=np.float64)
    if f.ndim == 1:
        f = f.reshape(-1, 1)
    ts = np.arange(f.shape[0], dtype=np.int64) * 8 * H if ts is None else np.asarray(ts, dtype=np.int64)
    return funding_flags_nb(ts, f, entry, min_periods, deep, deep_ns, np.empty(f.shape, dtype=np.uint8))


def bit(flags, b, col=0):
    return ((flags[:, col] & b) != 0).tolist()


# ---------------------------------------------------------------- hand-worked FUNDING flags

def test_entry_streak_broken_and_carried_over_non_settlement_bars():
    f = [0, 2e-4, 0, 3e-4, 0, 0.5e-4, 2e-4, 2e-4, 1e-4, 2e-4, 0]
    #    -  s1    -  s2    -  break   s1    s2    =thr  s1    -
    assert bit(flags_of(f), F_ENTRY) == [0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0]


def test_entry_exactly_min_periods():
    f = [2e-4, 2e-4, 0, 2e-4, 2e-4, 0]
    assert bit(flags_of(f, min_periods=3), F_ENTRY) == [0, 0, 0, 1, 1, 1]
    assert bit(flags_of(f, min_periods=4), F_ENTRY) == [0, 0, 0, 0, 1, 1]
    assert bit(flags_of(f, min_periods=1), F_ENTRY) == [1, 1, 1, 1, 1, 1]


def test_negative_turns_on_at_the_settlement_bar_and_off_at_the_next_non_negative():
    f = [2e-4, 0, 0, 0, 0, -1e-5, 0, 0, 1e-6, 0]
    assert bit(flags_of(f), F_NEGATIVE) == [0, 0, 0, 0, 0, 1, 1, 1, 0, 0]


def test_zero_settlement_is_ignored():
    # a rate of exactly 0 looks like "no settlement": it neither breaks the streak nor clears F_NEGATIVE
    f = [2e-4, 0.0, 2e-4, -1e-5, 0.0, 0.0]
    fl = flags_of(f)
    assert bit(fl, F_ENTRY) == [0, 0, 1, 0, 0, 0]
    assert bit(fl, F_NEGATIVE) == [0, 0, 0, 1, 1, 1]


def test_no_flag_before_first_settlement():
    f = [0, 0, 0, -1e-3, 0]
    # thresholds that any settled rate would meet; deep_ns=0 flags at the settlement bar itself
    fl = flags_of(f, entry=-1.0, min_periods=1, deep=1.0, deep_ns=0)
    assert fl[:3, 0].tolist() == [0, 0, 0]
    assert fl[3, 0] == F_ENTRY | F_NEGATIVE | F_DEEP_NEGATIVE
    assert fl[4, 0] == F_ENTRY | F_NEGATIVE | F_DEEP_NEGATIVE


def test_deep_negative_exactly_at_deep_ns_not_one_ns_before():
    # 8h bars, settlements every bar from bar 2 on at -0.06 %: the streak starts at bar 2 (ts 16h);
    # 3 days later is bar 11 (ts 88h)
    f = [0, 1e-4] + [-6e-4] * 12
    fl = flags_of(f, deep_ns=3 * DAY)
    assert [i for i, on in enumerate(bit(fl, F_DEEP_NEGATIVE)) if on] == [11, 12, 13]
    fl = flags_of(f, deep_ns=3 * DAY + 1)
    assert [i for i, on in enumerate(bit(fl, F_DEEP_NEGATIVE)) if on] == [12, 13]
    # irregular timestamps: the bar 1 ns short of deep_ns is off, the bar exactly at it is on
    ts = [0, 10, 20, 20 + 3 * DAY - 1, 20 + 3 * DAY, 20 + 4 * DAY]
    f = [0, 0, -6e-4, 0, 0, 0]
    assert bit(flags_of(f, ts=ts), F_DEEP_NEGATIVE) == [0, 0, 0, 0, 1, 1]


def test_deep_negative_streak_reset():
    ts = np.arange(8, dtype=np.int64) * DAY
    f = [-6e-4, 0, -6e-4, -5e-4, -7e-4, 0, 0, -1e-3]
    #    s0           =thr breaks  s0 again at bar 4
    fl = flags_of(f, ts=ts, deep_ns=2 * DAY)
    assert bit(fl, F_DEEP_NEGATIVE) == [0, 0, 1, 0, 0, 0, 1, 1]
    assert bit(fl, F_NEGATIVE) == [1, 1, 1, 1, 1, 1, 1, 1]


def test_columns_are_independent():
    f = np.array([[2e-4, -1e-4], [2e-4, 0.0], [0.0, -6e-4]])
    fl = flags_of(f, deep_ns=0)
    assert fl[:, 0].tolist() == [0, F_ENTRY, F_ENTRY]
    assert fl[:, 1].tolist() == [F_NEGATIVE, F_NEGATIVE, F_NEGATIVE | F_DEEP_NEGATIVE]


def test_premium():
    assert premium_nb(101.0, 100.0) == pytest.approx(0.01)
    assert premium_nb(99.0, 100.0) == pytest.approx(-0.01)
    assert np.isinf(premium_nb(1.0, 0.0))


# ---------------------------------------------------------------- reference oracle and no look-ahead

def reference_flags(ts, funding, entry, min_periods, deep, deep_ns):
    """Straight from the definitions, recomputed from scratch at every bar."""
    n, m = funding.shape
    out = np.zeros((n, m), dtype=np.uint8)
    for j in range(m):
        for t in range(n):
            s = [i for i in range(t + 1) if funding[i, j] != 0]
            if not s:
                continue
            bits = 0
            last = [funding[i, j] for i in s[-min_periods:]]
            if len(s) >= min_periods and all(r > entry for r in last):
                bits |= F_ENTRY
            if funding[s[-1], j] < 0:
                bits |= F_NEGATIVE
            k = len(s)
            while k > 0 and funding[s[k - 1], j] < deep:
                k -= 1
            if k < len(s) and ts[t] - ts[s[k]] >= deep_ns:
                bits |= F_DEEP_NEGATIVE
            out[t, j] = bits
    return out


RATES = st.sampled_from([0.0, 0.0, 0.0, 2e-4, 1e-4, 5e-5, 1e-6, -1e-6, -5e-4, -6e-4, -2e-3])


@st.composite
def funding_case(draw):
    n = draw(st.integers(1, 40))
    m = draw(st.integers(1, 3))
    steps = draw(st.lists(st.integers(1, 16), min_size=n, max_size=n))
    ts = np.cumsum(np.array(steps, dtype=np.int64) * H)
    f = np.array(draw(st.lists(RATES, min_size=n * m, max_size=n * m))).reshape(n, m)
    min_periods = draw(st.integers(1, 4))
    deep_ns = draw(st.integers(0, 4)) * 8 * H + draw(st.sampled_from([-1, 0, 1]))
    return ts, f, min_periods, max(deep_ns, 0)


@given(funding_case())
def test_matches_reference(case):
    ts, f, mp, deep_ns = case
    got = funding_flags_nb(ts, f, ENTRY, mp, DEEP, deep_ns, np.empty(f.shape, dtype=np.uint8))
    np.testing.assert_array_equal(got, reference_flags(ts, f, ENTRY, mp, DEEP, deep_ns))


@given(funding_case(), st.data())
def test_no_look_ahead(case, data):
    ts, f, mp, deep_ns = case
    n, m = f.shape
    t = data.draw(st.integers(0, n - 1))
    tail = np.array(data.draw(st.lists(RATES, min_size=(n - t - 1) * m, max_size=(n - t - 1) * m)))
    g = f.copy()
    g[t + 1:] = tail.reshape(n - t - 1, m)
    a = funding_flags_nb(ts, f, ENTRY, mp, DEEP, deep_ns, np.empty(f.shape, dtype=np.uint8))
    b = funding_flags_nb(ts, g, ENTRY, mp, DEEP, deep_ns, np.empty(f.shape, dtype=np.uint8))
    np.testing.assert_array_equal(a[: t + 1], b[: t + 1])


# ---------------------------------------------------------------- TACTICAL as-of alignment

def pandas_asof(target_ts, source_ts, values):
    left = pd.DataFrame({"t": target_ts})
    right = pd.DataFrame({"t": source_ts, "v": values})
    return pd.merge_asof(left, right, on="t", direction="backward")["v"].to_numpy(dtype=float)


@given(st.lists(st.integers(0, 60), max_size=30), st.lists(st.integers(0, 60), max_size=30), st.integers(0, 2**31))
def test_asof_kernel_matches_merge_asof(target, source, seed):
    # small ranges: many equal timestamps (a value stamped exactly at a bar is used by that bar), duplicates too
    tgt = np.sort(np.array(target, dtype=np.int64))
    src = np.sort(np.array(source, dtype=np.int64))
    vals = np.random.default_rng(seed).normal(size=len(src))
    got = asof_values_nb(tgt, src, vals, np.empty(len(tgt)))
    np.testing.assert_array_equal(got, pandas_asof(tgt, src, vals))


def test_align_asof_matches_reindex_ffill_on_random_timestamps():
    rng = np.random.default_rng(7)
    bars = pd.date_range("2024-01-01", periods=500, freq="1h", tz="UTC")
    stamps = np.unique(rng.integers(bars.asi8[0] - 5 * DAY, bars.asi8[-1] + DAY, 40))
    stamps = np.concatenate([stamps, bars.asi8[[10, 200]]])  # some exactly on a bar
    src_idx = pd.DatetimeIndex(np.unique(stamps), tz="UTC")
    s = pd.Series(rng.uniform(0, 100, len(src_idx)), index=src_idx, name="fear_greed")
    got = align_asof(s, bars)
    want = s.reindex(s.index.union(bars)).ffill().reindex(bars).to_numpy()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, s.reindex(bars, method="ffill").to_numpy())


def test_value_stamped_at_midnight_is_used_from_that_bar_on():
    bars = pd.date_range("2024-01-01 22:00", periods=4, freq="1h", tz="UTC")
    s = pd.Series([10.0, 20.0], index=pd.to_datetime(["2024-01-01", "2024-01-02"]))  # tz-naive: UTC
    np.testing.assert_array_equal(align_asof(s, bars), [10.0, 10.0, 20.0, 20.0])


def test_align_asof_nan_before_first_value_and_int_values():
    bars = pd.date_range("2024-01-01", periods=4, freq="1D", tz="UTC")
    s = pd.Series([5, 7], index=pd.DatetimeIndex(["2024-01-02 12:00", "2024-01-03"], tz="UTC"))
    got = align_asof(s, bars)
    assert np.isnan(got[:2]).all()
    np.testing.assert_array_equal(got[2:], [7.0, 7.0])  # 12:00 on the 2nd, then 00:00 on the 3rd


def test_align_asof_converts_time_zones():
    bars = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    # 01:00 in Paris (winter, UTC+1) is 00:00 UTC
    s = pd.Series([1.0], index=pd.DatetimeIndex(["2024-01-01 01:00"], tz="Europe/Paris"))
    np.testing.assert_array_equal(align_asof(s, bars), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(align_asof(s, bars.tz_localize(None)), [1.0, 1.0, 1.0])


BARS = pd.date_range("2024-01-01", periods=5, freq="1D", tz="UTC")


def ts(s):
    return pd.Timestamp(s, tz="UTC")


@pytest.mark.parametrize(
    "values, index, match, first",
    [
        ([1.0, np.nan, 3.0], ["2024-01-01", "2024-01-02", "2024-01-03"], "NaN or infinite", "2024-01-02"),
        ([1.0, 2.0, np.inf], ["2024-01-01", "2024-01-02", "2024-01-03"], "NaN or infinite", "2024-01-03"),
        ([1.0, 2.0, 3.0], ["2024-01-01", "2024-01-03", "2024-01-02"], "not sorted", "2024-01-02"),
        ([1.0, 2.0, 3.0], ["2024-01-01", "2024-01-02", "2024-01-02"], "duplicate", "2024-01-02"),
    ],
)
def test_align_asof_rejects_bad_series(values, index, match, first):
    s = pd.Series(values, index=pd.DatetimeIndex(index), name="fng")
    with pytest.raises(DataError, match=match) as e:
        align_asof(s, BARS)
    assert e.value.timestamp == ts(first)
    assert e.value.symbol == "fng"
    assert e.value.fix
    assert "Fix:" in str(e.value) and first in str(e.value)


def test_align_asof_rejects_non_numeric_and_non_datetime():
    idx = pd.DatetimeIndex(["2024-01-01", "2024-01-02"])
    with pytest.raises(DataError, match="non-numeric"):
        align_asof(pd.Series(["fear", "greed"], index=idx), BARS)
    with pytest.raises(DataError, match="non-numeric"):
        align_asof(pd.Series([True, False], index=idx), BARS)
    with pytest.raises(DataError, match="not a DatetimeIndex"):
        align_asof(pd.Series([1.0, 2.0], index=[0, 1]), BARS)
    with pytest.raises(DataError, match="NaT"):
        align_asof(pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2024-01-01", None])), BARS)
    with pytest.raises(DataError, match="Series"):
        align_asof([1.0, 2.0], BARS)
    with pytest.raises(DataError, match="NaN or infinite") as e:
        align_asof(pd.Series([1, None], index=idx, dtype="Int64"), BARS)
    assert e.value.timestamp == ts("2024-01-02")


def test_align_asof_rejects_unsorted_bar_index():
    s = pd.Series([1.0], index=pd.DatetimeIndex(["2024-01-01"], tz="UTC"))
    with pytest.raises(DataError, match="bar index is not sorted") as e:
        align_asof(s, BARS[[0, 2, 1]])
    assert e.value.timestamp == BARS[1]


def test_empty_series_gives_all_nan():
    s = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    assert np.isnan(align_asof(s, BARS)).all()
