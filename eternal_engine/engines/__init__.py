"""The engines. Each has a vectorised ``prepare`` (Python wrapper over Numba kernels) and a ``step_nb`` kernel
that the simulator (and the live adapter) calls once per bar."""
