"""Config: YAML mirrors the defaults, unknown keys and bad types are rejected, the hash is stable."""
from pathlib import Path

import pytest

from eternal_engine.config import Config
from eternal_engine.errors import ConfigError

REPO_YAML = Path(__file__).parents[1] / "config" / "strategies.yaml"


def test_repository_yaml_equals_the_defaults():
    assert Config.from_yaml(REPO_YAML) == Config()


def test_hash_is_the_sha256_of_the_canonical_json_whatever_the_memos_hold():
    import gc
    import hashlib
    import json

    def canonical(cfg):
        text = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    overrides = [{}, {"trend.sma_slow": 150}, {"risk.kelly_fraction": 0.25}, {"portfolio.dca_amount": 0.0},
                 {"core_hodl.weights": {"BTC": 0.5, "ETH": 0.5}}, {"execution.slippage": -0.0}]
    for _ in range(3):  # configs die between rounds: ids of dead sections get reused by new ones
        base = Config()  # its variants share their unchanged sections: the memos' case
        for over in overrides:
            cfg = base.with_overrides(over)
            assert cfg.config_hash() == canonical(cfg), over
        del base, cfg
        gc.collect()


def test_hash_is_stable_and_sensitive():
    assert Config().config_hash() == Config.from_yaml(REPO_YAML).config_hash()
    assert Config().config_hash() != Config().with_overrides({"trend.sma_slow": 201}).config_hash()
    assert len(Config().config_hash()) == 64


@pytest.mark.parametrize("data, message", [
    ({"trned": {}}, "did you mean 'trend'"),
    ({"trend": {"adx_treshold": 20}}, "did you mean 'trend.adx_threshold'"),
    ({"trend": {"sma_slow": "200"}}, "must be an integer"),
    ({"trend": {"sma_slow": 20.5}}, "must be an integer"),
    ({"trend": {"allow_short": "yes"}}, "true or false"),
    ({"trend": {"symbols": "BTC-PERP"}}, "must be a list"),
    ({"trend": {"symbols": ["BTC-PERP", "ETH-PERP", "BTC-PERP"]}}, "trend.symbols lists 'BTC-PERP' more than once"),
    ({"funding": {"underlyings": ["BTC", "ETH", "ETH"]}}, "funding.underlyings lists 'ETH' more than once"),
    ({"trend": {"sma_fast": 300}}, "below trend.sma_slow"),
    ({"trend": {"risk_per_trade": 1.5}}, "fraction"),
    ({"execution": {"fill": "next_opn"}}, "did you mean 'next_open'"),
    ({"portfolio": {"allocation": {"trend": 0.5}}}, "sum to 1"),
    ({"portfolio": {"allocation": {"trends": 1.0}}}, "did you mean 'trend'"),
    ({"portfolio": {"allocation": {"core_hodl": 0.7, "trend": 0.2, "funding": 0.15, "tactical": 0.05}}},
     "sum to 1 \\(they sum to 1.1\\)"),
    ({"trend": {"max_leverage": 3.0}}, "trend.max_leverage is 3.0; allowed: at most risk.max_leverage \\(2.0\\)"),
    ({"funding": {"perp_leverage": 5.0}}, "funding.perp_leverage is 5.0; allowed"),
    ({"risk": {"breaker_levels": [0.1, 0.2, 0.15, 0.25]}}, "4 strictly increasing"),
    ({"risk": {"breaker_levels": [0.1, 0.15, 0.2]}}, "4 strictly increasing"),
    ({"risk": {"size_multipliers": [0.5, 0.75]}}, "L2 <= L1"),
    ({"risk": {"l4_reset": "manul"}}, "did you mean 'manual'"),
    ({"risk": {"daily_loss_limit": 0.1, "weekly_loss_limit": 0.05}}, "daily <= weekly"),
    ({"core_hodl": {"weights": {"BTC": 0.5, "ETH": 0.4}}}, "core_hodl.weights must sum to 1"),
    ({"core_hodl": {"rebalance_calendar": "quartely"}}, "did you mean 'quarterly'"),
    ({"tactical": {"drawdown_levels": [0.7, 0.5]}}, "increasing fractions"),
    ({"tactical": {"deploy_fractions": [0.5]}}, "same length"),
    ({"portfolio": {"dca_day": 31}}, "dca_day must be in 1..28"),
    ({"perp": {"maintenance_margin_rate": 0.0}}, "maintenance_margin_rate"),
])
def test_bad_configs_raise_config_error_saying_what_to_fix(data, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(data)


def test_overrides_use_dotted_keys():
    cfg = Config().with_overrides({"trend.sma_slow": 100, "execution.slippage": 0.0})
    assert cfg.trend.sma_slow == 100 and cfg.execution.slippage == 0.0
    with pytest.raises(ConfigError, match="did you mean 'trend.sma_slow'"):
        Config().with_overrides({"trend.sma_slw": 1})


@pytest.mark.parametrize("overrides, message", [
    ({"trend.sma_fast": 300}, "trend.sma_fast must be positive and below trend.sma_slow"),
    ({"risk.max_leverage": 1.5}, "trend.max_leverage is 2.0; allowed: at most risk.max_leverage"),
    ({"trend.max_leverage": 4.0}, "trend.max_leverage is 4.0; allowed: at most risk.max_leverage"),
    ({"funding.perp_leverage": 5.0}, "funding.perp_leverage is 5.0"),
    ({"risk.breaker_levels": [0.1, 0.2, 0.3, 0.4], "risk.recovery_hysteresis": 0.2}, "risk.recovery_hysteresis"),
    ({"execution.slippage": 0.5}, "execution.slippage"),
])
def test_overrides_are_checked_against_the_sections_they_leave_alone(overrides, message):
    """`with_overrides` runs only the checks reading a changed section; cross-section rules still hold."""
    with pytest.raises(ConfigError, match=message):
        Config().with_overrides(overrides)
    with pytest.raises(ConfigError, match=message):  # the same verdict as building the whole config
        Config.from_dict({**Config().to_dict(), **_nested(overrides)})


def _nested(overrides: dict) -> dict:
    data = Config().to_dict()
    for key, value in overrides.items():
        section, name = key.split(".")
        data[section][name] = value
    return data


def test_integers_are_accepted_for_floats_and_configs_are_frozen():
    cfg = Config.from_dict({"trend": {"adx_threshold": 30}})
    assert cfg.trend.adx_threshold == 30.0 and isinstance(cfg.trend.adx_threshold, float)
    with pytest.raises(AttributeError):
        cfg.trend.adx_threshold = 10.0


def test_missing_or_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Config.from_yaml(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("trend: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.from_yaml(bad)


def test_a_sleeve_trading_a_symbol_the_data_lacks_fails_before_the_run():
    import eternal_engine as ee

    btc_only = ee.load_sample().select(["BTC-SPOT", "BTC-PERP"])
    with pytest.raises(ConfigError, match="trend.symbols lists 'ETH-PERP', which the data does not have"):
        ee.backtest(btc_only)
    with pytest.raises(ConfigError, match="core_hodl.weights needs 'ETH-SPOT', which the data does not have"):
        ee.backtest(btc_only, engines=["core_hodl"])
    with pytest.raises(ConfigError, match="funding.underlyings needs 'ETH-SPOT'"):
        ee.backtest(btc_only, engines=["funding"])
    cfg = ee.Config().with_overrides({"funding.underlyings": ["BTC"], "trend.symbols": ["BTC-PERP"],
                                      "core_hodl.weights": {"BTC": 1.0}, "tactical.weights": {"BTC": 1.0}})
    assert len(ee.backtest(btc_only, cfg).equity) == len(btc_only.index)  # consistent config: runs
