"""Calendar bits of the bar loop against a pandas oracle."""
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from eternal_engine.sim.calendar_nb import calendar_nb, civil_nb

RULES = {0: None, 1: "M", 2: "Q", 3: "Y"}


def oracle(index, core, orch, dca_day):
    idx = index.tz_convert("UTC").tz_localize(None)
    out = np.zeros(len(idx), dtype=np.uint8)
    new = lambda key: np.r_[False, key[1:] != key[:-1]]  # noqa: E731
    out |= np.where(new(idx.normalize().asi8), 1, 0).astype(np.uint8)
    for bit, rule in ((2, core), (4, orch)):
        if RULES[rule]:
            out |= np.where(new(idx.to_period(RULES[rule]).asi8), bit, 0).astype(np.uint8)
    if dca_day:
        frame = pd.DataFrame({"month": idx.to_period("M"), "due": idx.day >= dca_day})
        first = frame[frame["due"]].groupby("month").head(1).index.to_numpy()
        first = first[first > 0]
        out[first] |= 8
    return out


@settings(max_examples=40)
@given(st.integers(-20_000, 30_000), st.sampled_from(["1h", "7h", "1D", "2D", "15min"]), st.integers(0, 3),
       st.integers(0, 3), st.integers(0, 28), st.integers(0, 2**32 - 1))
def test_calendar_bits_match_pandas(start_day, freq, core, orch, dca_day, seed):
    rng = np.random.default_rng(seed)
    idx = pd.date_range(pd.Timestamp("1970-01-01", tz="UTC") + pd.Timedelta(days=start_day), periods=3000,
                        freq=freq)
    idx = idx[np.sort(rng.choice(len(idx), size=1500, replace=False))]  # gaps, including whole months
    got = calendar_nb(idx.as_unit("ns").asi8, core, orch, dca_day, np.empty(len(idx), np.uint8))
    np.testing.assert_array_equal(got, oracle(idx, core, orch, dca_day))


def test_civil_dates_match_numpy_over_centuries():
    days = np.arange(-150_000, 150_000, 17)
    d = days.astype("datetime64[D]")
    want_y = d.astype("datetime64[Y]").astype(int) + 1970
    want_m = d.astype("datetime64[M]").astype(int) % 12 + 1
    want_d = (d - d.astype("datetime64[M]")).astype(int) + 1
    got = np.array([civil_nb(int(x)) for x in days])
    np.testing.assert_array_equal(got, np.c_[want_y, want_m, want_d])
