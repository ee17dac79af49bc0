"""Named points where a test can make the process die at once (SIGKILL), to prove a dispatch survives a crash there.

Set CALLQUEUE_CRASH_AT to a point's name in a test's child process; unset (always, in production) it does nothing.
"""

from __future__ import annotations

import os
import signal

AFTER_CLAIM = "after_claim"  # the call is leased to this worker; the agent has not been asked yet
AFTER_START = "after_start"  # the agent accepted the start; the dispatch is not recorded yet
POINTS = (AFTER_CLAIM, AFTER_START)


def crash_point(name: str) -> None:
    if os.environ.get("CALLQUEUE_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
