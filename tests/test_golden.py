"""Golden regression: the README's main job (the four engines on the bundled sample) must keep its numbers.

Regenerate only on purpose, after a change that is meant to move them:
    EE_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py
and say why in the commit message.
"""
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

import eternal_engine as ee

GOLDEN = Path(__file__).parent / "golden" / "sample_portfolio_stats.json"


def current() -> dict:
    result = ee.backtest(ee.load_sample())
    stats = result.stats()
    out = {"config_hash": stats.pop("config_hash")}
    for k, v in stats.items():
        out[k] = str(v) if v is None or isinstance(v, (pd.Timestamp, pd.Timedelta)) else float(v)
    out["n_fills"] = len(result.orders)
    out["fills_qty_sum"] = float(result.orders["qty"].sum())
    out["n_events"] = len(result.events)
    out["sleeve_final_equity"] = [float(x) for x in result.sleeve_equity.iloc[-1]]
    return out


def test_sample_portfolio_backtest_matches_the_golden_file():
    got = current()
    if os.environ.get("EE_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        pytest.skip("golden file regenerated")
    want = json.loads(GOLDEN.read_text())
    assert got["config_hash"] == want["config_hash"], "the default config changed: regenerate on purpose"
    assert set(got) == set(want)
    for k, v in want.items():
        if isinstance(v, float) and not math.isnan(v):
            assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
        elif isinstance(v, float):
            assert math.isnan(got[k]), k
        elif isinstance(v, list):
            assert got[k] == pytest.approx(v, rel=1e-9), k
        else:
            assert got[k] == v, k
