"""`BacktestResult`: the simulator's records, turned into pandas objects on demand."""
from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd

from eternal_engine.sim.records import (
    EV_CONTRIBUTION, ORDER_TYPE_NAMES, PRICE_TYPE_NAMES, REASON_NAMES, STATUS_NAMES,
)


class BacktestResult:
    """Outcome of one run. Heavy DataFrames are built lazily from the record arrays and cached.

    Attributes: ``market``, ``config``, ``sleeves`` (names), ``initial_cash`` per sleeve, and the raw
    record arrays ``order_records``, ``fill_records``, ``funding_records``, ``trade_records``, ``event_records``;
    ``final_stops`` and ``entry_stop_dist`` (sleeves x symbols DataFrames, NaN where none): the stop resting
    under each position after the last bar, and the stop distance of an entry pending after it (its stop will
    rest at the fill price -/+ the distance), for live trading to place on the exchange.
    Returns are time-weighted: DCA contributions add to equity but never count as profit.
    """

    def __init__(self, market, config, sleeves, initial_cash, out, final_stops=None, entry_stop_dist=None):
        self.market = market
        self.final_stops, self.entry_stop_dist = final_stops, entry_stop_dist
        self.config = config
        self.sleeves = tuple(sleeves)
        self.initial_cash = np.asarray(initial_cash, dtype=np.float64)
        (self._sleeve_equity, self._level, self._states, self.order_records, self.fill_records,
         self.funding_records, self.trade_records, self.event_records) = out

    def __repr__(self) -> str:
        eq = self._equity
        return (f"BacktestResult({len(eq)} bars, sleeves={list(self.sleeves)}, fills={len(self.fill_records)}, "
                f"trades={len(self.trade_records)}, final_equity={eq[-1]:,.2f})")

    # ------------------------------------------------------------ per bar
    @functools.cached_property
    def _equity(self) -> np.ndarray:
        e = self._sleeve_equity
        return e[:, 0] if e.shape[1] == 1 else e.sum(axis=1)

    @functools.cached_property
    def equity(self) -> pd.Series:
        """Total equity at each bar's close (cash + positions marked at the close)."""
        return pd.Series(self._equity, index=self.market.index, name="equity")

    @functools.cached_property
    def _contributions(self) -> np.ndarray:
        from eternal_engine.attribution import contributions_per_bar

        return contributions_per_bar(self.event_records, len(self.market.index))

    @functools.cached_property
    def contributions(self) -> pd.Series:
        """External cash (DCA) paid in on each bar's close."""
        return pd.Series(self._contributions, index=self.market.index, name="contributions")

    @functools.cached_property
    def returns(self) -> pd.Series:
        """Time-weighted simple returns per bar, ``(E_t - contribution_t) / E_{t-1} - 1``; the first bar's is
        relative to the initial capital."""
        from eternal_engine.attribution import time_weighted_returns

        r = time_weighted_returns(self._equity, float(self.initial_cash.sum()), self._contributions)
        return pd.Series(r, index=self.market.index, name="returns")

    def money_weighted_return(self) -> float:
        """Annualised internal rate of return of initial capital, contributions and final equity."""
        from eternal_engine.attribution import money_weighted_return

        ev = self.event_records
        bars = np.unique(ev["bar"][ev["kind"] == EV_CONTRIBUTION])
        return money_weighted_return(self.market.index, self._equity, float(self.initial_cash.sum()),
                                     self._contributions, bars)

    @functools.cached_property
    def breaker_level(self) -> pd.Series:
        """Drawdown circuit-breaker level (0-4) at each bar's close."""
        return pd.Series(self._level, index=self.market.index, name="breaker_level")

    @functools.cached_property
    def engine_states(self) -> pd.DataFrame:
        """Each engine's state at each bar's close (the spec's state names; ``HALTED`` while L4 halts)."""
        from eternal_engine.engines.core_nb import CORE_STATE_NAMES
        from eternal_engine.engines.funding_nb import FUNDING_STATE_NAMES
        from eternal_engine.engines.tactical_nb import TACTICAL_STATE_NAMES
        from eternal_engine.sim.state import HALTED, TREND_STATE_NAMES

        names = {"core_hodl": CORE_STATE_NAMES, "trend": TREND_STATE_NAMES, "funding": FUNDING_STATE_NAMES,
                 "tactical": TACTICAL_STATE_NAMES, "external": ("EXTERNAL",)}
        cols = {}
        for k, sleeve in enumerate(self.sleeves):
            cats = list(names[sleeve]) + ["HALTED"]
            codes = self._states[:, k].astype(np.int64)
            codes = np.where(codes == HALTED, len(cats) - 1, codes)
            cols[sleeve] = pd.Categorical.from_codes(codes, categories=cats)
        return pd.DataFrame(cols, index=self.market.index)

    @functools.cached_property
    def events(self) -> pd.DataFrame:
        """Breaker trips and resets, loss-limit halts, liquidations, rebalances, contributions, transfers and
        staking credits, indexed by the bar's open time. ``other`` is the receiving sleeve of a transfer or the
        new breaker level; ``amount`` is cash moved (the previous level for breaker events, the insurance
        cover for liquidations); ``value`` the drawdown for breaker and limit events, the fee for
        liquidations."""
        from eternal_engine.sim.records import EV_BREAKER_DOWN, EV_BREAKER_UP, EV_HALT, EV_RESET, EVENT_NAMES

        r = self.event_records
        sleeves = np.asarray(("portfolio",) + self.sleeves, dtype=object)
        is_level = np.isin(r["kind"], (EV_BREAKER_UP, EV_BREAKER_DOWN, EV_HALT, EV_RESET))
        other = np.full(len(r), None, dtype=object)
        is_sleeve = ~is_level & (r["other"] >= 0)
        other[is_sleeve] = sleeves[r["other"][is_sleeve] + 1]
        other[is_level] = r["other"][is_level]
        return pd.DataFrame({
            "event": self._names(r["kind"], EVENT_NAMES),
            "sleeve": sleeves[r["sleeve"] + 1],
            "other": other,
            "amount": r["amount"],
            "value": r["value"],
        }, index=pd.DatetimeIndex(self._times(r["bar"]), name="time"))

    def attribution(self) -> pd.DataFrame:
        """Per-sleeve P&L attribution and flows (see `eternal_engine.attribution`)."""
        from eternal_engine.attribution import attribution

        return attribution(self)

    @functools.cached_property
    def allocation(self) -> pd.DataFrame:
        """Each sleeve's share of portfolio equity at each close."""
        return self.sleeve_equity.div(self.equity, axis=0)

    @functools.cached_property
    def sleeve_equity(self) -> pd.DataFrame:
        return pd.DataFrame(self._sleeve_equity, index=self.market.index, columns=list(self.sleeves))

    @functools.cached_property
    def cash(self) -> pd.Series:
        """Cash of all sleeves at each bar's close, rebuilt from the fill, funding and event records.

        Spot-like: perp fills move ``qty * price`` too, so cash + sum(qty * close) is the equity."""
        from eternal_engine.sim.records import EV_CONTRIBUTION, EV_LIQUIDATION, EV_STAKING

        flow = np.zeros(len(self.market.index))
        f, p, e = self.fill_records, self.funding_records, self.event_records
        np.add.at(flow, f["bar"], -f["qty"] * f["price"] - f["fee"])
        np.add.at(flow, p["bar"], p["amount"])
        ext = e[np.isin(e["kind"], (EV_CONTRIBUTION, EV_STAKING, EV_LIQUIDATION))]
        np.add.at(flow, ext["bar"], ext["amount"])
        return pd.Series(self.initial_cash.sum() + np.cumsum(flow), index=self.market.index, name="cash")

    @functools.cached_property
    def _positions(self) -> np.ndarray:
        delta = np.zeros(self.market.arrays.close.shape)
        np.add.at(delta, (self.fill_records["bar"], self.fill_records["col"]), self.fill_records["qty"])
        return np.cumsum(delta, axis=0)

    @functools.cached_property
    def positions(self) -> pd.DataFrame:
        """Quantity held per instrument at each bar's close (all sleeves), rebuilt from the fills."""
        return pd.DataFrame(self._positions, index=self.market.index, columns=list(self.market.symbols))

    @functools.cached_property
    def exposure(self) -> pd.DataFrame:
        """Signed notional per instrument over total equity, at each close."""
        notional = self._positions * self.market.arrays.close
        return pd.DataFrame(notional / self._equity[:, None], index=self.market.index,
                            columns=list(self.market.symbols))

    # ------------------------------------------------------------ records
    def _times(self, bars) -> pd.DatetimeIndex:
        return self.market.index[np.asarray(bars, dtype=np.int64)]

    @functools.cached_property
    def orders(self) -> pd.DataFrame:
        """Fills, indexed by the open time of the bar in which they happened (``time``).

        Columns: symbol, side ('buy'/'sell'), qty (> 0), price (incl. slippage), fee, sleeve, price_type
        ('open', 'close' or 'stop'), reason, order_id, bar.
        """
        r = self.fill_records
        df = pd.DataFrame({
            "symbol": self._names(r["col"], self.market.symbols),
            "side": np.where(r["qty"] > 0, "buy", "sell"),
            "qty": np.abs(r["qty"]),
            "price": r["price"],
            "fee": r["fee"],
            "sleeve": self._names(r["sleeve"], self.sleeves),
            "price_type": self._names(r["price_type"], PRICE_TYPE_NAMES),
            "reason": self._names(r["reason"], REASON_NAMES),
            "order_id": r["order_id"],
            "bar": r["bar"],
        }, index=pd.DatetimeIndex(self._times(r["bar"]), name="time"))
        return df

    @functools.cached_property
    def order_log(self) -> pd.DataFrame:
        """Every order created, indexed by the bar that decided it, with its final status."""
        r = self.order_records
        return pd.DataFrame({
            "order_id": r["id"],
            "symbol": self._names(r["col"], self.market.symbols),
            "sleeve": self._names(r["sleeve"], self.sleeves),
            "qty": r["qty"],
            "order_type": self._names(r["order_type"], ORDER_TYPE_NAMES),
            "reason": self._names(r["reason"], REASON_NAMES),
            "status": self._names(r["status"], STATUS_NAMES),
        }, index=pd.DatetimeIndex(self._times(r["bar"]), name="decided"))

    @functools.cached_property
    def funding_payments(self) -> pd.DataFrame:
        """Funding settlements: ``amount`` > 0 received, < 0 paid (``-qty * price * rate``)."""
        r = self.funding_records
        return pd.DataFrame({
            "symbol": self._names(r["col"], self.market.symbols),
            "sleeve": self._names(r["sleeve"], self.sleeves),
            "qty": r["qty"], "price": r["price"], "rate": r["rate"], "amount": r["amount"],
        }, index=pd.DatetimeIndex(self._times(r["bar"]), name="time"))

    @functools.cached_property
    def trades(self) -> pd.DataFrame:
        """Round trips (flat -> position -> flat). Open trades have ``exit_time`` NaT, marked at the last close.

        ``return`` is ``pnl / (entry_price * qty)``: net P&L over the largest notional held at entry prices.
        """
        r = self.trade_records
        is_open = r["exit_bar"] < 0
        exit_bar, ret, bars_held = self._trade_numbers()
        exit_time = pd.DatetimeIndex(self._times(exit_bar)).where(~is_open, pd.NaT)
        reason = self._names(r["exit_reason"].astype(np.int64) + 1, ("open",) + REASON_NAMES)
        return pd.DataFrame({
            "sleeve": self._names(r["sleeve"], self.sleeves),
            "symbol": self._names(r["col"], self.market.symbols),
            "direction": np.where(r["direction"] > 0, "long", "short"),
            "entry_time": self._times(r["entry_bar"]),
            "exit_time": exit_time,
            "qty": r["qty"],
            "entry_price": r["entry_price"],
            "exit_price": r["exit_price"],
            "gross_pnl": r["gross_pnl"],
            "fees": r["fees"],
            "funding": r["funding"],
            "pnl": r["pnl"],
            "return": ret,
            "bars_held": bars_held,
            "exit_reason": reason,
        })

    def _trade_numbers(self):
        """Exit bar (the last bar for open trades), return on the largest notional held, bars held."""
        r = self.trade_records
        exit_bar = np.where(r["exit_bar"] < 0, len(self.market.index) - 1, r["exit_bar"])
        return exit_bar, r["pnl"] / (r["entry_price"] * r["qty"]), exit_bar - r["entry_bar"]

    @staticmethod
    def _names(codes, names) -> np.ndarray:
        return np.asarray(names, dtype=object)[np.asarray(codes, dtype=np.int64)]

    # ------------------------------------------------------------ summaries
    def stats(self) -> pd.Series:
        """Portfolio metrics (quantstats-compatible, see `eternal_engine.metrics.stats`) plus trading figures."""
        from eternal_engine.metrics import stats, trade_stats
        from eternal_engine.sim.exposure_nb import gross_exposure_nb

        s = stats(self.returns)
        _, ret, bars_held = self._trade_numbers()  # the numeric columns only: no trades frame needed
        closed_or_marked = pd.DataFrame({"pnl": self.trade_records["pnl"], "return": ret, "bars_held": bars_held})
        t = trade_stats(closed_or_marked).add_prefix("trade_").rename({"trade_n_trades": "n_trades"})
        f = self.fill_records
        exposure, in_market = gross_exposure_nb(f["bar"], f["col"].astype(np.int64), f["qty"],
                                                self.market.arrays.close, self._equity)
        from eternal_engine.sim.records import EV_HALT, EV_LIQUIDATION

        ev = self.event_records
        halts = ev["bar"][ev["kind"] == EV_HALT]
        extra = pd.Series({
            "initial_capital": float(self.initial_cash.sum()),
            "contributions": float(self._contributions.sum()),
            "final_equity": float(self._equity[-1]),
            "money_weighted_return": self.money_weighted_return(),
            "max_breaker_level": int(self._level.max()) if len(self._level) else 0,
            "halted_at": self.market.index[halts[0]] if len(halts) else None,
            "liquidations": int((ev["kind"] == EV_LIQUIDATION).sum()),
            "fees_paid": float(self.fill_records["fee"].sum()),
            "funding_net": float(self.funding_records["amount"].sum()),
            "exposure_avg": exposure,
            "time_in_market": in_market,
            "config_hash": self.config.config_hash(),
        }, dtype=object)
        return pd.concat([s.astype(object), t.astype(object), extra])

    def benchmark_returns(self) -> pd.Series:
        """Buy-and-hold of the first traded underlying's spot (or the first instrument), for reports."""
        syms = self.market.symbols
        traded = self.config.trend.symbols[0] if "trend" in self.sleeves else syms[0]
        spot = traded.rsplit("-", 1)[0] + "-SPOT"
        sym = spot if spot in syms else traded if traded in syms else syms[0]
        close = self.market.close[sym]
        return close.pct_change().fillna(0.0).rename(f"{sym} buy & hold")

    def report(self, path="report.html", *, title: str | None = None):
        """Write a self-contained HTML tearsheet (quantstats, on the time-weighted returns) plus attribution,
        figures (equity by sleeve, drawdown with breaker levels, allocation, funding income), events, engine
        states, config, exposure, funding and trades."""
        from eternal_engine.report import write_report

        trades = self.trades
        expo = self.exposure
        exposure = pd.DataFrame({
            "mean_signed": expo.mean(), "mean_abs": expo.abs().mean(), "max_abs": expo.abs().max(),
            "time_in_market": (expo != 0).mean(),
        })
        funding = self.funding_payments.groupby("symbol")["amount"].agg(["count", "sum"]) \
            if len(self.funding_records) else pd.DataFrame({"count": [], "sum": []})
        from eternal_engine.plots import event_summary, portfolio_figures

        major = self.events[~self.events["event"].isin(["staking", "transfer", "contribution"])]
        sections = {
            "Statistics": self.stats().to_frame("value"),
            "P&L attribution by sleeve (flows are not profit)": self.attribution(),
            **portfolio_figures(self),
            "Events (counts)": event_summary(self),
            f"Breaker, limit, liquidation and rebalance events ({len(major)})": major,
            "Engine states (share of bars)": self.engine_states.apply(
                lambda c: c.value_counts(normalize=True)).fillna(0.0),
            "Configuration": f"config_hash: {self.config.config_hash()}\n\n"
                             + json.dumps(self.config.to_dict(), indent=2),
            "Exposure by instrument (notional / equity)": exposure,
            "Funding by instrument": funding,
            f"Trades ({len(trades)})": trades,
        }
        title = title or f"Eternal Engine backtest: {', '.join(self.sleeves)}"
        return write_report(path, returns=self.returns, benchmark=self.benchmark_returns(), title=title,
                            sections=sections)
