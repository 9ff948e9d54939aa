"""Where every dollar came from: per-sleeve P&L attribution, flows, time- and money-weighted returns.

All figures are rebuilt from the simulator's records (fills, funding payments, events), so they check the
simulator rather than repeat it: for each sleeve ``start + flows + pnl == end`` to rounding, which the tests
assert. Components:

* ``price``: mark-to-market P&L of the positions, ``sum(qty * (last close - fill price))`` over fills, except
  for FUNDING, whose P&L splits into ``price`` (the net delta of its pairs times the spot price moves:
  ``sum(qty * (last spot close - spot close at the fill))``) and ``basis`` (the rest: the perp's premium over
  spot moving, and fill prices against the bar's close);
* ``funding``: funding received (> 0) or paid; ``fees``: trading fees paid (a cost, subtracted), liquidation
  fees excluded; ``liquidation``: insurance-fund cover minus liquidation fees; ``staking``: ETH staking yield;
* flows (not profit): ``contributions`` (DCA), ``transfers_in``, ``transfers_out``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from eternal_engine.sim.records import (
    EV_CONTRIBUTION, EV_LIQUIDATION, EV_STAKING, EV_TRANSFER, PRICE_LIQUIDATION,
)

COMPONENTS = ("price", "basis", "funding", "fees", "staking", "liquidation")


def contributions_per_bar(events, n_bars: int) -> np.ndarray:
    flow = np.zeros(n_bars)
    c = events[events["kind"] == EV_CONTRIBUTION]
    np.add.at(flow, c["bar"], c["amount"])
    return flow


def time_weighted_returns(equity: np.ndarray, initial: float, contributions: np.ndarray) -> np.ndarray:
    """``(E_t - C_t) / E_{t-1} - 1``: a contribution paid on bar t's close is never a return."""
    prev = np.empty_like(equity)
    prev[0] = initial
    prev[1:] = equity[:-1]
    return (equity - contributions) / prev - 1.0


def money_weighted_return(index: pd.DatetimeIndex, equity: np.ndarray, initial: float,
                          contributions: np.ndarray, bars: np.ndarray | None = None) -> float:
    """Annualised internal rate of return of the investor's cash flows (initial capital at the first bar's
    open, contributions when paid, the final equity at the last bar), in 365.25-day years. NaN if undefined.
    ``bars``: the sorted bars that may hold a contribution, if known (saves a scan of ``contributions``)."""
    ns = index.as_unit("ns").asi8
    k = np.flatnonzero(contributions) if bars is None else bars[contributions[bars] != 0]
    times = (np.concatenate([ns[:1], ns[k], ns[-1:]]) - ns[0]) / (365.25 * 86_400e9)  # the flows' times only
    flows = np.concatenate([[-initial], -contributions[k], [equity[-1]]])
    if not times[-1] > 0 or not equity[-1] > 0:
        return float("nan")

    def npv(rate):
        return float(np.sum(flows * np.exp(-np.log1p(rate) * times)))

    try:
        return float(brentq(npv, -0.9999, 1e6, xtol=1e-12, maxiter=500))
    except ValueError:
        return float("nan")


def attribution(result) -> pd.DataFrame:
    """Per-sleeve table: ``start``, flows, the P&L components, ``end`` and ``check`` (should be ~0)."""
    m = result.market
    close_last = m.arrays.close[-1]
    f, p, ev = result.fill_records, result.funding_records, result.event_records
    sleeves = result.sleeves
    rows = []
    pair_of = _funding_pairs(result)
    for s, name in enumerate(sleeves):
        fs = f[f["sleeve"] == s]
        pnl = fs["qty"] * (close_last[fs["col"]] - fs["price"])
        price = float(pnl.sum())
        basis = 0.0
        if name == "funding" and len(fs):
            spot = np.array([pair_of.get(int(c), int(c)) for c in fs["col"]], dtype=np.int64)
            delta = float((fs["qty"] * (close_last[spot] - m.arrays.close[fs["bar"], spot])).sum())
            basis, price = price - delta, delta
        liq = fs["price_type"] == PRICE_LIQUIDATION
        es = ev[ev["sleeve"] == s]
        cover = float(es["amount"][es["kind"] == EV_LIQUIDATION].sum())
        row = {
            "start": float(result.initial_cash[s]),
            "contributions": float(es["amount"][es["kind"] == EV_CONTRIBUTION].sum()),
            "transfers_in": float(ev["amount"][(ev["kind"] == EV_TRANSFER) & (ev["other"] == s)].sum()),
            "transfers_out": -float(es["amount"][es["kind"] == EV_TRANSFER].sum()),
            "price": price, "basis": basis,
            "funding": float(p["amount"][p["sleeve"] == s].sum()),
            "fees": -float(fs["fee"][~liq].sum()),
            "staking": float(es["amount"][es["kind"] == EV_STAKING].sum()),
            "liquidation": cover - float(fs["fee"][liq].sum()),
            "end": float(result._sleeve_equity[-1, s]),
        }
        row["check"] = row["end"] - sum(v for k, v in row.items() if k not in ("end",))
        rows.append(row)
    df = pd.DataFrame(rows, index=pd.Index(sleeves, name="sleeve"))
    df.loc["portfolio"] = df.sum()
    return df


def _funding_pairs(result) -> dict:
    """perp column -> spot column of the same underlying, for FUNDING's pairs."""
    syms = result.market.symbols
    out = {}
    for u in result.config.funding.underlyings:
        if f"{u}-PERP" in syms and f"{u}-SPOT" in syms:
            out[syms.index(f"{u}-PERP")] = syms.index(f"{u}-SPOT")
    return out
