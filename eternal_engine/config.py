"""Configuration: frozen dataclasses loaded from YAML, unknown keys rejected, a stable hash.

All rates and weights are **fractions** (``0.01`` = 1 %). ``config/strategies.yaml`` in the repository mirrors
the spec's YAML blocks with exactly these defaults (a test keeps them in sync).

    >>> cfg = Config.from_yaml("config/strategies.yaml")
    >>> cfg = cfg.with_overrides({"trend.sma_slow": 100, "execution.slippage": 0.0})
    >>> cfg.config_hash()
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import operator
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
    """CORE-HODL (spec 3.1): BTC/ETH spot at fixed weights, drift + calendar rebalancing, ETH staking."""

    weights: dict[str, float] = field(default_factory=lambda: {"BTC": 2 / 3, "ETH": 1 / 3})
    rebalance_threshold: float = 0.10  # absolute drift of an asset's weight within the sleeve
    rebalance_calendar: str = "quarterly"  # fallback: first bar of each new period
    order_type: str = "limit_maker"  # post-only limit at the decision close (maker fee), or "market"
    accumulate_threshold: float = 0.01  # idle cash above this fraction of the sleeve is invested
    min_order_value: float = 10.0  # quote currency; smaller orders are skipped
    eth_staking: bool = True
    staking_apr: float = 0.03  # assumed ETH staking yield, accrued daily on the ETH held
    minimum_yield_threshold: float = 0.02  # stake only when staking_apr is at least this


@_frozen
class FundingConfig:
    """FUNDING (spec 3.3). Runs from the four-engine release."""

    underlyings: tuple[str, ...] = ("BTC", "ETH", "SOL")
    entry_rate_8h: float = 0.0001
    consecutive_positive_periods: int = 2
    max_hold_days: float = 14.0
    exit_premium: float = 0.02  # exit when perp close / spot close - 1 exceeds this
    compound_ratio: float = 0.5  # share of a closed position's net funding kept; the rest goes to TACTICAL
    perp_leverage: float = 2.0  # the short leg's initial margin is notional / perp_leverage
    cash_buffer: float = 0.005  # entries leave this share of the slot free for price moves before the fill


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
    signal_symbol: str = "BTC-SPOT"  # its drawdown from the all-time high triggers deployments
    funding_symbol: str = "BTC-PERP"  # its funding rate gives the deeply-negative-funding trigger ("" = off)
    rearm_drawdown: float = 0.25  # after an exit, triggers re-arm once the drawdown is back below this


@_frozen
class PortfolioConfig:
    """Capital and the sleeves' target weights (spec 2.3)."""

    initial_capital: float = 100_000.0
    allocation: dict[str, float] = field(
        default_factory=lambda: {"core_hodl": 0.60, "trend": 0.20, "funding": 0.15, "tactical": 0.05}
    )
    dca_amount: float = 1000.0  # monthly contribution, external cash (0 turns DCA off)
    dca_day: int = 1  # day of the month; paid on the first bar on or after it


@_frozen
class OrchestratorConfig:
    """Capital orchestrator (spec 2.3): sleeve rebalancing on drift with a calendar fallback, rotation tilt."""

    rebalance_threshold: float = 0.05  # absolute drift of a sleeve's share of the portfolio
    rebalance_calendar: str = "quarterly"
    rotation: bool = False  # performance-based tilt of the target weights
    rotation_lookback_days: int = 90
    rotation_max_tilt: float = 0.25  # a target moves by at most this fraction of itself


@_frozen
class RiskConfig:
    """Governance (spec 2.4, 6): drawdown breaker ladder, loss limits, pre-trade checks, sizing."""

    breaker_levels: tuple[float, ...] = (0.10, 0.15, 0.20, 0.25)  # portfolio drawdown of L1..L4
    size_multipliers: tuple[float, ...] = (0.75, 0.5)  # at L1 and L2
    l1_stop_widen: float = 1.5  # trailing-stop ATR multiple is multiplied by this from L1
    recovery_hysteresis: float = 0.025  # a level clears once the drawdown is this far below its threshold
    l4_reset: str = "cooldown"  # "cooldown": resume after l4_cooldown_days (recorded); "manual": never in a run
    l4_cooldown_days: float = 90.0
    daily_loss_limit: float = 0.02
    weekly_loss_limit: float = 0.05
    max_concurrent_positions: int = 6  # TREND and FUNDING positions across the portfolio
    min_confidence: float = 0.25  # TREND's confidence is ADX / 100
    kelly_fraction: float = 0.125
    kelly_min_trades: int = 20  # until then sizing is min(1 % risk, cap)
    kelly_shadow: bool = False  # also learn from the trades TREND's signals would make while Kelly sizes them at 0
    max_position_pct: float = 0.05  # of portfolio equity, notional per position (Appendix B)
    max_leverage: float = 2.0  # cap for trend.max_leverage and funding.perp_leverage


@_frozen
class PerpConfig:
    """Linear perpetual margin (Bybit base tier)."""

    maintenance_margin_rate: float = 0.005
    liquidation_fee: float = 0.005  # of the liquidated notional, capped by what the sleeve has left


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
CALENDARS = ("none", "monthly", "quarterly", "yearly")
ORDER_TYPES = ("limit_maker", "market")
L4_RESETS = ("manual", "cooldown")
ENGINES = ("core_hodl", "trend", "funding", "tactical")


@_frozen
class Config:
    """The whole configuration. Build from YAML with :meth:`from_yaml` or from a dict with :meth:`from_dict`."""

    portfolio: PortfolioConfig = field(default_factory=PortfolioConfig)
    orchestrator: OrchestratorConfig = field(default_factory=OrchestratorConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    perp: PerpConfig = field(default_factory=PerpConfig)
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
        """A copy with dotted keys replaced: ``{"trend.sma_slow": 100}``.

        ``section.field`` keys replace fields of the section (only the new values are coerced, so sweeps can
        build thousands of configs quickly); deeper keys (``portfolio.allocation.trend``) go through the dict."""
        changes: dict[str, dict] = {}
        deep = {}
        for key, value in overrides.items():
            parts = str(key).split(".")
            if len(parts) == 2 and parts[0] in _SECTIONS and parts[1] in _field_names(_SECTIONS[parts[0]]):
                changes.setdefault(parts[0], {})[parts[1]] = value
            else:
                deep[key] = value
        if deep:
            return self._with_deep_overrides({**overrides})
        sections = {name: getattr(self, name) for name in _SECTIONS}
        for name, kv in changes.items():
            cls = _SECTIONS[name]
            hints = _type_hints(cls)
            sections[name] = dataclasses.replace(
                sections[name], **{k: _coerce(hints[k], v, f"{name}.{k}") for k, v in kv.items()})
        new = object.__new__(Config)  # this config is valid: only the checks reading changed sections run
        for name, section in sections.items():
            object.__setattr__(new, name, section)
        check_config(new, changes)
        return new

    def _with_deep_overrides(self, overrides: dict) -> "Config":
        data = self.to_dict()
        for key, value in overrides.items():
            parts = str(key).split(".")
            node, path = data, ""
            for p in parts[:-1]:
                if not isinstance(node, dict) or p not in node:
                    raise ConfigError(f"unknown config key {key!r}{did_you_mean(p, list(node))}")
                node, path = node[p], f"{path}{p}."
            if not isinstance(node, dict) or parts[-1] not in node:
                keys = list(node) if isinstance(node, dict) else []
                raise ConfigError(
                    f"unknown config key {key!r}{did_you_mean(path + parts[-1], [path + k for k in keys])}"
                )
            node[parts[-1]] = value
        return Config.from_dict(data)

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of the config (stable across runs and machines): ``{"core_hodl":{...},
        ...,"trend":{...}}``, sections in name order. Configs sharing every section but the last (a TREND sweep)
        share the hash of the rest, fed once."""
        *head, last = _hash_sections(self)
        key = tuple(map(id, head))  # the memo keeps these sections alive, so their ids name them alone
        hit = _HASH_PREFIX_MEMO.get(key)
        if hit is None:
            if len(_HASH_PREFIX_MEMO) > 256:
                _HASH_PREFIX_MEMO.clear()
            text = "{" + "".join(f'"{name}":{_section_json(sec)},' for name, sec in zip(_HASH_ORDER, head))
            hit = _HASH_PREFIX_MEMO[key] = (head, hashlib.sha256(text.encode()))
        h = hit[1].copy()
        h.update(f'"{_HASH_ORDER[-1]}":{_section_json(last)}}}'.encode())
        return h.hexdigest()


_SECTIONS = typing.get_type_hints(Config)  # section name -> its dataclass
_HASH_ORDER = tuple(sorted(_SECTIONS))
_hash_sections = operator.attrgetter(*_HASH_ORDER)
_HASH_PREFIX_MEMO: dict[tuple, tuple[list, object]] = {}  # ids of all sections but the last -> (them, sha256 fed)
_JSON_MEMO: dict[int, tuple[object, str]] = {}
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))  # made once: json.dumps makes one per call
_DATACLASS_FIELDS: dict[type, tuple[str, ...] | bool] = {}


def _section_json(section) -> str:
    """Canonical JSON of one section, memoised per section object (sweeps share the unchanged ones)."""
    hit = _JSON_MEMO.get(id(section))
    if hit is not None and hit[0] is section:
        return hit[1]
    text = _CANONICAL_JSON.encode(_plain(section))
    if len(_JSON_MEMO) > 4096:
        _JSON_MEMO.clear()
    _JSON_MEMO[id(section)] = (section, text)
    return text


@functools.cache
def _type_hints(cls) -> dict:
    return typing.get_type_hints(cls)


@functools.cache
def _field_names(cls) -> frozenset:
    return frozenset(f.name for f in dataclasses.fields(cls))


# ---------------------------------------------------------------- validation
def check_config(cfg: Config, sections=None) -> None:
    """Cross-field checks; each failure names the key and the fix. ``sections``: run only the checks that read
    one of these sections (the others passed when the unchanged sections were first checked)."""
    for reads, check in _CHECKS:
        if sections is None or not reads.isdisjoint(sections):
            check(cfg)


def _check_trend(cfg: Config) -> None:
    t = cfg.trend
    _require(0 < t.sma_fast < t.sma_slow, "trend.sma_fast must be positive and below trend.sma_slow")
    _require(t.adx_window >= 1 and t.atr_window >= 1, "trend.adx_window and trend.atr_window must be >= 1")
    _require(t.atr_stop_mult > 0, "trend.atr_stop_mult must be > 0")
    _require(0 < t.risk_per_trade <= 1, "trend.risk_per_trade is a fraction in (0, 1], e.g. 0.01 for 1 %")
    _require(0 < t.max_position <= t.max_leverage, "trend.max_position must be in (0, trend.max_leverage]")
    _require(0 < t.max_leverage <= 100, "trend.max_leverage must be in (0, 100]")
    _require(len(t.symbols) > 0, "trend.symbols must list at least one instrument, e.g. ['BTC-PERP']")
    _require(len(set(t.symbols)) == len(t.symbols), lambda: "trend.symbols lists " + ", ".join(
        repr(x) for x in dict.fromkeys(x for x in t.symbols if t.symbols.count(x) > 1)) + " more than once")


def _check_execution_portfolio(cfg: Config) -> None:
    e, p = cfg.execution, cfg.portfolio
    _require(e.fill in FILL_MODES, lambda: f"execution.fill must be one of {FILL_MODES}{did_you_mean(e.fill, FILL_MODES)}")
    for name in ("slippage", "spot_taker_fee", "spot_maker_fee", "perp_taker_fee", "perp_maker_fee"):
        _require(0 <= getattr(e, name) < 0.1, f"execution.{name} is a fraction in [0, 0.1), e.g. 0.00055")
    _require(p.initial_capital > 0, "portfolio.initial_capital must be > 0")
    for k in p.allocation:
        _require(k in ENGINES, lambda: f"portfolio.allocation has unknown sleeve {k!r}{did_you_mean(k, ENGINES)}")
    _require(all(v >= 0 for v in p.allocation.values()), "portfolio.allocation weights must be >= 0")
    _require(abs(sum(p.allocation.values()) - 1) < 1e-9,
             f"portfolio.allocation weights must sum to 1 (they sum to {sum(p.allocation.values()):.6g})")
    _require(p.dca_amount >= 0, "portfolio.dca_amount must be >= 0 (0 turns DCA off)")
    _require(1 <= p.dca_day <= 28, f"portfolio.dca_day must be in 1..28, got {p.dca_day}")


def _check_engines(cfg: Config) -> None:
    c, f, tc, o = cfg.core_hodl, cfg.funding, cfg.tactical, cfg.orchestrator
    for name, w in (("core_hodl.weights", c.weights), ("tactical.weights", tc.weights)):
        _require(len(w) > 0 and all(v >= 0 for v in w.values()), f"{name} must map underlyings to weights >= 0")
        _require(abs(sum(w.values()) - 1) < 1e-9, f"{name} must sum to 1 (they sum to {sum(w.values()):.6g})")
    for name, value in (("core_hodl.rebalance_calendar", c.rebalance_calendar),
                        ("orchestrator.rebalance_calendar", o.rebalance_calendar)):
        _require(value in CALENDARS, lambda: f"{name} is {value!r}; allowed: {CALENDARS}{did_you_mean(value, CALENDARS)}")
    _require(c.order_type in ORDER_TYPES,
             lambda: f"core_hodl.order_type is {c.order_type!r}; allowed: {ORDER_TYPES}"
                     f"{did_you_mean(c.order_type, ORDER_TYPES)}")
    for name in ("rebalance_threshold", "accumulate_threshold", "staking_apr", "minimum_yield_threshold"):
        _require(0 <= getattr(c, name) < 1, f"core_hodl.{name} is a fraction in [0, 1)")
    _require(c.min_order_value >= 0, "core_hodl.min_order_value must be >= 0")
    _require(len(f.underlyings) > 0, "funding.underlyings must list at least one underlying, e.g. ['BTC']")
    _require(len(set(f.underlyings)) == len(f.underlyings), lambda: "funding.underlyings lists " + ", ".join(
        repr(x) for x in dict.fromkeys(x for x in f.underlyings if f.underlyings.count(x) > 1)) + " more than once")
    _require(f.consecutive_positive_periods >= 1, "funding.consecutive_positive_periods must be >= 1")
    _require(f.max_hold_days > 0 and f.exit_premium > 0, "funding.max_hold_days and funding.exit_premium must be > 0")
    _require(0 <= f.compound_ratio <= 1, "funding.compound_ratio is a fraction in [0, 1]")
    _require(f.perp_leverage > 0, "funding.perp_leverage must be > 0")
    _require(0 <= f.cash_buffer < 0.5, "funding.cash_buffer is a fraction in [0, 0.5), e.g. 0.005")
    lv, fr = tc.drawdown_levels, tc.deploy_fractions
    _require(len(lv) == len(fr) and len(lv) > 0,
             "tactical.drawdown_levels and tactical.deploy_fractions must have the same length (>= 1)")
    _require(all(0 < x < 1 for x in lv) and list(lv) == sorted(set(lv)),
             f"tactical.drawdown_levels must be increasing fractions in (0, 1), got {list(lv)}")
    _require(all(0 < x <= 1 for x in fr) and sum(fr) <= 1 + 1e-9,
             f"tactical.deploy_fractions must be in (0, 1] and sum to at most 1, got {list(fr)}")
    _require(0 < tc.rearm_drawdown <= lv[0], "tactical.rearm_drawdown must be in (0, tactical.drawdown_levels[0]]")
    _require(tc.profit_target > 0 and tc.time_limit_days > 0, "tactical.profit_target and time_limit_days must be > 0")
    _require(tc.funding_days > 0, "tactical.funding_days must be > 0")
    _require(0 <= o.rebalance_threshold < 1, "orchestrator.rebalance_threshold is a fraction in [0, 1)")
    _require(o.rotation_lookback_days >= 1, "orchestrator.rotation_lookback_days must be >= 1")
    _require(0 <= o.rotation_max_tilt < 1, "orchestrator.rotation_max_tilt is a fraction in [0, 1)")


def _check_leverage(cfg: Config) -> None:
    t, f = cfg.trend, cfg.funding
    _require(t.max_leverage <= cfg.risk.max_leverage,
             lambda: f"trend.max_leverage is {t.max_leverage}; allowed: at most risk.max_leverage "
                     f"({cfg.risk.max_leverage})")
    _require(f.perp_leverage <= cfg.risk.max_leverage,
             lambda: f"funding.perp_leverage is {f.perp_leverage}; allowed: at most risk.max_leverage "
                     f"({cfg.risk.max_leverage})")


def _check_risk(cfg: Config) -> None:
    r, pp = cfg.risk, cfg.perp
    lv = list(r.breaker_levels)
    _require(len(lv) == 4 and all(0 < x < 1 for x in lv) and lv == sorted(set(lv)),
             f"risk.breaker_levels must be 4 strictly increasing drawdowns in (0, 1), got {lv}")
    m = list(r.size_multipliers)
    _require(len(m) == 2 and all(0 < x <= 1 for x in m) and m[1] <= m[0],
             f"risk.size_multipliers must be [L1, L2] in (0, 1] with L2 <= L1, got {m}")
    _require(r.l1_stop_widen >= 1, "risk.l1_stop_widen must be >= 1 (1 keeps the stops)")
    _require(0 <= r.recovery_hysteresis < lv[0], "risk.recovery_hysteresis must be in [0, risk.breaker_levels[0])")
    _require(r.l4_reset in L4_RESETS, lambda: f"risk.l4_reset is {r.l4_reset!r}; allowed: {L4_RESETS}{did_you_mean(r.l4_reset, L4_RESETS)}")
    _require(r.l4_cooldown_days > 0, "risk.l4_cooldown_days must be > 0")
    _require(0 < r.daily_loss_limit <= r.weekly_loss_limit < 1,
             "risk.daily_loss_limit and risk.weekly_loss_limit must satisfy 0 < daily <= weekly < 1")
    _require(r.max_concurrent_positions >= 1, "risk.max_concurrent_positions must be >= 1")
    _require(0 <= r.min_confidence <= 1, "risk.min_confidence is in [0, 1]")
    _require(0 < r.kelly_fraction <= 1, "risk.kelly_fraction must be in (0, 1], e.g. 0.125 for 1/8 Kelly")
    _require(r.kelly_min_trades >= 1, "risk.kelly_min_trades must be >= 1")
    _require(0 < r.max_position_pct <= r.max_leverage, "risk.max_position_pct must be in (0, risk.max_leverage]")
    _require(0 < r.max_leverage <= 100, "risk.max_leverage must be in (0, 100]")
    _require(0 < pp.maintenance_margin_rate < 1, "perp.maintenance_margin_rate is a fraction in (0, 1)")
    _require(0 <= pp.liquidation_fee < 1, "perp.liquidation_fee is a fraction in [0, 1)")


# each check with the sections it reads
_CHECKS = ((frozenset({"trend"}), _check_trend),
           (frozenset({"execution", "portfolio"}), _check_execution_portfolio),
           (frozenset({"core_hodl", "funding", "tactical", "orchestrator"}), _check_engines),
           (frozenset({"trend", "funding", "risk"}), _check_leverage),
           (frozenset({"risk", "perp"}), _check_risk))


def _require(ok: bool, message) -> None:
    """``message``: a string, or a function making it (for messages costly to build, e.g. with hints)."""
    if not ok:
        raise ConfigError(message() if callable(message) else message)


def _build(cls, data: dict, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {type(data).__name__}")
    hints = _type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(
                f"unknown config key {prefix + str(key)!r}{did_you_mean(prefix + str(key), [prefix + n for n in names])}"
            )
        kwargs[key] = _coerce(hints[key], value, prefix + key)
    return cls(**kwargs)


_SCALARS = (bool, int, float, str)
_ATOMS = frozenset({bool, int, float, str, type(None)})


def _coerce(tp, value, key):
    if type(value) is tp and tp in _SCALARS:
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # numpy scalars, e.g. values read back from a sweep's table
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
    names = _DATACLASS_FIELDS.get(type(obj))
    if names is None:  # first object of this type: its field names, or False if it is not a dataclass
        names = _DATACLASS_FIELDS[type(obj)] = dataclasses.is_dataclass(obj) and tuple(
            f.name for f in dataclasses.fields(obj))
    if names is not False:
        out = {}
        for name in names:
            value = getattr(obj, name)
            out[name] = value if type(value) in _ATOMS else _plain(value)
        return out
    if isinstance(obj, tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj
