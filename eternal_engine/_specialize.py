"""Compile one Numba kernel's source again with some of its globals replaced: a specialised copy.

Numba reads a kernel's globals as compile-time constants, so a copy that sees ``_TREND_ONLY = True`` (or another
kernel under a callee's name) is compiled with that value folded in and the code it rules out removed. The
source stays one; each copy is its own dispatcher with its own cache entry (named after the copy).
"""
from __future__ import annotations

import types

from numba import njit
from numba.core.caching import NullCache


def specialize(dispatcher, name: str, **globals_):
    """A new ``@njit`` dispatcher named ``name`` of ``dispatcher``'s Python function, with the same options
    (cache, parallel, ...), compiled against its module's globals with ``globals_`` replacing some. The globals
    are copied now: define the copy after everything its kernel refers to."""
    fn = dispatcher.py_func
    unknown = sorted(set(globals_) - set(fn.__globals__))
    if unknown:
        raise NameError(f"{fn.__qualname__} has no global(s) {unknown} to replace")
    scope = dict(fn.__globals__, **globals_)
    copy = types.FunctionType(fn.__code__, scope, name, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = name  # names the cache files: the copy never loads the original's machine code
    copy.__module__ = fn.__module__
    copy.__doc__ = fn.__doc__
    options = {k: v for k, v in dispatcher.targetoptions.items() if k != "nopython"}
    return njit(cache=not isinstance(dispatcher._cache, NullCache), **options)(copy)
