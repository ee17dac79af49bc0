"""The clock that calling hours and retry waits are measured with, injectable so tests need not sleep through hours.

Pacing, leases and history timestamps use Redis TIME (one clock for every instance, to the millisecond); calling
hours and retry waits are minutes-to-days decisions made in Python, where a test can move the clock forward.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch (UTC)."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)


class OffsetClock:
    """The system clock moved by a settable offset: `advance` jumps forward without waiting (tests, demos)."""

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    def advance(self, ms: int) -> None:
        self.offset_ms += ms

    def set(self, epoch_ms: int) -> None:
        """Make `now_ms()` read `epoch_ms` at this instant (then it runs on at real speed)."""
        self.offset_ms = epoch_ms - int(time.time() * 1000)
