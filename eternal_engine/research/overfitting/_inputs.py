"""Checks of the overfitting statistics' inputs, and the sample moments they share: unusable data raises
`DataError`, a bad argument `ConfigError`, each saying what to pass instead."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from eternal_engine.errors import ConfigError, DataError


def finite_number(name: str, value, *, minimum: float | None = None, strict: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        raise ConfigError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return v


def returns_1d(returns, what: str = "returns") -> np.ndarray:
    a = as_float_array(returns, what)
    if a.ndim != 1:
        raise DataError(f"{what} must be one-dimensional, got shape {a.shape}",
                        fix="pass one column of per-period returns")
    if a.size < 2:
        raise DataError(f"{what} need at least 2 observations for a Sharpe ratio, got {a.size}",
                        fix="pass a longer return series")
    check_finite(a, returns, what)
    return a


def as_float_array(x, what: str) -> np.ndarray:
    try:
        if isinstance(x, (pd.Series, pd.DataFrame)):
            return x.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what} are not numeric", fix="pass float returns (fractions, 0.01 = 1%)") from e


def check_finite(a: np.ndarray, original, what: str) -> None:
    bad = ~np.isfinite(a)
    if not bad.any():
        return
    pos = np.argwhere(bad)[0]
    row = int(pos[0])
    label = original.index[row] if isinstance(original, (pd.Series, pd.DataFrame)) else row
    where = f"row {label!r}"
    if a.ndim == 2:
        col = int(pos[1])
        clabel = original.columns[col] if isinstance(original, pd.DataFrame) else col
        where += f", column {clabel!r}"
    kind = "NaN" if np.isnan(a[tuple(pos)]) else "infinite"
    raise DataError(f"{what} contain {kind} values (first at {where})",
                    fix="fill or drop the missing periods deliberately (e.g. .fillna(0.0) where a "
                        "configuration was flat) before testing for overfitting")


def moments(a: np.ndarray) -> tuple[float, float, float]:
    """Per-period Sharpe (ddof=1), moment skewness and raw kurtosis of a 1-D array."""
    mean = float(a.mean())
    d = a - mean
    m2 = float(np.dot(d, d)) / a.size
    if m2 == 0.0 or a.min() == a.max():
        raise DataError("returns are constant: the Sharpe ratio, skewness and kurtosis are undefined",
                        fix="pass the returns of a strategy that traded")
    d2 = d * d
    m3 = float(np.dot(d2, d)) / a.size
    m4 = float(np.dot(d2, d2)) / a.size
    std = math.sqrt(m2 * a.size / (a.size - 1))
    return mean / std, m3 / m2 ** 1.5, m4 / (m2 * m2)
