"""Configuration: frozen dataclasses loaded from YAML, unknown keys rejected, a stable hash.

All rates and weights are **fractions** (``0.01`` = 1 %). ``config/strategies.yaml`` in the repository mirrors
the spec's YAML blocks with exactly these defaults (a test keeps them in sync).

    >>> cfg = Config.from_yaml("config/strategies.yaml")
    >>> cfg = cfg.with_overrides({"trend.sma_slow": 100, "execution.slippage": 0.0})
    >>> cfg.config_hash()
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

from eternal_engine._hints import did_you_mean
from eternal_engine.errors import ConfigError

_frozen = dataclass(frozen=True, kw_only=True, slots=True)


@_frozen
class TrendConfig:
    """TREND engine (spec 3.2): 50/200 SMA + ADX filter on perps, ATR trailing stop, 1 % risk per trade."""

    symbols: tuple[str, ...] = ("BTC-PERP", "ETH-PERP")
    sma_fast: int = 50
    sma_slow: int = 200
    adx_window: int = 14
    adx_threshold: float = 25.0
    atr_window: int = 14
    atr_stop_mult: float = 3.0
    risk_per_trade: float = 0.01  # of sleeve equity, with the initial stop distance as the risk
    max_position: float = 0.5  # notional per asset, fraction of sleeve equity
    max_leverage: float = 2.0  # gross notional of the sleeve / sleeve equity
    allow_short: bool = True  # shorts only ever on perps


@_frozen
class CoreHodlConfig:
    """CORE-HODL (spec 3.1). Runs from the four-engine release; configured here so the YAML mirrors the spec."""

    weights: dict[str, float] = field(default_factory=lambda: {"BTC": 2 / 3, "ETH": 1 / 3})
    rebalance_threshold: float = 0.10
    rebalance_calendar: str = "quarterly"
    order_type: str = "limit_maker"
    eth_staking: bool = True
    minimum_yield_threshold: float = 0.02


@_frozen
class FundingConfig:
    """FUNDING (spec 3.3). Runs from the four-engine release."""

    underlyings: tuple[str, ...] = ("BTC", "ETH", "SOL")
    entry_rate_8h: float = 0.0001
    consecutive_positive_periods: int = 2
    max_hold_days: float = 14.0
    exit_premium: float = 0.02
    compound_ratio: float = 0.5


@_frozen
class TacticalConfig:
    """TACTICAL (spec 3.4). Runs from the four-engine release."""

    drawdown_levels: tuple[float, ...] = (0.5, 0.7)
    deploy_fractions: tuple[float, ...] = (0.5, 0.5)
    fear_greed_below: float = 20.0
    funding_below_8h: float = -0.0005
    funding_days: float = 3.0
    weights: dict[str, float] = field(default_factory=lambda: {"BTC": 0.8, "ETH": 0.2})
    profit_target: float = 1.0
    time_limit_days: float = 365.0


@_frozen
class PortfolioConfig:
    """Capital and the sleeves' target weights (spec 2.3)."""

    initial_capital: float = 100_000.0
    allocation: dict[str, float] = field(
        default_factory=lambda: {"core_hodl": 0.60, "trend": 0.20, "funding": 0.15, "tactical": 0.05}
    )


@_frozen
class ExecutionConfig:
    """Fills and costs. Fees are Bybit's base-tier defaults (fractions of notional)."""

    fill: str = "next_open"  # decision on the close of bar t; fill at the open ("next_open") or close of t+1
    slippage: float = 0.0005  # fraction of price, against us, on every taker fill (market and stop orders)
    spot_taker_fee: float = 0.001
    spot_maker_fee: float = 0.001
    perp_taker_fee: float = 0.00055
    perp_maker_fee: float = 0.0002


FILL_MODES = ("next_open", "next_close")
ENGINES = ("core_hodl", "trend", "funding", "tactical")


@_frozen
class Config:
    """The whole configuration. Build from YAML with :meth:`from_yaml` or from a dict with :meth:`from_dict`."""

    portfolio: PortfolioConfig = field(default_factory=PortfolioConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    core_hodl: CoreHodlConfig = field(default_factory=CoreHodlConfig)
    trend: TrendConfig = field(default_factory=TrendConfig)
    funding: FundingConfig = field(default_factory=FundingConfig)
    tactical: TacticalConfig = field(default_factory=TacticalConfig)

    def __post_init__(self):
        check_config(self)

    # ------------------------------------------------------------- builders
    @classmethod
    def from_dict(cls, data: dict | None) -> "Config":
        return _build(cls, data or {}, "")

    @classmethod
    def from_yaml(cls, path) -> "Config":
        import yaml

        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from e
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of sections, got {type(data).__name__}")
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        return _plain(self)

    def with_overrides(self, overrides: dict) -> "Config":
        """A copy with dotted keys replaced: ``{"trend.sma_slow": 100}``."""
        data = self.to_dict()
        for key, value in overrides.items():
            parts = str(key).split(".")
            node, path = data, ""
            for p in parts[:-1]:
                if not isinstance(node, dict) or p not in node:
                    raise ConfigError(f"unknown config key {key!r}{did_you_mean(p, list(node))}")
                node, path = node[p], f"{path}{p}."
            if parts[-1] not in node:
                raise ConfigError(
                    f"unknown config key {key!r}{did_you_mean(path + parts[-1], [path + k for k in node])}"
                )
            node[parts[-1]] = value
        return Config.from_dict(data)

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of the config (stable across runs and machines)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------- validation
def check_config(cfg: Config) -> None:
    """Cross-field checks; each failure names the key and the fix."""
    t, e, p = cfg.trend, cfg.execution, cfg.portfolio
    _require(0 < t.sma_fast < t.sma_slow, "trend.sma_fast must be positive and below trend.sma_slow")
    _require(t.adx_window >= 1 and t.atr_window >= 1, "trend.adx_window and trend.atr_window must be >= 1")
    _require(t.atr_stop_mult > 0, "trend.atr_stop_mult must be > 0")
    _require(0 < t.risk_per_trade <= 1, "trend.risk_per_trade is a fraction in (0, 1], e.g. 0.01 for 1 %")
    _require(0 < t.max_position <= t.max_leverage, "trend.max_position must be in (0, trend.max_leverage]")
    _require(0 < t.max_leverage <= 100, "trend.max_leverage must be in (0, 100]")
    _require(len(t.symbols) > 0, "trend.symbols must list at least one instrument, e.g. ['BTC-PERP']")
    _require(e.fill in FILL_MODES, f"execution.fill must be one of {FILL_MODES}{did_you_mean(e.fill, FILL_MODES)}")
    for name in ("slippage", "spot_taker_fee", "spot_maker_fee", "perp_taker_fee", "perp_maker_fee"):
        _require(0 <= getattr(e, name) < 0.1, f"execution.{name} is a fraction in [0, 0.1), e.g. 0.00055")
    _require(p.initial_capital > 0, "portfolio.initial_capital must be > 0")
    for k in p.allocation:
        _require(k in ENGINES, f"portfolio.allocation has unknown sleeve {k!r}{did_you_mean(k, ENGINES)}")
    _require(all(v >= 0 for v in p.allocation.values()), "portfolio.allocation weights must be >= 0")
    _require(abs(sum(p.allocation.values()) - 1) < 1e-9, "portfolio.allocation weights must sum to 1")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _build(cls, data: dict, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(
                f"unknown config key {prefix + str(key)!r}{did_you_mean(prefix + str(key), [prefix + n for n in names])}"
            )
        kwargs[key] = _coerce(hints[key], value, prefix + key)
    return cls(**kwargs)


def _coerce(tp, value, key):
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, key + ".")
    origin = typing.get_origin(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number (a fraction where it is a rate), got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        _, vt = typing.get_args(tp)
        return {str(k): _coerce(vt, v, f"{key}.{k}") for k, v in value.items()}
    raise ConfigError(f"{key}: unsupported type {tp}")


def _plain(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj
