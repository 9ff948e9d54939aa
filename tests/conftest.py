import os

import pytest  # noqa: F401  (pytest plugins and fixtures live in the sub-packages' conftests)
from hypothesis import HealthCheck, settings

# Numba compiles on first call: never let hypothesis count compile time against a deadline.
# The default profile is derandomized so a CI run is reproducible (the same examples every time); the
# "explore" profile draws fresh random examples, many more of them: run it to hunt for new failures
# (HYPOTHESIS_PROFILE=explore python -m pytest).
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("default", max_examples=40, derandomize=True, **_common)
settings.register_profile("ci", max_examples=60, derandomize=True, **_common)
settings.register_profile("explore", max_examples=200, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
