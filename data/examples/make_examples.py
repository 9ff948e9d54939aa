"""Regenerate the example files in this folder (deterministic; invented prices, real file layouts).

    python data/examples/make_examples.py
"""
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def bars(n, start, freq, price, seed):
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    close = np.round(price * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 2)
    open_ = np.round(np.r_[price, close[:-1]], 2)
    high = np.round(np.maximum(open_, close) + np.round(rng.uniform(0, price * 0.001, n), 2), 2)
    low = np.round(np.minimum(open_, close) - np.round(rng.uniform(0, price * 0.001, n), 2), 2)
    volume = np.round(rng.uniform(1, 50, n), 4)
    trades = rng.integers(100, 5000, n)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume,
                         "trades": trades}, index=idx)


def cryptodatadownload(path, df, pair="BTC/USDT"):
    base, quote = pair.split("/")
    lines = ["https://www.CryptoDataDownload.com",
             f"unix,date,symbol,open,high,low,close,Volume {base},Volume {quote},tradecount"]
    for t, r in df.iloc[::-1].iterrows():  # newest first, as CryptoDataDownload writes them
        lines.append(f"{t.value // 10**6},{t:%Y-%m-%d %H:%M:%S},{pair},{r.open:.2f},{r.high:.2f},{r.low:.2f},"
                     f"{r.close:.2f},{r.volume:.4f},{r.volume * r.close:.2f},{int(r.trades)}")
    path.write_text("\n".join(lines) + "\n")


def binance(path, df, unit="ms", freq=pd.Timedelta("1min")):
    div = {"ms": 10**6, "us": 10**3}[unit]
    lines = []
    for t, r in df.iterrows():
        o = t.value // div
        c = (t + freq).value // div - 1
        lines.append(f"{o},{r.open:.8f},{r.high:.8f},{r.low:.8f},{r.close:.8f},{r.volume:.8f},{c},"
                     f"{r.volume * r.close:.8f},{int(r.trades)},{r.volume / 2:.8f},{r.volume * r.close / 2:.8f},0")
    path.write_text("\n".join(lines) + "\n")


def generic(path, df):
    out = pd.DataFrame({
        "Time (UTC)": df.index.strftime("%Y-%m-%d %H:%M:%S"),
        "Opening Px": df.open.map("{:.2f}".format), "Hi": df.high.map("{:.2f}".format),
        "Lo": df.low.map("{:.2f}".format), "Last": df.close.map("{:.2f}".format),
        "Base Qty": df.volume.map("{:.4f}".format),
        "Funding": np.where(df.index.hour % 8 == 0, "0.000100", "0"),
    })
    out.to_csv(path, index=False)


def main():
    cryptodatadownload(HERE / "cryptodatadownload_BTCUSDT_1h.csv", bars(50, "2024-03-01", "1h", 62000.0, 1))
    binance(HERE / "binance_BTCUSDT-1m.csv", bars(60, "2024-03-01", "1min", 62000.0, 2), "ms")
    binance(HERE / "binance_ETHUSDT-1m_us.csv", bars(60, "2025-01-01", "1min", 3300.0, 3), "us")
    generic(HERE / "generic_ohlcv.csv", bars(48, "2024-03-01", "1h", 62000.0, 4))


if __name__ == "__main__":
    main()
