"""One exception tree for the whole library, rooted at :class:`EternalError`."""


class EternalError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(EternalError, ValueError):
    """A configuration is invalid: unknown key, wrong type or out-of-range value."""


class DataError(EternalError, ValueError):
    """Market data cannot be used as given. The message names the symbol, the first bad timestamp and the fix."""

    def __init__(self, problem: str, *, symbol: str | None = None, timestamp=None, fix: str = ""):
        self.problem = problem
        self.symbol = symbol
        self.timestamp = timestamp
        self.fix = fix
        where = []
        if symbol is not None:
            where.append(f"symbol {symbol!r}")
        if timestamp is not None:
            where.append(f"first at {timestamp}")
        msg = problem + (f" ({', '.join(where)})" if where else "")
        if fix:
            msg += f". Fix: {fix}"
        super().__init__(msg)


class SimulationError(EternalError, RuntimeError):
    """The simulator was asked to do something impossible (e.g. record capacity, inconsistent inputs)."""


class FetchError(EternalError, RuntimeError):
    """A download failed after its retries (network, server) or the exchange refused it for good."""

    def __init__(self, problem: str, *, fix: str = ""):
        self.problem, self.fix = problem, fix
        super().__init__(problem + (f". Fix: {fix}" if fix else ""))
