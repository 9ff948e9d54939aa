"""Bybit download and cache, against the local fake Bybit V5 server through the unmodified pybit client."""
import numpy as np
import pandas as pd
import pytest

from eternal_engine.cli import main
from eternal_engine.data import bybit as bb
from eternal_engine.data import cache as cache_mod
from eternal_engine.data.bybit import FetchError, TokenBucket, fetch_bybit, fetch_bybit_frames, load_cached
from eternal_engine.data.cache import SeriesStore, merge_ranges, missing_ranges
from eternal_engine.errors import ConfigError, DataError
from tests.fakes import FakeBybit

KCOLS = ["open", "high", "low", "close", "volume", "turnover"]
MCOLS = ["open", "high", "low", "close"]
START, END = "2024-01-01", "2024-04-01"  # 2,184 hourly bars: 3 kline pages; 273 settlements: 2 funding pages
FAST = dict(max_rate=1000.0, backoff=0.01, progress=False)


@pytest.fixture
def fake():
    with FakeBybit(start=START, end=END) as f:
        yield f


def fetch(fake, tmp_path, symbols=("BTC-PERP", "BTC-SPOT"), **kw):
    opts = dict(interval="60", start=START, end=END, cache_dir=tmp_path / "cache", endpoint=fake.url, **FAST)
    opts.update(kw)
    return fetch_bybit_frames(list(symbols), **opts)


def assert_klines_equal(fake, dl):
    perp, spot = dl.frames["BTC-PERP"], dl.frames["BTC-SPOT"]
    src = fake.klines("linear", "BTCUSDT", "60")
    assert perp.index.equals(src.index)
    np.testing.assert_array_equal(perp[KCOLS].to_numpy(), src[KCOLS].to_numpy())
    src_spot = fake.klines("spot", "BTCUSDT", "60")
    assert spot.index.equals(src_spot.index)
    np.testing.assert_array_equal(spot[KCOLS].to_numpy(), src_spot[KCOLS].to_numpy())
    for kind in ("mark", "index"):
        s = fake.klines("linear", "BTCUSDT", "60", kind)
        np.testing.assert_array_equal(perp[[f"{kind}_{c}" for c in MCOLS]].to_numpy(), s[MCOLS].to_numpy())
    f = fake.funding("BTCUSDT")
    assert dl.funding["BTC-PERP"].index.equals(f.index)
    np.testing.assert_array_equal(dl.funding["BTC-PERP"].to_numpy(), f.to_numpy())
    assert perp.index.is_unique and spot.index.is_unique


# ------------------------------------------------------------------ downloads
def test_multi_page_download_equals_source_exactly(fake, tmp_path):
    dl = fetch(fake, tmp_path)
    assert_klines_equal(fake, dl)
    assert len(dl.frames["BTC-PERP"]) == 2184
    assert fake.count("/v5/market/kline") == 6  # 3 pages each for linear and spot
    assert fake.count("/v5/market/mark-price-kline") == 3
    assert fake.count("/v5/market/index-price-kline") == 3
    assert fake.count("/v5/market/funding/history") == 2  # 273 settlements, 200 per page
    assert fake.count("/v5/market/instruments-info") == 2
    assert dl.requests == fake.request_count == 16
    # Paging follows the API: newest first, limits at the caps, end moved to the oldest row of the last page.
    kl = [r.params for r in fake.requests if r.path == "/v5/market/kline" and r.params["category"] == "linear"]
    assert [int(p["limit"]) for p in kl] == [1000] * 3
    assert int(kl[0]["end"]) > int(kl[1]["end"]) > int(kl[2]["end"])
    fr = [r.params for r in fake.requests if r.path == "/v5/market/funding/history"]
    assert [int(p["limit"]) for p in fr] == [200, 200]


def test_fetch_bybit_returns_aligned_market_data_with_funding_at_settlement_bars(fake, tmp_path):
    m = fetch_bybit(["BTC-PERP", "BTC-SPOT"], interval="60", start=START, end=END, cache_dir=tmp_path,
                    endpoint=fake.url, **FAST)
    assert m.symbols == ("BTC-PERP", "BTC-SPOT") and len(m) == 2184
    assert m.freq == pd.Timedelta("1h")
    f = fake.funding("BTCUSDT")
    fund = m.funding["BTC-PERP"]
    assert fund[fund != 0].index.equals(f[f != 0].index)
    np.testing.assert_array_equal(fund.loc[f.index].to_numpy(), f.to_numpy())
    assert (m.funding.columns == ["BTC-PERP"]).all()
    # 4h bars: every settlement lands in the bar containing it, summed.
    m4 = fetch_bybit(["BTC-PERP"], interval="240", start=START, end=END, cache_dir=tmp_path,
                     endpoint=fake.url, **FAST)
    np.testing.assert_allclose(m4.funding["BTC-PERP"].sum(), f.sum(), rtol=0, atol=1e-15)


def test_second_run_makes_no_request_and_load_cached_is_offline(fake, tmp_path):
    fetch(fake, tmp_path)
    fake.reset_log()
    dl = fetch(fake, tmp_path)
    assert fake.request_count == 0 and dl.requests == 0
    assert_klines_equal(fake, dl)
    off = load_cached(["BTC-PERP", "BTC-SPOT"], interval="60", start=START, end=END, cache_dir=tmp_path / "cache")
    assert off.requests == 0 and fake.request_count == 0
    assert off.frames["BTC-PERP"].equals(dl.frames["BTC-PERP"])
    with pytest.raises(DataError, match="data fetch"):
        load_cached(["ETH-PERP"], interval="60", start=START, end=END, cache_dir=tmp_path / "cache")


def test_incremental_run_fetches_only_the_missing_range(fake, tmp_path):
    fetch(fake, tmp_path, symbols=["BTC-PERP"], end="2024-02-01")
    fake.reset_log()
    dl = fetch(fake, tmp_path, symbols=["BTC-PERP"], end="2024-03-01")
    feb = int(pd.Timestamp("2024-02-01", tz="UTC").value // 1_000_000)
    kl = [r.params for r in fake.requests if r.path == "/v5/market/kline"]
    assert len(kl) == 1 and int(kl[0]["start"]) == feb
    assert fake.count("/v5/market/instruments-info") == 0
    src = fake.klines("linear", "BTCUSDT", "60").loc[:"2024-02-29 23:00"]
    np.testing.assert_array_equal(dl.frames["BTC-PERP"][KCOLS].to_numpy(), src[KCOLS].to_numpy())


def test_cache_dir_from_environment(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("EE_DATA_CACHE", str(tmp_path / "envcache"))
    monkeypatch.setenv("EE_BYBIT_ENDPOINT", fake.url)
    dl = fetch_bybit_frames(["BTC-SPOT"], interval="60", start=START, end="2024-01-03", **FAST)
    assert dl.cache_dir == tmp_path / "envcache"
    assert (tmp_path / "envcache" / "spot" / "BTCUSDT" / "60" / "kline" / "manifest.json").exists()


# ------------------------------------------------------------------ faults
@pytest.mark.parametrize("mode", ["close", "truncate"])
def test_interrupted_download_raises_then_resumes_without_gap_or_duplicate(fake, tmp_path, mode):
    fake.drop_after(5, mode=mode)  # instruments x2, perp kline pages x3 land; then the connection drops
    with pytest.raises(FetchError, match="run.*again|resumes") as err:
        fetch(fake, tmp_path, retries=2)
    assert "failed after 3 attempts" in str(err.value)
    store = SeriesStore(tmp_path / "cache", "linear", "BTCUSDT", "60", "kline")
    assert store.missing(*[int(pd.Timestamp(x, tz="UTC").value // 1_000_000) for x in (START, END)]) == []
    mark = SeriesStore(tmp_path / "cache", "linear", "BTCUSDT", "60", "mark")
    assert mark.covered() == []
    fake.clear_faults()
    fake.reset_log()
    dl = fetch(fake, tmp_path)
    assert fake.count("/v5/market/kline") == 3  # the perp's klines were not fetched again; spot's were
    assert fake.count("/v5/market/instruments-info") == 0
    assert_klines_equal(fake, dl)


def test_interruption_between_pages_of_one_series_resumes_exactly(fake, tmp_path):
    fake.drop_after(3)  # 2 instruments + first kline page, then drops
    with pytest.raises(FetchError):
        fetch(fake, tmp_path, retries=1)
    store = SeriesStore(tmp_path / "cache", "linear", "BTCUSDT", "60", "kline")
    (a, b), = store.covered()
    assert b == int(pd.Timestamp(END, tz="UTC").value // 1_000_000) and len(store.read()) == 1000
    fake.clear_faults()
    fake.reset_log()
    dl = fetch(fake, tmp_path)
    first = [r.params for r in fake.requests if r.path == "/v5/market/kline"][0]
    assert int(first["end"]) == a - 1  # resumes right below the stored page
    assert_klines_equal(fake, dl)


def test_crash_before_manifest_update_never_counts_a_page_as_complete(fake, tmp_path, monkeypatch):
    real = cache_mod.atomic_write_json
    calls = {"n": 0}

    def flaky(path, obj):
        if path.name == "manifest.json":
            calls["n"] += 1
            if calls["n"] == 2:  # the second page's rows are on disk, its manifest update "crashes"
                raise KeyboardInterrupt
        return real(path, obj)

    monkeypatch.setattr(cache_mod, "atomic_write_json", flaky)
    with pytest.raises(KeyboardInterrupt):
        fetch(fake, tmp_path, symbols=["BTC-PERP"])
    monkeypatch.setattr(cache_mod, "atomic_write_json", real)
    store = SeriesStore(tmp_path / "cache", "linear", "BTCUSDT", "60", "kline")
    assert len(store.manifest()["files"]) == 1 and len(list(store.path.glob("part-*"))) == 2  # one orphan
    dl = fetch(fake, tmp_path, symbols=["BTC-PERP"])
    src = fake.klines("linear", "BTCUSDT", "60")
    np.testing.assert_array_equal(dl.frames["BTC-PERP"][KCOLS].to_numpy(), src[KCOLS].to_numpy())
    assert [p.name for p in store.path.glob("*.parquet")] == store.manifest()["files"]  # orphan removed


def test_rate_limit_answers_are_waited_out_and_counted(fake, tmp_path):
    fake.rate_limit(3, reset_ms=20)
    dl = fetch(fake, tmp_path, symbols=["BTC-PERP"])
    assert fake.count(outcome="rate_limited") == 3
    assert dl.rate_limited == 3 and dl.retried == 3
    assert dl.requests == fake.request_count
    src = fake.klines("linear", "BTCUSDT", "60")
    np.testing.assert_array_equal(dl.frames["BTC-PERP"][KCOLS].to_numpy(), src[KCOLS].to_numpy())


def test_rate_limit_without_reset_header_uses_backoff(fake, tmp_path):
    fake.rate_limit(2, omit_reset_header=True)
    dl = fetch(fake, tmp_path, symbols=["BTC-SPOT"])
    assert dl.rate_limited == 2 and len(dl.frames["BTC-SPOT"]) == 2184


def test_client_side_rate_limit_keeps_under_the_server_limit(tmp_path):
    with FakeBybit(start=START, end=END, per_second_limit=25) as f:
        dl = fetch(f, tmp_path, symbols=["BTC-PERP", "ETH-PERP"], end="2024-01-15", max_rate=10.0)
    assert dl.rate_limited == 0 and f.count(outcome="rate_limited") == 0
    assert dl.requests == 10


def test_token_bucket_paces_requests():
    t = {"now": 0.0}
    slept = []

    def sleep(d):
        slept.append(d)
        t["now"] += d

    b = TokenBucket(5, burst=2, clock=lambda: t["now"], sleep=sleep)
    for _ in range(6):
        b.acquire()
    assert t["now"] == pytest.approx(4 / 5)  # 2 free, then one every 0.2 s


def test_invalid_parameters_are_not_retried(fake, tmp_path):
    with pytest.raises(DataError, match="Fix: .*BTC-PERP") as err:
        fetch(fake, tmp_path, symbols=["XYZ-PERP"])
    assert "XYZUSDT" in str(err.value)
    assert fake.request_count == 1  # instruments-info said "no such symbol": nothing retried
    with pytest.raises(DataError, match="BTC-PERP"):
        fetch(fake, tmp_path, symbols=["BTC"])
    with pytest.raises(ConfigError, match="interval"):
        fetch(fake, tmp_path, interval="7")
    # A 10001 from the kline endpoint itself is raised at once, never retried.
    client = bb._Client(fake.url, retries=5, backoff=0.01)
    fake.reset_log()
    with pytest.raises(DataError, match="Not supported symbols"):
        client.call("kline", "XYZ klines", category="linear", symbol="XYZUSDT", interval="60")
    assert fake.request_count == 1


def test_funding_interval_change_8h_to_4h(tmp_path):
    change = pd.Timestamp("2024-02-01", tz="UTC")
    with FakeBybit(start=START, end="2024-03-01") as f:
        f.change_funding_interval("BTCUSDT", change, hours=4)
        dl = fetch(f, tmp_path, symbols=["BTC-PERP", "BTC-SPOT"], end="2024-03-01")
        src = f.funding("BTCUSDT")
    ev = dl.funding["BTC-PERP"]
    assert ev.index.equals(src.index)
    np.testing.assert_array_equal(ev.to_numpy(), src.to_numpy())
    steps = np.diff(ev.index.asi8) // 3_600_000_000_000
    before = ev.index[1:] <= change
    assert set(steps[before]) == {8} and set(steps[~before]) == {4}
    assert len(ev) == 31 * 3 + 29 * 6 and len(ev) > 200  # two funding pages across the change
    assert dl.instruments["BTC-PERP"]["fundingInterval"] == 240
    m = dl.to_market()
    nz = m.funding["BTC-PERP"]
    nz = nz[nz != 0]
    assert nz.index.equals(src[src != 0].index)
    assert (nz.index[nz.index >= change].hour % 4 == 0).all()
    assert set(nz.index[nz.index >= change].hour) == {0, 4, 8, 12, 16, 20}


# ------------------------------------------------------------------ cache ranges
def test_missing_ranges():
    assert missing_ranges([], 0, 10) == [(0, 10)]
    assert missing_ranges([(0, 10)], 0, 10) == []
    assert missing_ranges([(2, 4), (6, 8)], 0, 10) == [(0, 2), (4, 6), (8, 10)]
    assert missing_ranges([(4, 6), (0, 3)], 2, 5) == [(3, 4)]
    assert merge_ranges([(5, 7), (0, 5), (9, 9)]) == [(0, 7)]


def test_cli_data_fetch_against_the_fake(fake, tmp_path, capsys):
    args = ["data", "fetch", "--symbols", "BTC-PERP,BTC-SPOT", "--interval", "60", "--start", START, "--end",
            "2024-02-01", "--cache", str(tmp_path / "c"), "--endpoint", fake.url, "--max-rate", "1000"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "BTC-PERP" in out and "744 bars" in out and "BTC-SPOT" in out
    assert "requests made: 7" in out and str(tmp_path / "c") in out
    assert "requests" in err  # the progress bar, on stderr
    assert main(args + ["-q"]) == 0
    out, err = capsys.readouterr()
    assert "requests made: 0" in out and err == ""
    assert main(["data", "fetch", "--symbols", "NOPE-PERP", "--start", START, "--end", "2024-01-02",
                 "--cache", str(tmp_path / "c"), "--endpoint", fake.url, "-q"]) == 2
    assert "Fix:" in capsys.readouterr().err


def test_cli_help_lists_both_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "backtest" in out and "data" in out


# ------------------------------------------------------------------ the cache as a backtest data source
FOUR = "BTC-PERP,BTC-SPOT,ETH-PERP,ETH-SPOT"


def cli_fetch(fake, cache_dir, symbols=FOUR, interval="60", start=START, end="2024-01-21"):
    return main(["data", "fetch", "--symbols", symbols, "--interval", interval, "--start", start, "--end", end,
                 "--cache", str(cache_dir), "--endpoint", fake.url, "--max-rate", "1000", "-q"])


def test_cli_fetch_then_backtest_on_the_cache_runs_offline(fake, tmp_path, capsys, monkeypatch):
    cache_dir = tmp_path / "cache"
    assert cli_fetch(fake, cache_dir, end="2024-02-10") == 0  # 960 hourly bars of BTC and ETH, spot and perp
    capsys.readouterr()
    # Short indicator windows so TREND warms up within days (the report wants 30 days of returns); FUNDING on
    # the two cached underlyings only, so all four default engines run on BTC/ETH (the default config wants SOL).
    cfg = tmp_path / "small.yaml"
    cfg.write_text("trend:\n  sma_fast: 5\n  sma_slow: 20\nfunding:\n  underlyings: [BTC, ETH]\n")
    # Any request now fails, and a pybit session may not even be built.
    fake.reset_log()
    fake.drop_after(0)
    monkeypatch.delenv("EE_BYBIT_ENDPOINT", raising=False)

    def no_client(*a, **k):
        raise AssertionError("the backtest tried to reach Bybit")

    monkeypatch.setattr(bb, "_Client", no_client)
    report = tmp_path / "report.html"
    code = main(["backtest", "--data", str(cache_dir), "--config", str(cfg), "--out", str(report), "-q"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert fake.request_count == 0
    table = out.split("\n\n", 1)[0]
    stats = dict(line.split(None, 1) for line in table.splitlines() if line.strip())
    for key in ("cagr", "sharpe", "max_drawdown", "n_trades"):
        assert key in stats
    assert "P&L attribution by sleeve" in out and "trend" in out and "funding" in out
    assert report.exists()
    # The same data as the API: all four instruments on 960 common bars, funding at the settlement bars.
    m = bb.cached_market(cache_dir)
    assert m.symbols == ("BTC-SPOT", "ETH-SPOT", "BTC-PERP", "ETH-PERP") and len(m) == 960
    assert m.index[0] == pd.Timestamp(START, tz="UTC") and m.index[-1] == pd.Timestamp("2024-02-09 23:00", tz="UTC")
    f = fake.funding("BTCUSDT").loc[:"2024-02-09 23:00"]
    np.testing.assert_array_equal(m.funding["BTC-PERP"].loc[f.index].to_numpy(), f.to_numpy())
    assert fake.request_count == 0


def test_scan_cache_lists_the_manifests(fake, tmp_path):
    cache_dir = tmp_path / "cache"
    assert cache_mod.scan_cache(cache_dir).empty and list(cache_mod.scan_cache(cache_dir).columns) == \
        cache_mod.SCAN_COLUMNS
    assert cli_fetch(fake, cache_dir, symbols="BTC-PERP,BTC-SPOT", end="2024-01-03") == 0
    inv = cache_mod.scan_cache(cache_dir)
    got = set(zip(inv["name"], inv["category"], inv["symbol"], inv["interval"].fillna("-"), inv["kind"]))
    assert got == {("BTC-PERP", "linear", "BTCUSDT", "60", "kline"), ("BTC-PERP", "linear", "BTCUSDT", "60", "mark"),
                   ("BTC-PERP", "linear", "BTCUSDT", "60", "index"), ("BTC-PERP", "linear", "BTCUSDT", "-", "funding"),
                   ("BTC-SPOT", "spot", "BTCUSDT", "60", "kline")}
    lo, hi = pd.Timestamp(START, tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")
    assert all(r == [(lo, hi)] for r in inv["ranges"])
    assert (inv["start"] == lo).all() and (inv["end"] == hi).all()


def test_cached_market_uses_the_common_range_and_needs_an_interval_when_several(fake, tmp_path, capsys,
                                                                                monkeypatch):
    cache_dir = tmp_path / "cache"
    assert cli_fetch(fake, cache_dir, symbols="BTC-PERP,BTC-SPOT", start="2024-01-02", end="2024-01-10") == 0
    assert cli_fetch(fake, cache_dir, symbols="ETH-PERP", start=START, end="2024-01-08") == 0
    assert cli_fetch(fake, cache_dir, symbols="BTC-SPOT", interval="240", start=START, end="2024-01-10") == 0
    capsys.readouterr()
    fake.reset_log()
    monkeypatch.setattr(bb, "_Client", None)  # constructing a client would fail loudly
    with pytest.raises(DataError, match=r"several intervals \(60, 240\).*interval= one of \['60', '240'\]"):
        bb.cached_market(cache_dir)
    code = main(["backtest", "--data", str(cache_dir), "--engines", "trend", "--out", "", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "several intervals" in err and "--interval 60" in err and "Traceback" not in err
    # Latest common start (ETH from Jan 1, BTC from Jan 2) to earliest common end (ETH to Jan 8).
    m = bb.cached_market(cache_dir, interval="60")
    assert m.symbols == ("BTC-SPOT", "BTC-PERP", "ETH-PERP")
    assert m.index[0] == pd.Timestamp("2024-01-02", tz="UTC") and m.index[-1] == pd.Timestamp("2024-01-07 23:00",
                                                                                                 tz="UTC")
    m4 = bb.cached_market(cache_dir, interval="4h")
    assert m4.symbols == ("BTC-SPOT",) and len(m4) == 9 * 6
    m = bb.cached_market(cache_dir, interval="60", symbols=["BTC-PERP", "BTC-SPOT"], start="2024-01-05")
    assert m.index[0] == pd.Timestamp("2024-01-05", tz="UTC") and len(m) == 5 * 24
    with pytest.raises(DataError, match="do not cover|does not cover"):
        bb.cached_market(cache_dir, interval="60", start="2024-01-01")
    with pytest.raises(DataError, match="no 240 klines of ETH-PERP"):
        bb.cached_market(cache_dir, interval="240", symbols=["ETH-PERP"])
    with pytest.raises(DataError, match="no klines of SOL-PERP.*BTC-PERP, BTC-SPOT, ETH-PERP"):
        bb.cached_market(cache_dir, symbols=["SOL-PERP"])
    with pytest.raises(DataError, match="holds no 15 klines.*'60', '240'"):
        bb.cached_market(cache_dir, interval="15")
    assert fake.request_count == 0


def test_cached_market_without_common_range_or_cache(fake, tmp_path, capsys):
    with pytest.raises(DataError, match="holds no klines.*data fetch"):
        bb.cached_market(tmp_path / "empty")
    cache_dir = tmp_path / "cache"
    assert cli_fetch(fake, cache_dir, symbols="BTC-SPOT", end="2024-01-03") == 0
    assert cli_fetch(fake, cache_dir, symbols="ETH-SPOT", start="2024-01-05", end="2024-01-07") == 0
    with pytest.raises(DataError, match="share no common range.*BTC-SPOT kline: \\[2024-01-01 00:00, 2024-01-03"):
        bb.cached_market(cache_dir)
    capsys.readouterr()
    assert main(["backtest", "--data", str(tmp_path / "nowhere"), "--out", "", "-q"]) == 2
    assert "no such cache folder" in capsys.readouterr().err
    assert main(["backtest", "--data", "sample", "--interval", "60", "--out", "", "-q"]) == 2
    assert "only applies with --data <cache dir>" in capsys.readouterr().err
