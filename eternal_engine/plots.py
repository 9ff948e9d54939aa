"""Portfolio figures for reports, rendered to inline SVG with matplotlib's object API (no pyplot, any backend).

Series are thinned to at most ``MAX_POINTS`` bars (the last bar of each step) so a 5M-bar run still gives a
small page.
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

MAX_POINTS = 2000


class SVG(str):
    """Markup a report section embeds as is."""


def _thin(obj):
    step = max(1, int(np.ceil(len(obj) / MAX_POINTS)))
    return obj.iloc[step - 1 :: step] if step > 1 else obj


def _render(fig) -> SVG:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    svg = buf.getvalue()
    return SVG(svg[svg.find("<svg"):])


def _axes(title, ylabel):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    ax = fig.add_subplot()
    ax.set_title(title, loc="left")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def equity_by_sleeve(result) -> SVG:
    fig, ax = _axes("Equity by sleeve (stacked)", "quote currency")
    eq = _thin(result.sleeve_equity.clip(lower=0))
    ax.stackplot(eq.index, eq.to_numpy().T, labels=list(eq.columns), alpha=0.8)
    contrib = _thin(result.contributions.cumsum() + float(result.initial_cash.sum()))
    ax.plot(contrib.index, contrib.to_numpy(), color="black", lw=1, ls="--", label="capital paid in")
    ax.legend(loc="upper left", fontsize=8)
    return _render(fig)


def drawdown_with_breaker(result) -> SVG:
    fig, ax = _axes("Drawdown of the time-weighted value, with the breaker level", "drawdown")
    nav = (1 + result.returns).cumprod()
    dd = _thin(nav / nav.cummax() - 1)
    ax.fill_between(dd.index, dd.to_numpy(), 0, color="tab:red", alpha=0.4, label="drawdown")
    for lvl in result.config.risk.breaker_levels:
        ax.axhline(-lvl, color="grey", lw=0.6, ls=":")
    ax2 = ax.twinx()
    lv = _thin(result.breaker_level)
    ax2.step(lv.index, lv.to_numpy(), where="post", color="black", lw=0.8, label="breaker level")
    ax2.set_ylim(-0.2, 4.5)
    ax2.set_ylabel("level")
    ax.legend(loc="lower left", fontsize=8)
    return _render(fig)


def allocation(result) -> SVG:
    fig, ax = _axes("Allocation: each sleeve's share of equity", "share")
    al = _thin(result.allocation.clip(lower=0).fillna(0.0))
    ax.stackplot(al.index, al.to_numpy().T, labels=list(al.columns), alpha=0.8)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    return _render(fig)


def funding_income(result) -> SVG:
    fig, ax = _axes("Cumulative funding received (> 0) or paid, by sleeve", "quote currency")
    fp = result.funding_payments
    if len(fp):
        cum = fp.pivot_table(index=fp.index, columns="sleeve", values="amount", aggfunc="sum").fillna(0).cumsum()
        cum = cum.reindex(result.market.index, method="ffill").fillna(0.0)
        cum = _thin(cum)
        for col in cum.columns:
            ax.plot(cum.index, cum[col].to_numpy(), label=col)
        ax.legend(loc="upper left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no funding payments", transform=ax.transAxes, ha="center")
    return _render(fig)


def portfolio_figures(result) -> dict[str, SVG]:
    return {
        "Equity by sleeve": equity_by_sleeve(result),
        "Drawdown and circuit breaker": drawdown_with_breaker(result),
        "Allocation over time": allocation(result),
        "Funding income": funding_income(result),
    }


def event_summary(result) -> pd.DataFrame:
    ev = result.events
    return ev.groupby("event").agg(count=("amount", "size"), first=("amount", lambda s: s.index.min()),
                                   last=("amount", lambda s: s.index.max()))
