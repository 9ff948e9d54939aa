"""`_specialize.specialize`: a kernel compiled again with some globals replaced, the original untouched."""
import pytest
from numba import njit

from eternal_engine._specialize import specialize

_SCALE = 2.0


@njit
def _scaled(x):
    return x * _SCALE


@njit
def _twice_scaled(x):
    return _scaled(x) + _scaled(x)


def test_copy_folds_its_own_globals_and_callees():
    tenfold = specialize(_scaled, "_tenfold", _SCALE=10.0)
    assert (tenfold(3.0), _scaled(3.0)) == (30.0, 6.0)
    twice_tenfold = specialize(_twice_scaled, "_twice_tenfold", _scaled=tenfold)
    assert (twice_tenfold(1.0), _twice_scaled(1.0)) == (20.0, 4.0)
    assert tenfold.py_func.__qualname__ == "_tenfold"  # its own cache files


def test_unknown_global_is_refused():
    with pytest.raises(NameError, match="_SCALES"):
        specialize(_scaled, "_typo", _SCALES=1.0)
