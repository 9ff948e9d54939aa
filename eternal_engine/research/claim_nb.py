"""Work claimed from a shared counter, for parallel loops whose threads may run at different speeds.

Numba's ``prange`` hands each thread an equal share up front: a sweep then waits for its slowest thread, and a
thread is slow whenever its core is shared (another process, a virtual CPU whose host is busy, an efficiency
core) or its combinations trade more. Workers that claim the next item one at a time from an atomic counter
finish together instead.
"""
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def fetch_add(typingctx, counter, index, value):
    """Atomically add ``value`` to ``counter[index]`` (a 1-d int64 array) and return what it held before."""
    if not (isinstance(counter, types.Array) and counter.ndim == 1 and counter.dtype == types.int64
            and isinstance(index, types.Integer) and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ary_t, _, val_t = signature.args
        ary = context.make_array(ary_t)(context, builder, value=args[0])
        ptr = cgutils.get_item_pointer(context, builder, ary_t, ary, [args[1]], wraparound=False)
        add = context.cast(builder, args[2], val_t, types.int64)
        return builder.atomic_rmw("add", ptr, add, "seq_cst")

    return types.int64(counter, index, value), codegen
