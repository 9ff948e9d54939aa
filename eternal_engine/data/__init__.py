"""Market data: the `MarketData` model, loaders, the synthetic generator and the bundled sample."""
from eternal_engine.data.loaders import from_csv, from_frames, from_long, from_parquet
from eternal_engine.data.market import MarketArrays, MarketData
from eternal_engine.data.sample import load_sample
from eternal_engine.data.synthetic import synthetic

__all__ = ["MarketData", "MarketArrays", "from_frames", "from_long", "from_csv", "from_parquet", "synthetic",
           "load_sample"]
