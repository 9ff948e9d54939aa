"""Overlapping work on a second thread (for code that releases the GIL: Numba ``nogil`` kernels, numpy fills)."""
from __future__ import annotations

import contextlib
import threading


@contextlib.contextmanager
def beside(fn, name: str = "ee-beside"):
    """Run ``fn`` on a thread while the ``with`` block runs; joined at its end, ``fn``'s exception re-raised."""
    failed = []

    def run():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001  (re-raised in the caller's thread)
            failed.append(e)

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    try:
        yield
    finally:
        worker.join()
    if failed:
        raise failed[0]
