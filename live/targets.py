"""From the simulator's decision on the last closed bar to the orders the account needs (sim -> intents).

Only the simulator decides. :func:`decide` runs :func:`eternal_engine.sim.simulate` over the live window and
reads, per (sleeve, symbol): the position the simulator holds at the last close plus the orders it decided on
that bar (pending for the next bar) -- the *target* -- and what it decided (reason names, order type, limit
price). :func:`plan` compares the targets with what the account holds per (sleeve, symbol) and returns the
difference as orders:

* a (sleeve, symbol) the simulator decided on this bar gets one order for ``target - held`` (several decisions
  on one bar, e.g. a trailing stop and a new entry, are netted into one order), named after its reasons;
* a (sleeve, symbol) the simulator did not touch is traded (intent ``sync``) only when it is off its target by
  more than ``sync_tolerance`` of the larger of the two (a fill the account missed, a first bar after a live
  start in the past); rounding residues stay below that;
* routing follows the simulator: its post-only limit orders (CORE-HODL with ``order_type: limit_maker``) stay
  post-only limits at the simulator's price; everything else (exits, stops, TREND, FUNDING, TACTICAL, sync) is
  a market order, sent with a slippage guard (:func:`guard_price`);
* spot holdings are counted gross (the simulator pays spot fees in quote currency, Bybit in the coin bought):
  a spot sell is capped at the coins the sleeve really holds, so it never exceeds the balance.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from eternal_engine.config import ENGINES, Config
from eternal_engine.sim.records import ORDER_LIMIT, REASON_NAMES, STATUS_UNFILLED

SYNC = "sync"


def required_symbols(config: Config, engines=None) -> tuple[str, ...]:
    """The instruments the engines read (spot first, then perps), e.g. ``("BTC-SPOT", ..., "BTC-PERP")``."""
    on = set(ENGINES if engines is None else engines)
    names: list[str] = []
    if "core_hodl" in on:
        names += [f"{u}-SPOT" for u in config.core_hodl.weights]
    if "trend" in on:
        names += list(config.trend.symbols)
    if "funding" in on:
        names += [f"{u}-{k}" for u in config.funding.underlyings for k in ("SPOT", "PERP")]
    if "tactical" in on:
        tc = config.tactical
        names += [f"{u}-SPOT" for u in tc.weights] + [tc.signal_symbol] + ([tc.funding_symbol]
                                                                            if tc.funding_symbol else [])
    unique = list(dict.fromkeys(names))
    return tuple(sorted(unique, key=lambda s: (not s.endswith("-SPOT"), unique.index(s))))


def venue(symbol: str) -> tuple[str, str]:
    """``"BTC-SPOT"`` -> ``("spot", "BTCUSDT")``, ``"BTC-PERP"`` -> ``("linear", "BTCUSDT")``."""
    from eternal_engine.data.bybit import bybit_symbol

    _, category, raw = bybit_symbol(symbol)
    return category, raw


@dataclass(frozen=True)
class Decided:
    """What the simulator decided for one (sleeve, symbol) on the decision bar."""

    reasons: tuple[str, ...]
    limit: float | None  # the post-only price when every pending order of the key is a limit order


@dataclass(frozen=True)
class Decision:
    """The simulator's view at the close of the last bar of the window."""

    bar_ts: int                                   # open time of the decision bar, ns
    targets: dict[tuple[str, str], float]         # (sleeve, symbol) -> signed qty after the pending orders
    decided: dict[tuple[str, str], Decided]       # keys the simulator decided on this bar
    close: dict[str, float]                       # last close per symbol
    engine_states: dict[str, str]                 # sleeve -> state name
    sleeve_equity: dict[str, float]
    breaker: dict = field(default_factory=dict)   # level, prev_level, peak, prev_nav, halted_since_ns
    stops: dict[tuple[str, str], float] = field(default_factory=dict)  # resting stop of each position held on
    entry_stop_dist: dict[tuple[str, str], float] = field(default_factory=dict)  # pending entry: fill -/+ this


def decide(market, config: Config, engines=None, *, fear_greed=None, trade_from=None) -> Decision:
    """Run the simulator over ``market`` (trading from ``trade_from``, the bars before it warming up the
    indicators) and read its decision on the last bar (see :func:`read_decision`)."""
    from eternal_engine.sim import simulate

    return read_decision(simulate(market, config, engines=engines, fear_greed=fear_greed, trade_from=trade_from))


def read_decision(result) -> Decision:
    market = result.market
    last = len(market.index) - 1
    symbols, sleeves = market.symbols, result.sleeves
    pos = np.zeros((len(sleeves), len(symbols)))
    f = result.fill_records
    np.add.at(pos, (f["sleeve"], f["col"]), f["qty"])
    o = result.order_records
    on_bar = o[o["bar"] == last]
    pending = on_bar[on_bar["status"] == STATUS_UNFILLED]
    np.add.at(pos, (pending["sleeve"], pending["col"]), pending["qty"])
    targets = {(sleeves[k], symbols[c]): float(pos[k, c]) for k in range(len(sleeves))
               for c in range(len(symbols))}
    decided = {}
    for k, c in sorted({(int(r["sleeve"]), int(r["col"])) for r in on_bar}):
        rows = on_bar[(on_bar["sleeve"] == k) & (on_bar["col"] == c)]
        mine = pending[(pending["sleeve"] == k) & (pending["col"] == c)]
        all_limit = len(mine) == len(rows) and bool((mine["order_type"] == ORDER_LIMIT).all())
        decided[(sleeves[k], symbols[c])] = Decided(
            reasons=tuple(REASON_NAMES[int(r)] for r in rows["reason"]),
            limit=float(mine["limit"][-1]) if all_limit else None)
    states = result.engine_states.iloc[-1]
    nav = np.cumprod(1.0 + result.returns.to_numpy())
    halts = result.events[result.events["event"] == "halt"]
    levels = result.breaker_level
    breaker = dict(level=int(levels.iloc[-1]), prev_level=int(levels.iloc[-2]) if len(levels) > 1 else 0,
                   peak=max(1.0, float(nav.max())), prev_nav=float(nav[-1]),
                   halted_since_ns=int(halts.index[-1].value) if len(halts) else -1)
    return Decision(bar_ts=int(market.index[last].value), targets=targets, decided=decided,
                    stops=_finite(result.final_stops), entry_stop_dist=_finite(result.entry_stop_dist),
                    close={s: float(market.arrays.close[last, i]) for i, s in enumerate(symbols)},
                    engine_states={s: str(states[s]) for s in sleeves},
                    sleeve_equity={s: float(v) for s, v in result.sleeve_equity.iloc[-1].items()}, breaker=breaker)


def _finite(frame) -> dict[tuple[str, str], float]:
    return {(k, c): float(v) for k, row in frame.iterrows() for c, v in row.items() if np.isfinite(v)}


@dataclass(frozen=True)
class Holding:
    """What a sleeve holds of one symbol: ``gross`` (sum of signed fill quantities, the simulator's accounting)
    and ``net`` (minus fees paid in the coin itself: the coins really there)."""

    gross: Decimal = Decimal(0)
    net: Decimal = Decimal(0)


@dataclass(frozen=True)
class Planned:
    sleeve: str
    symbol: str          # our name, e.g. "BTC-PERP"
    qty: float           # signed: > 0 buys
    intent: str          # the simulator's reasons joined by "+", or "sync"
    limit: float | None  # post-only price, None for a (guarded) market order
    reference_price: float


def plan(decision: Decision, held: dict[tuple[str, str], Holding], *, sync_tolerance: float = 0.01
         ) -> list[Planned]:
    """The orders that bring each (sleeve, symbol) from ``held`` to the decision's target (module docstring)."""
    out = []
    for key, target in sorted(decision.targets.items()):
        sleeve, symbol = key
        h = held.get(key, Holding())
        diff = target - float(h.gross)
        if symbol.endswith("-SPOT") and diff < 0:
            diff = -min(-diff, max(float(h.net), 0.0))
        if diff == 0:
            continue
        d = decision.decided.get(key)
        if d is None:
            scale = max(abs(target), abs(float(h.gross)))
            if abs(diff) <= sync_tolerance * scale:
                continue
            intent, limit = SYNC, None
        else:
            intent, limit = "+".join(d.reasons), d.limit
        out.append(Planned(sleeve, symbol, diff, intent[:64], limit, decision.close[symbol]))
    return out


def guard_price(book, side: str, qty: Decimal, max_slippage: float) -> tuple[Decimal, Decimal]:
    """The limit price of a guarded market order and the book's average price for ``qty``.

    The guard is the best opposite price moved by ``max_slippage`` (a fraction) against us: an IOC limit there
    fills like a market order but never worse. The average walks the visible levels (the last level's price for
    what they do not cover)."""
    levels = book.asks if side == "Buy" else book.bids
    if not levels:
        raise ValueError(f"{book.symbol}: the order book is empty on the {'ask' if side == 'Buy' else 'bid'} side")
    best = levels[0][0]
    slip = Decimal(str(max_slippage))
    guard = best * (1 + slip) if side == "Buy" else best * (1 - slip)
    left, cost = Decimal(qty), Decimal(0)
    for px, size in levels:
        take = min(left, size)
        cost += take * px
        left -= take
        if left <= 0:
            break
    cost += left * levels[-1][0]
    return guard, cost / Decimal(qty)
