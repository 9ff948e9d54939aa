"""The bundled sample: present, offline, equal to its spec, and documented with numbers that match it."""
import socket

import numpy as np
import pandas as pd
import pytest

from eternal_engine.data import MarketData, load_sample, synthetic
from eternal_engine.data.sample import SAMPLE_PATH, SAMPLE_SPEC, main


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def test_sample_file_ships_inside_the_package_and_is_small():
    assert SAMPLE_PATH.exists()
    assert SAMPLE_PATH.parent.name == "sample" and SAMPLE_PATH.parent.parent.name == "data"
    assert SAMPLE_PATH.stat().st_size < 3_000_000


def test_load_sample_never_touches_the_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_sample opened a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)

    assert isinstance(load_sample(), MarketData)


def test_sample_shape_and_symbols(sample):
    assert sample.symbols == ("BTC-SPOT", "ETH-SPOT", "SOL-SPOT", "BTC-PERP", "ETH-PERP", "SOL-PERP")
    assert len(sample) == 2922
    assert sample.freq == pd.Timedelta("1D")
    assert sample.index[0] == pd.Timestamp("2017-01-01", tz="UTC")
    assert sample.index[-1] == pd.Timestamp("2024-12-31", tz="UTC")


def test_load_sample_equals_regenerating_from_the_spec(sample):
    fresh = synthetic(**SAMPLE_SPEC)

    assert fresh.symbols == sample.symbols
    assert fresh.index.equals(sample.index)
    for a, b in zip(fresh.arrays, sample.arrays):
        assert np.allclose(a, b, rtol=1e-12, atol=0)


def test_sample_has_a_bull_a_crash_deeper_than_half_and_an_ordinary_end():
    data, regimes = synthetic(**SAMPLE_SPEC, return_regimes=True)
    close = data.close["BTC-SPOT"]
    dd = close / close.cummax() - 1
    trough = dd.idxmin()
    peak = close[:trough].idxmax()

    assert dd.min() < -0.5
    assert (regimes[peak:trough] == "crash").any()
    assert (regimes == "bull").mean() > 0.3
    assert regimes.iloc[-1] in ("bull", "sideways")
    assert dd.iloc[-1] > -0.35


def test_readme_numbers_match_the_file(sample):
    readme = (SAMPLE_PATH.parent / "README.md").read_text()
    close = sample.close["BTC-SPOT"]
    vol = np.log(close).diff().std() * np.sqrt(365.25)
    max_dd = (close / close.cummax() - 1).min()
    funding = sample.funding["BTC-PERP"].sum() / (3 * len(sample))

    assert f"{vol:.1%}".replace("%", " %") in readme
    assert f"{max_dd:.1%}".replace("%", " %") in readme
    assert f"{funding:.4%}".replace("%", " %") in readme
    assert f"seed={SAMPLE_SPEC['seed']}" in readme


def test_write_script_regenerates_an_identical_file(tmp_path, sample):
    out = tmp_path / "sample_1d.parquet"

    main(["--write", "--path", str(out)])

    from eternal_engine.data import from_parquet

    got = from_parquet(out, freq="1D")
    assert got.symbols == sample.symbols and got.index.equals(sample.index)
    # equal up to the last bit's rounding: numpy picks its exp/log code by CPU (AVX-512 or not), so a file written
    # on one machine regenerates ~1 ulp apart on another (seen: 1.2e-15 on Intel for a file written on AMD)
    for name, a, b in zip(got.arrays._fields, got.arrays, sample.arrays):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=0, err_msg=name)
