"""Eternal Engine: research, backtest and run a four-engine crypto allocation system on Bybit.

    >>> import eternal_engine as ee
    >>> result = ee.backtest(ee.load_sample())
    >>> result.stats()

Public names are imported lazily, so ``import eternal_engine`` stays fast (no pandas, no Numba until used).
"""
from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "backtest": "eternal_engine.api",
    "BacktestResult": "eternal_engine.result",
    "Config": "eternal_engine.config",
    "MarketData": "eternal_engine.data",
    "load_sample": "eternal_engine.data",
    "synthetic": "eternal_engine.data",
    "from_csv": "eternal_engine.data",
    "from_parquet": "eternal_engine.data",
    "from_frames": "eternal_engine.data",
    "fetch_bybit": "eternal_engine.data",
    "sweep": "eternal_engine.research.sweep",
    "walk_forward": "eternal_engine.research.walk_forward",
    "EternalError": "eternal_engine.errors",
    "ConfigError": "eternal_engine.errors",
    "DataError": "eternal_engine.errors",
    "SimulationError": "eternal_engine.errors",
    "FetchError": "eternal_engine.errors",
}
_SUBMODULES = {"api", "data", "indicators", "metrics", "engines", "sim", "config", "errors", "report", "result",
               "research", "risk"}

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return import_module(f"eternal_engine.{name}")
    raise AttributeError(f"module 'eternal_engine' has no attribute {name!r}")


def __dir__():
    return __all__
