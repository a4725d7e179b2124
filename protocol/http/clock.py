"""A client's view of a peer's clock, so a station whose clock is off still syncs.

Rule (docs/reliability.md, "Clock skew"): a server checks a request's ``created`` against
*its own* clock within ±300 s (:data:`~protocol.http.signing.DEFAULT_WINDOW`), and that
window is never widened, because it bounds how long a captured request could be replayed.
A client whose clock is hours or days off instead learns the server's time from the
``Date`` header of the ``stale_request`` refusal, signs ``created`` with the corrected
time and retries once. Every request also carries the client's own uncorrected clock in
the signed ``Tongban-Clock`` header, so the server knows, authenticated, how far that
member's clock is off: hubs record it per peer, export it as a metric and use it to count
a station's events in the authority's time.

Pure: no I/O; the local clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Final

#: Request header with the client's uncorrected clock (Unix seconds), covered by the signature.
CLOCK_HEADER: Final = "Tongban-Clock"


class PeerClock:
    """The local clock plus the offset learned from one peer's ``Date`` header."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        #: Seconds to add to the local clock to get the peer's (0 until learned).
        self.offset = 0

    def local(self) -> int:
        """The uncorrected local clock, Unix seconds (what ``Tongban-Clock`` carries)."""
        return int(self._clock())

    def created(self) -> int:
        """``created`` for a request signature: the local clock corrected by the offset."""
        return self.local() + self.offset

    def learn(self, date_header: str | None) -> bool:
        """Take the peer's time from an HTTP ``Date`` value; True if the offset changed."""
        if not date_header:
            return False
        try:
            peer = int(parsedate_to_datetime(date_header).timestamp())
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        offset = peer - self.local()
        if offset == self.offset:
            return False
        self.offset = offset
        return True
