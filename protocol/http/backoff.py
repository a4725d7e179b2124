"""Per-peer retry delays: jittered exponential backoff with a cap (DESIGN.md §4).

Pure state, no sleeping and no hidden randomness: the sender owns the clock and the
``random.Random``, and asks ``next_delay(rng.random())`` how long to wait. After ``n``
consecutive failures the ceiling is ``min(cap, base * factor**(n-1))`` and the delay is drawn
from ``[ceiling/2, ceiling]`` ("equal jitter"): the spread keeps many windows that lost the
same hub from retrying in lockstep, and the floor keeps the delay growing so a dead peer
is not hammered. Any success resets to zero at once, so a recovered peer is used
immediately.
"""

from __future__ import annotations

from typing import Final

DEFAULT_BASE: Final = 1.0
DEFAULT_CAP: Final = 300.0
DEFAULT_FACTOR: Final = 2.0


class Backoff:
    """Backoff state for one peer."""

    def __init__(
        self,
        *,
        base: float = DEFAULT_BASE,
        cap: float = DEFAULT_CAP,
        factor: float = DEFAULT_FACTOR,
    ) -> None:
        if not 0 < base <= cap or factor < 1:
            raise ValueError("need 0 < base <= cap and factor >= 1")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.failures = 0

    @property
    def ceiling(self) -> float:
        """The largest delay the next retry may get; 0 while the peer is healthy."""
        if self.failures == 0:
            return 0.0
        # A peer can stay down for days: factor**n then overflows a float, which just means
        # "past the cap".
        try:
            return min(self.cap, self.base * self.factor ** (self.failures - 1))
        except OverflowError:
            return self.cap

    def failure(self) -> None:
        """Record a failed request (network error, timeout, 5xx)."""
        self.failures += 1

    def success(self) -> None:
        """Record a successful request: the next attempt may go immediately."""
        self.failures = 0

    def next_delay(self, rng_value: float) -> float:
        """Seconds to wait before the next attempt, for a uniform ``rng_value`` in [0, 1)."""
        if not 0.0 <= rng_value < 1.0:
            raise ValueError("rng_value must be in [0, 1)")
        ceiling = self.ceiling
        return ceiling / 2 + rng_value * ceiling / 2
