"""Statistics engine: pure functions on sufficient statistics.

One statistical family per module; every result is a small frozen dataclass that carries its
numbers and a ``method`` naming the method in plain words. Nothing here touches a database, the
web layer or raw event lists: callers pass counts and sums (see :mod:`abtest.stats.summary`).

statsmodels and scipy are imported lazily inside the functions that need them, so importing
this package is cheap.
"""

from abtest.stats.summary import Counts, Effect, Estimate, Interval, Moments

__all__ = ["Counts", "Effect", "Estimate", "Interval", "Moments"]
