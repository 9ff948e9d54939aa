"""Market data: the `MarketData` model, loaders and importers, quality reports, the synthetic generator and
the bundled sample."""
from eternal_engine.data.loaders import from_csv, from_frames, from_long, from_parquet
from eternal_engine.data.market import MarketArrays, MarketData

__all__ = ["MarketData", "MarketArrays", "from_frames", "from_long", "from_csv", "from_parquet", "synthetic",
           "load_sample", "read_cryptodatadownload", "read_binance_klines", "read_ohlcv", "import_files",
           "quality_report", "QualityReport", "fetch_bybit", "fetch_bybit_frames", "load_cached"]

_LAZY = {
    "read_cryptodatadownload": "eternal_engine.data.importers",
    "read_binance_klines": "eternal_engine.data.importers",
    "read_ohlcv": "eternal_engine.data.importers",
    "import_files": "eternal_engine.data.importers",
    "quality_report": "eternal_engine.data.quality",
    "QualityReport": "eternal_engine.data.quality",
    "fetch_bybit": "eternal_engine.data.bybit",
    "fetch_bybit_frames": "eternal_engine.data.bybit",
    "load_cached": "eternal_engine.data.bybit",
}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    # Imported on first use: keeps `python -m eternal_engine.data.sample` clean and the Numba import lazy.
    if name == "synthetic":
        from eternal_engine.data.synth import synthetic

        return synthetic
    if name == "load_sample":
        from eternal_engine.data.sample import load_sample

        return load_sample
    raise AttributeError(f"module 'eternal_engine.data' has no attribute {name!r}")
