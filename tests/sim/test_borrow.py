"""Borrowed views (`sim.borrow_nb.borrowed`): the same data, through tuples and namedtuples, without ownership."""
import numpy as np
from numba import njit

from eternal_engine.sim.borrow_nb import borrowed
from eternal_engine.sim.inputs import Costs


@njit(cache=True)
def _write_through(a, pair, costs):
    v_a, (v_b, v_c), v_costs = borrowed((a, pair, costs))
    v_a[0] = 1.0
    v_b[1, 1] = 2.0
    v_c[2] = 3
    v_costs.taker[0] = 4.0
    return v_a.sum() + v_b.sum() + v_c.sum() + v_costs.taker.sum() + v_costs.mmr


def test_borrowed_views_read_and_write_the_original_arrays():
    a, b, c = np.zeros(3), np.zeros((2, 2)), np.zeros(4, dtype=np.int64)
    costs = Costs(np.zeros(2), np.zeros(2), 0.001, False, 0.005, 0.0, 5.0)
    total = _write_through(a, (b, c), costs)
    assert a[0] == 1.0 and b[1, 1] == 2.0 and c[2] == 3 and costs.taker[0] == 4.0
    assert total == 1.0 + 2.0 + 3 + 4.0 + 0.005
