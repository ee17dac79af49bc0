"""When a tracked call is checked next: the timing profile turned into delays, in one place.

- polling (no events arrive): every STATUS_CHECK_INTERVAL, as the seed did;
- events arriving (callbacks, agent stream): only safety-net checks after a long silence — 20 intervals (5 min
  on Cloud Run), then doubling up to 30 min — because Plivo retries callbacks and a lost hang-up is rare, while
  polling a talking call every interval would cost the shared REST budget for nothing (a lost hang-up is found
  sooner by the live-call sweep, live_sweep.py: one account-wide request per sweep, not one per call);
- errors: the poll interval again (the error counter decides when to give up);
- `unknown`: a slow, growing cadence for reconciliation, until UNKNOWN_GIVE_UP_MS.
"""

from __future__ import annotations

import random

from callqueue.settings import TimingProfile

QUIET_FACTOR = 20  # first safety-net check after an event: 20 poll intervals of silence
QUIET_CAP_MS = 1_800_000
UNKNOWN_FACTOR = 4
UNKNOWN_CAP_MS = 3_600_000
UNKNOWN_GIVE_UP_MS = 48 * 3_600_000
CHECK_MARGIN_S = 5


class Cadence:
    def __init__(self, timing: TimingProfile) -> None:
        self.timing = timing
        self.poll_ms = timing.status_check_interval * 1000

    def quiet_ms(self, silent_checks: int) -> int:
        """Delay of the next safety-net check when events have been arriving for this call."""
        return int(min(QUIET_CAP_MS, self.poll_ms * QUIET_FACTOR * 2 ** min(silent_checks, 10)))

    def unknown_ms(self, attempts: int) -> int:
        return int(min(UNKNOWN_CAP_MS, self.poll_ms * UNKNOWN_FACTOR * 2 ** min(attempts, 10)))

    def rate_limited_ms(self, retry_after_s: float) -> int:
        """After a 429: wait what Plivo asked, spread so the calls do not all come back at once."""
        return int(retry_after_s * 1000 + random.uniform(0, self.poll_ms))

    @property
    def auto_miss_ms(self) -> int:
        return self.timing.auto_miss_timeout * 1000

    @property
    def check_lease_ms(self) -> int:
        """How long one check may hold its call; a check also stops itself at this bound (see scheduler)."""
        return (self.timing.request_timeout * (self.timing.max_status_retries + 2) + CHECK_MARGIN_S) * 1000
