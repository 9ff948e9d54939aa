"""Synthetic crypto markets: regime-switching spot, perps with basis and 8-hourly funding.

``synthetic(years, freq, seed, symbols)`` returns a `MarketData` with ``"<U>-SPOT"`` for every underlying
``U`` in ``symbols`` and (with ``perps=True``) ``"<U>-PERP"``, in the order ``[spots..., perps...]``. The same
seed gives identical arrays; every draw comes from ``np.random.default_rng(seed)``.

Model
-----
*Time.* The process is simulated in sub-steps of at most one hour (a 1D bar is 24 hourly sub-steps, a 4h bar
four, a 1min bar one), so every law below is the same whatever the bar size; bars aggregate their sub-steps.
Bars made of whole hours consume the same draws per hour: ``synthetic(y, "1D", s)`` equals
``synthetic(y, "1h", s).resample("1D")`` (volume and funding up to float rounding of the sums).

*Regimes.* One market-wide continuous-time Markov chain over bull / bear / crash / sideways. In a sub-step of
length ``dt`` the chain leaves regime ``r`` with probability ``1 - exp(-dt / duration_r)`` and then moves by
the row of `TRANSITIONS` (crash is always followed by bear or sideways). The first regime is drawn from the
stationary distribution. ``return_regimes=True`` also returns each bar's regime (the one in force during its
last sub-step).

*Spot prices* (log model, so prices stay positive). For underlying ``U`` with vol multiplier ``m_U``
(BTC 1.0, ETH 1.2, SOL 1.6) and factor loading ``rho_U`` (0.95, 0.85, 0.75)::

    d log S = [mu_U,r - k (log S - log S0 - g t)] dt + m_U vol_r dW_U + m_U dJ
    dW_U = rho_U dZ_common + sqrt(1 - rho_U^2) dZ_U

``mu_U,r = g + m_U (drift_r - c)``, where ``c`` (about -0.09) centres the regime drifts plus mean jump drift
on the stationary distribution, so every underlying's long-run log growth is ``g = 0.15``/yr (CAGR ~16 %).
The anchor ``k = 1.0``/yr pulls the log price back towards that trend line (half-life ~8 months), so long
paths stay sane: over 50 years BTC ends around 0.5-3.5 million from 1,000. Jumps ``dJ`` are market-wide
Poisson events (at most one per sub-step) with log size ``m_U (jump_mean_r + jump_std_r (0.8 Z + 0.6 Z_U))``.
Effective BTC log drift per year: bull +0.89, bear -0.31 (-0.55 with jumps), crash -3.3 (-6.5 with jumps),
sideways +0.24.

*OHLC.* ``open`` is the previous close (24/7 market). Within each sub-step the high and low are drawn from the
exact law of a Brownian bridge's maximum and minimum given the start, end and variance
(``(x + sqrt(x^2 + 2 s^2 E)) / 2``, ``E ~ Exp(1)``), so ``low <= min(open, close)`` and
``high >= max(open, close)`` always. Volume is lognormal per sub-step (sd 0.5) times ``exp(0.5 |z|)``,
``z`` the sub-step's log return over ``0.6 m_U sqrt(dt)`` (capped at 8), so big moves and volatile regimes
trade more; typical spot volume per day BTC 25k, ETH 400k, SOL 5M (base currency); perps trade ~3x spot.

*Perps.* ``perp = spot * (1 + basis)``; the basis is an Ornstein-Uhlenbeck process (half-life 12 h) towards a
regime level with a regime stationary std, clipped to +-3 %. The perp shares the spot's intra-step
excursions, so its OHLC is consistent too.

*Funding* settles at 00:00, 08:00 and 16:00 UTC. At each settlement
``rate_8h = funding_r + 0.05 (basis - basis_level_r) + e``, ``e`` an AR(1) per settlement (phi 0.7, stationary
sd 0.0001), clamped to [-0.0075, 0.0075] (Bybit's cap). The settlement is attached to the bar that contains
its timestamp (summed for bars coarser than 8h; with 1min bars only the 00:00/08:00/16:00 bars are nonzero).

Regime parameters (BTC; ``drift`` before centring, vol and jumps per year, basis and funding fractions):

==========  ======  =====  =============  =========  =========  ========  ===========  =========  ==========  ======
regime      drift   vol    duration days  jumps/yr   jump mean  jump sd   basis level  basis sd   funding 8h  share
==========  ======  =====  =============  =========  =========  ========  ===========  =========  ==========  ======
bull        +0.65   0.58   200            4          0.00       0.05      +0.0008      0.0030     +0.00025    38.7 %
bear        -0.55   0.68   150            8          -0.03      0.06      0.0000       0.0015     -0.00002    31.3 %
crash       -3.50   1.20   10             40         -0.08      0.08      -0.0020      0.0030     -0.00030    1.4 %
sideways    0.00    0.42   120            3          0.00       0.04      +0.0003      0.0008     +0.00008    28.6 %
==========  ======  =====  =============  =========  =========  ========  ===========  =========  ==========  ======

Transitions when a regime ends: bull -> bear 25 % / crash 20 % / sideways 55 %; bear -> bull 30 % / crash 30 %
/ sideways 40 %; crash -> bear 65 % / sideways 35 %; sideways -> bull 55 % / bear 30 % / crash 15 %.
"share" is the long-run fraction of time (`stationary_distribution`).

Calibration
-----------
Measured on 100 seeds of 8 years of daily bars (BTC, ETH, SOL; 5th-95th percentile, median in brackets;
vol = std of daily log returns x sqrt(365.25)):

* BTC annualised vol 56-66 % (61 %); all seeds 53-71 %. ETH/BTC vol ratio 1.16-1.23, SOL/BTC 1.56-1.64.
* BTC worst drawdown -91 % .. -63 % (-78 %); all seeds -94 % .. -59 %. BTC CAGR +4 % .. +26 % (+15 %).
* Daily return correlation BTC-ETH 0.79-0.82, BTC-SOL 0.69-0.73, ETH-SOL 0.62-0.67.
* Funding mean per 8h settlement 0.00006-0.00015 (0.00011); by regime: bull ~+0.00025, sideways ~+0.00008,
  bear ~-0.00002, crash ~-0.00027 (basis deviations add noise around the regime levels).
* Basis (perp close / spot close - 1): mean ~+0.03 %, lag-1 autocorrelation of daily values ~0.28 (0.94 for
  hourly); the largest |basis| over 8 years of daily closes is ~1.1 %, above 1 % on ~0.05 % of days.
* The same statistics hold for hourly bars (the model is simulated on the same <= 1h clock).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from eternal_engine._hints import did_you_mean
from eternal_engine.data.market import MarketData
from eternal_engine.data.synth_nb import synthetic_nb
from eternal_engine.data.validate import MAX_FREQ, MIN_FREQ
from eternal_engine.errors import ConfigError, DataError


class Regime(NamedTuple):
    """One market regime. Rates and drifts are annualised; ``drift``/``vol``/jumps are BTC's (alts scale them)."""

    name: str
    drift: float  # excess log drift per year, before centring (see module docstring)
    vol: float  # diffusive vol per sqrt(year)
    duration_days: float  # mean time spent in the regime
    jump_rate: float  # jumps per year (market-wide)
    jump_mean: float  # mean log jump size
    jump_std: float  # log jump size std
    basis_level: float  # OU mean of the perp basis (fraction)
    basis_std: float  # stationary std of the basis around that level
    funding_8h: float  # mean funding rate per 8h settlement


class Underlying(NamedTuple):
    name: str
    price0: float  # starting price (USDT)
    vol_mult: float  # vol, drift deviations and jumps relative to BTC
    loading: float  # loading of the diffusive shock on the common factor
    volume_day: float  # typical spot volume per day, base currency


REGIMES = (
    Regime("bull", 0.65, 0.58, 200.0, 4.0, 0.00, 0.05, 0.0008, 0.0030, 0.00025),
    Regime("bear", -0.55, 0.68, 150.0, 8.0, -0.03, 0.06, 0.0000, 0.0015, -0.00002),
    Regime("crash", -3.50, 1.20, 10.0, 40.0, -0.08, 0.08, -0.0020, 0.0030, -0.00030),
    Regime("sideways", 0.00, 0.42, 120.0, 3.0, 0.00, 0.04, 0.0003, 0.0008, 0.00008),
)
REGIME_NAMES = tuple(r.name for r in REGIMES)
# Where a regime goes when it ends (rows: from, columns: to; same order as REGIMES).
TRANSITIONS = np.array([
    [0.00, 0.25, 0.20, 0.55],  # bull -> bear / crash / sideways
    [0.30, 0.00, 0.30, 0.40],  # bear -> bull / crash / sideways
    [0.00, 0.65, 0.00, 0.35],  # crash -> bear / sideways (never straight back to bull)
    [0.55, 0.30, 0.15, 0.00],  # sideways -> bull / bear / crash
])
UNDERLYINGS = {
    "BTC": Underlying("BTC", 1000.0, 1.0, 0.95, 25_000.0),
    "ETH": Underlying("ETH", 8.0, 1.2, 0.85, 400_000.0),
    "SOL": Underlying("SOL", 2.0, 1.6, 0.75, 5_000_000.0),
}
LONG_RUN_GROWTH = 0.15  # log growth per year every underlying's price is anchored to (CAGR ~16 %)
ANCHOR_SPEED = 1.0  # per year: pull of the log price towards its long-run trend line
BASIS_HALF_LIFE_H = 12.0
BASIS_CAP = 0.03
FUNDING_PHI = 0.70  # AR(1) coefficient of the funding deviation per 8h settlement
FUNDING_STD = 0.0001  # stationary std of the funding deviation
FUNDING_BETA = 0.05  # funding response to the basis deviation from its regime level
FUNDING_CAP = 0.0075  # Bybit's clamp
VOLUME_NOISE, VOLUME_MOVE, VOLUME_REF_VOL, PERP_VOLUME_RATIO = 0.5, 0.5, 0.6, 3.0
MAX_SUB_STEP = pd.Timedelta("1h")
_YEAR = pd.Timedelta(days=365.25)


def stationary_distribution(regimes=REGIMES, transitions=TRANSITIONS) -> np.ndarray:
    """Long-run fraction of time spent in each regime (continuous-time Markov chain)."""
    rate = np.array([365.25 / r.duration_days for r in regimes])
    q = transitions * rate[:, None]
    q[np.diag_indices_from(q)] = -rate
    a = np.vstack([q.T, np.ones(len(rate))])
    rhs = np.r_[np.zeros(len(rate)), 1.0]
    return np.linalg.lstsq(a, rhs, rcond=None)[0]


def synthetic(years: float = 4.0, freq="1h", seed: int = 0, symbols=("BTC", "ETH", "SOL"), *,
              start="2017-01-01", perps: bool = True, return_regimes: bool = False):
    """Generate a synthetic market (see the module docstring for the model and its calibration).

    Parameters
    ----------
    years : length of the data in years of 365.25 days (> 0).
    freq : bar size from ``"1min"`` to ``"1D"`` (anything ``pd.Timedelta`` parses).
    seed : seed of ``np.random.default_rng``; equal seeds give identical data.
    symbols : underlyings, a subset of ``("BTC", "ETH", "SOL")``.
    start : first bar open time (UTC; rounded up to the epoch-aligned bar grid).
    perps : also produce ``"<U>-PERP"`` instruments with basis and funding.
    return_regimes : also return the regime of each bar (a categorical ``pd.Series``).

    Returns
    -------
    MarketData with instruments ``[U-SPOT for U in symbols] + [U-PERP for U in symbols]``, or
    ``(MarketData, regimes)`` when ``return_regimes``.
    """
    unders = _check_symbols(symbols)
    bar = _check_freq(freq)
    n_bars = _check_years(years, bar)
    start_ns = _check_start(start, bar)
    n_sub = -(-bar.value // MAX_SUB_STEP.value)  # sub-steps of at most 1h inside a bar
    sub_ns = bar.value // n_sub
    if sub_ns * n_sub != bar.value:
        n_sub, sub_ns = 1, bar.value

    drift, vol, regime_params, sym_params, scalars = _parameters(unders)
    pi = stationary_distribution()
    trans_cum = np.cumsum(TRANSITIONS, axis=1)
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"seed={seed!r} cannot seed a random generator ({e}); "
                          "fix: pass a non-negative int") from None
    o, h, lo, c, v, f, reg = synthetic_nb(
        rng, n_bars, n_sub, start_ns, sub_ns, drift, vol, regime_params, trans_cum, np.cumsum(pi),
        sym_params, scalars, bool(perps),
    )
    index = pd.DatetimeIndex(start_ns + np.arange(n_bars, dtype=np.int64) * bar.value, tz="UTC")
    names = [f"{u.name}-SPOT" for u in unders] + ([f"{u.name}-PERP" for u in unders] if perps else [])
    data = MarketData(index, names, o, h, lo, c, v, f, freq=bar)
    if not return_regimes:
        return data
    cat = pd.Categorical.from_codes(reg, categories=list(REGIME_NAMES))
    return data, pd.Series(cat, index=data.index, name="regime")


def _parameters(unders):
    """Kernel arrays: centred drifts and vols per (underlying, regime), regime/underlying tables, scalars."""
    pi = stationary_distribution()
    excess = np.array([r.drift + r.jump_rate * r.jump_mean for r in REGIMES])
    centre = float(pi @ excess)  # makes the time-averaged log drift equal LONG_RUN_GROWTH
    drift = np.array([[LONG_RUN_GROWTH + u.vol_mult * (r.drift - centre) for r in REGIMES] for u in unders])
    vol = np.array([[u.vol_mult * r.vol for r in REGIMES] for u in unders])
    regime_params = np.array([
        [r.duration_days / 365.25, r.jump_rate, r.jump_mean, r.jump_std, r.basis_level, r.basis_std, r.funding_8h]
        for r in REGIMES
    ])
    sym_params = np.array([
        [math.log(u.price0), LONG_RUN_GROWTH, u.vol_mult, u.loading, u.volume_day] for u in unders
    ])
    theta = math.log(2.0) / (BASIS_HALF_LIFE_H / (365.25 * 24))
    scalars = np.array([ANCHOR_SPEED, theta, BASIS_CAP, FUNDING_PHI, FUNDING_STD, FUNDING_BETA, FUNDING_CAP,
                        VOLUME_NOISE, VOLUME_MOVE, VOLUME_REF_VOL, PERP_VOLUME_RATIO])
    return drift, vol, regime_params, sym_params, scalars


def _check_symbols(symbols):
    if isinstance(symbols, str):
        symbols = (symbols,)
    symbols = tuple(symbols)
    if not symbols:
        raise DataError("no symbols given", fix="pass underlyings such as symbols=('BTC', 'ETH')")
    out = []
    for s in symbols:
        key = str(s).upper()
        if key not in UNDERLYINGS:
            base = key.rpartition("-")[0] or key
            fix = f"only {list(UNDERLYINGS)} are calibrated"
            if base != key:
                fix += "; pass underlyings ('BTC'), not instrument names ('BTC-PERP')"
            raise DataError(f"no synthetic model for {s!r}{did_you_mean(base, UNDERLYINGS)}", symbol=str(s), fix=fix)
        if UNDERLYINGS[key] in out:
            raise DataError("symbol listed twice", symbol=key, fix="give each underlying once")
        out.append(UNDERLYINGS[key])
    return out


def _check_freq(freq) -> pd.Timedelta:
    try:
        bar = pd.Timedelta(freq)
    except (TypeError, ValueError):
        try:
            bar = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
        except (TypeError, ValueError):
            raise ConfigError(f"freq={freq!r} is not a bar size; fix: use e.g. '1min', '15min', '1h', '4h' "
                              f"or '1D'") from None
    if not MIN_FREQ <= bar <= MAX_FREQ:
        raise ConfigError(f"freq={freq!r} is outside 1 minute .. 1 day; fix: choose a bar size between "
                          f"'1min' and '1D'")
    return bar


def _check_years(years, bar) -> int:
    try:
        y = float(years)
    except (TypeError, ValueError):
        raise ConfigError(f"years={years!r} is not a number; fix: pass e.g. years=4.0") from None
    if not math.isfinite(y) or y <= 0:
        raise ConfigError(f"years={years!r} must be a positive number; fix: pass e.g. years=4.0")
    n = int(round(y * _YEAR.value / bar.value))
    if n < 1:
        raise ConfigError(f"years={years!r} is shorter than one {bar} bar; fix: pass more years or a smaller freq")
    return n


def _check_start(start, bar) -> int:
    try:
        ts = pd.Timestamp(start)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"start={start!r} is not a date ({e}); fix: pass e.g. start='2017-01-01'") from None
    if ts is pd.NaT:
        raise ConfigError(f"start={start!r} is not a date; fix: pass e.g. start='2017-01-01'")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    ns = ts.as_unit("ns").value
    return -(-ns // bar.value) * bar.value
