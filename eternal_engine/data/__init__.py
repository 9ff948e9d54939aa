"""Market data: the `MarketData` model, loaders, the synthetic generator and the bundled sample."""
from eternal_engine.data.loaders import from_csv, from_frames, from_long, from_parquet
from eternal_engine.data.market import MarketArrays, MarketData

__all__ = ["MarketData", "MarketArrays", "from_frames", "from_long", "from_csv", "from_parquet", "synthetic",
           "load_sample"]


def __getattr__(name):
    # Imported on first use: keeps `python -m eternal_engine.data.sample` clean and the Numba import lazy.
    if name == "synthetic":
        from eternal_engine.data.synth import synthetic

        return synthetic
    if name == "load_sample":
        from eternal_engine.data.sample import load_sample

        return load_sample
    raise AttributeError(f"module 'eternal_engine.data' has no attribute {name!r}")
