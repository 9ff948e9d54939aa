"""`claim_nb.fetch_add`: an atomic counter the sweep's worker threads claim combinations from."""
import numpy as np
import pytest
from numba import njit, prange

from eternal_engine.research.claim_nb import fetch_add


@njit(parallel=True)
def _claim_all(n_items, counter, claimed):
    for w in prange(claimed.shape[0]):
        k = fetch_add(counter, 0, 1)
        while k < n_items:
            claimed[w, k] = 1  # each worker its own row: no write races
            k = fetch_add(counter, 0, 1)


def test_every_item_is_claimed_exactly_once_by_concurrent_workers():
    import numba

    n = 200_000  # many claims per worker: an unsynchronised counter would hand some items out twice
    workers = max(2, numba.get_num_threads())
    counter, claimed = np.zeros(1, np.int64), np.zeros((workers, n), np.int8)
    _claim_all(n, counter, claimed)
    assert (claimed.sum(axis=0) == 1).all()
    assert counter[0] == n + workers  # each worker's last claim overshoots once


@njit
def _add(counter, i, v):
    return fetch_add(counter, i, v)


def test_returns_the_old_value_and_adds():
    c = np.array([5, 7], dtype=np.int64)
    assert _add(c, 1, 3) == 7 and c.tolist() == [5, 10]
    assert _add(c, 0, np.int32(-2)) == 5 and c.tolist() == [3, 10]
    with pytest.raises(Exception, match="fetch_add"):
        _add(np.zeros(2), 0, 1)  # only int64 counters
