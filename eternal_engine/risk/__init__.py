"""Portfolio risk kernels (spec 6): the four-level drawdown circuit breaker and the daily/weekly loss
limits (``breaker_nb``), the pre-trade checks (``checks_nb``) and position sizing with fractional Kelly
(``sizing_nb``). Every kernel is a Numba function taking and returning scalars, shared by the simulator
and live trading; import the submodules you need (importing this package does not load Numba).
"""
