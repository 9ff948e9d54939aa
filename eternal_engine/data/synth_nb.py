"""Numba kernel of the synthetic market generator (see :mod:`eternal_engine.data.synth` for the model).

Everything is drawn from one ``np.random.Generator`` passed in, so a fresh ``default_rng(seed)`` gives
bit-identical output. Column layout of the outputs: ``[spot_0 .. spot_{k-1}, perp_0 .. perp_{k-1}]``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# Columns of ``regime_params`` (one row per regime).
R_DUR, R_JUMP_RATE, R_JUMP_MEAN, R_JUMP_STD, R_BASIS_LEVEL, R_BASIS_STD, R_FUND_LEVEL = range(7)
# Columns of ``sym_params`` (one row per underlying).
S_LOG_P0, S_GROWTH, S_MULT, S_LOADING, S_VOLUME_DAY = range(5)
# Entries of ``scalars``.
(K_ANCHOR, K_BASIS_THETA, K_BASIS_CAP, K_FUND_PHI, K_FUND_STD, K_FUND_BETA, K_FUND_CAP,
 K_VOL_NOISE, K_VOL_MOVE, K_VOL_REF, K_PERP_VOL_RATIO) = range(11)

YEAR_NS = 365.25 * 86400e9
DAY_NS = 86400e9
FUNDING_NS = 8 * 3600 * 1_000_000_000


@njit(cache=True)
def _pick_nb(cum, u):
    """Index of the first entry of the cumulative distribution ``cum`` above ``u``."""
    for k in range(cum.shape[0] - 1):
        if u < cum[k]:
            return k
    return cum.shape[0] - 1


@njit(cache=True)
def synthetic_nb(rng, n_bars, n_sub, start_ns, sub_ns, drift, vol, regime_params, trans_cum, pi_cum,
                 sym_params, scalars, perps):
    """Simulate ``n_bars`` bars, each made of ``n_sub`` sub-steps of ``sub_ns`` nanoseconds.

    ``drift``/``vol`` are (underlyings, regimes) annualised log drift and diffusive vol. Returns open, high,
    low, close, volume, funding (bars x columns) and the regime code of each bar's last sub-step (int8).
    """
    k = sym_params.shape[0]
    n_reg = regime_params.shape[0]
    m = 2 * k if perps else k
    o = np.empty((n_bars, m))
    h = np.empty((n_bars, m))
    lo = np.empty((n_bars, m))
    c = np.empty((n_bars, m))
    v = np.empty((n_bars, m))
    f = np.zeros((n_bars, m))
    regimes = np.empty(n_bars, dtype=np.int8)

    # Per-sub-step constants.
    dt = sub_ns / YEAR_NS
    sq_dt = np.sqrt(dt)
    p_switch = np.empty(n_reg)
    p_jump = np.empty(n_reg)
    b_noise = np.empty(n_reg)
    b_decay = np.exp(-scalars[K_BASIS_THETA] * dt)
    for r in range(n_reg):
        p_switch[r] = 1.0 - np.exp(-dt / regime_params[r, R_DUR])
        p_jump[r] = 1.0 - np.exp(-regime_params[r, R_JUMP_RATE] * dt)
        b_noise[r] = regime_params[r, R_BASIS_STD] * np.sqrt(1.0 - b_decay * b_decay)
    phi = scalars[K_FUND_PHI]
    f_noise = scalars[K_FUND_STD] * np.sqrt(1.0 - phi * phi)
    f_cap = scalars[K_FUND_CAP]
    b_cap = scalars[K_BASIS_CAP]
    v_noise = scalars[K_VOL_NOISE]
    v_move = scalars[K_VOL_MOVE]
    v_center = -0.5 * v_noise * v_noise - v_move * 0.8  # E|Z| ~ 0.8: keeps the typical volume near its base
    v_perp = np.log(scalars[K_PERP_VOL_RATIO]) - 0.045  # perp noise sd 0.3, mean-corrected
    vol_base = np.empty(k)
    idio = np.empty(k)
    z_scale = np.empty(k)
    for s in range(k):
        vol_base[s] = np.log(sym_params[s, S_VOLUME_DAY] * sub_ns / DAY_NS) + v_center
        idio[s] = np.sqrt(1.0 - sym_params[s, S_LOADING] ** 2)
        z_scale[s] = 1.0 / (scalars[K_VOL_REF] * sym_params[s, S_MULT] * sq_dt)

    # State: regime, log spot, spot and perp prices, basis, funding deviation.
    reg = _pick_nb(pi_cum, rng.random())
    x = sym_params[:, S_LOG_P0].copy()
    px = np.empty(m)  # latest close of every column
    b = np.empty(k)
    e = np.zeros(k)
    for s in range(k):
        b[s] = regime_params[reg, R_BASIS_LEVEL]
        px[s] = np.exp(x[s])
        if perps:
            px[k + s] = px[s] * (1.0 + b[s])
    hi = np.empty(m)
    low = np.empty(m)
    next_fund = -((-start_ns) // FUNDING_NS) * FUNDING_NS  # first settlement at or after start

    step = 0
    for t in range(n_bars):
        for j in range(m):
            o[t, j] = px[j]  # open = previous close (24/7)
            hi[j] = px[j]
            low[j] = px[j]
            v[t, j] = 0.0
        for _ in range(n_sub):
            t_ns = start_ns + step * sub_ns
            # 1) regime switch (memoryless: same law whatever the sub-step size)
            if rng.random() < p_switch[reg]:
                reg = _pick_nb(trans_cum[reg], rng.random())
            # 2) funding settlements inside [t_ns, t_ns + sub_ns), from the state at the sub-step start
            while perps and next_fund < t_ns + sub_ns:
                for s in range(k):
                    e[s] = phi * e[s] + f_noise * rng.standard_normal()
                    rate = (regime_params[reg, R_FUND_LEVEL]
                            + scalars[K_FUND_BETA] * (b[s] - regime_params[reg, R_BASIS_LEVEL]) + e[s])
                    f[t, k + s] += min(max(rate, -f_cap), f_cap)
                next_fund += FUNDING_NS
            # 3) prices: common factor + idiosyncratic diffusion, common jumps, anchor to the long-run trend
            zc = rng.standard_normal()
            jump = rng.random() < p_jump[reg]
            zj = rng.standard_normal() if jump else 0.0
            years = step * dt
            for s in range(k):
                z = sym_params[s, S_LOADING] * zc + idio[s] * rng.standard_normal()
                sig = vol[s, reg]
                trend = sym_params[s, S_LOG_P0] + sym_params[s, S_GROWTH] * years
                ret = (drift[s, reg] - scalars[K_ANCHOR] * (x[s] - trend)) * dt + sig * sq_dt * z
                if jump:
                    ret += sym_params[s, S_MULT] * (
                        regime_params[reg, R_JUMP_MEAN]
                        + regime_params[reg, R_JUMP_STD] * (0.8 * zj + 0.6 * rng.standard_normal()))
                # exact Brownian-bridge extremes given the sub-step's start, end and variance
                var2 = 2.0 * sig * sig * dt
                up = 0.5 * (ret + np.sqrt(ret * ret + var2 * rng.standard_exponential()))
                dn = 0.5 * (ret - np.sqrt(ret * ret + var2 * rng.standard_exponential()))
                f_up = np.exp(max(up - max(ret, 0.0), 0.0))  # >= 1: excursion beyond the body
                f_dn = np.exp(-max(min(ret, 0.0) - dn, 0.0))  # <= 1
                x[s] += ret
                p_old = px[s]
                px[s] = np.exp(x[s])
                hi[s] = max(hi[s], max(p_old, px[s]) * f_up)
                low[s] = min(low[s], min(p_old, px[s]) * f_dn)
                # volume: lognormal, larger on big moves
                zs = min(abs(ret) * z_scale[s], 8.0)
                vol_s = np.exp(vol_base[s] + v_noise * rng.standard_normal() + v_move * zs)
                v[t, s] += vol_s
                if perps:
                    # 4) basis: OU towards the regime level; perp = spot * (1 + basis)
                    lvl = regime_params[reg, R_BASIS_LEVEL]
                    b[s] = lvl + (b[s] - lvl) * b_decay + b_noise[reg] * rng.standard_normal()
                    b[s] = min(max(b[s], -b_cap), b_cap)
                    j = k + s
                    p_old = px[j]
                    px[j] = px[s] * (1.0 + b[s])
                    # the perp shares the spot's intra-step excursions beyond max/min(open, close)
                    hi[j] = max(hi[j], max(p_old, px[j]) * f_up)
                    low[j] = min(low[j], min(p_old, px[j]) * f_dn)
                    v[t, j] += vol_s * np.exp(v_perp + 0.3 * rng.standard_normal())
            step += 1
        for j in range(m):
            c[t, j] = px[j]
            h[t, j] = max(hi[j], o[t, j], px[j])
            lo[t, j] = min(low[j], o[t, j], px[j])
        regimes[t] = reg
    return o, h, lo, c, v, f, regimes
