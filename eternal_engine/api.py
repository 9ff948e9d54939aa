"""`backtest()`: the one-call entry point (re-exported as `eternal_engine.backtest`)."""
from __future__ import annotations

from eternal_engine.config import Config


def backtest(data, config: Config | dict | str | None = None, *, engines=None, start=None, end=None,
             trade_from=None, fear_greed=None):
    """Run the engines over ``data`` and return a :class:`~eternal_engine.result.BacktestResult`.

    Parameters
    ----------
    data : MarketData (e.g. ``load_sample()``, ``synthetic(...)``, ``from_csv(...)``).
    config : a `Config`, a dict of sections, a path to a YAML file, or None for the defaults.
    engines : engine names (default: all four, ``("core_hodl", "trend", "funding", "tactical")``).
    start, end : optional inclusive bounds on bar open times (UTC) of the data used.
    trade_from : optional first bar the engines may trade (UTC); the data before it (from ``start``) only
        warms up the indicators, and the result starts at ``trade_from``. Without it the indicators warm up
        inside the window and the engines start trading as soon as they can.
    fear_greed : optional Series of a fear-&-greed index for TACTICAL's extra trigger (see `simulate`).

    Decisions are taken on the close of bar t and fill at the open of t+1 (``execution.fill``).
    """
    from eternal_engine.data.market import MarketData
    from eternal_engine.errors import ConfigError, DataError
    from eternal_engine.sim import simulate

    if not isinstance(data, MarketData):
        raise DataError(f"data must be a MarketData, got {type(data).__name__}",
                        fix="load it with eternal_engine.data.load_sample(), from_csv(), from_frames() or synthetic()")
    if config is None:
        config = Config()
    elif isinstance(config, dict):
        config = Config.from_dict(config)
    elif isinstance(config, str) or hasattr(config, "__fspath__"):
        config = Config.from_yaml(config)
    elif not isinstance(config, Config):
        raise ConfigError(f"config must be a Config, dict or YAML path, got {type(config).__name__}")
    if start is not None or end is not None:
        data = data.slice(start, end)
    return simulate(data, config, engines=engines, fear_greed=fear_greed, trade_from=trade_from)
