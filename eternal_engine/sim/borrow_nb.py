"""Borrowed views: arrays (also inside tuples and namedtuples) without a reference count, for the bar loop.

Numba increments and decrements an array's reference count (atomic operations) every time a variable takes
it: each argument of an inlined kernel, each argument of a call. In the bar loop that cost more than the
arithmetic (a fill inlines about 30 array arguments: ~60 atomic operations). A borrowed view is the same
array with a null meminfo, for which those operations are a test and a return.

Only for arrays whose owner outlives every use of the view: pass views down a call, never return or store
them. `sim.nb.simulate_nb` hands the bar loop views of arrays it holds for the whole call.
"""
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _strip(context, builder, typ, value):
    if isinstance(typ, types.Array):
        ary = context.make_array(typ)(context, builder, value=value)
        ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
        ary.parent = cgutils.get_null_value(ary.parent.type)
        return ary._getvalue()
    if isinstance(typ, types.BaseTuple):
        for k, member in enumerate(typ.types):
            value = builder.insert_value(value, _strip(context, builder, member, builder.extract_value(value, k)), k)
    return value


@intrinsic
def borrowed(typingctx, x):
    """``x`` with every array in it (recursively through tuples) replaced by a borrowed view of the same data."""
    def codegen(context, builder, signature, args):
        return _strip(context, builder, signature.args[0], args[0])

    return x(x), codegen
