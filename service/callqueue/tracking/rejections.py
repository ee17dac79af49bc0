"""Input refused by tracking (bad callbacks, bad agent events): counted, and sampled into the log and Redis.

A flood of forged callbacks must not become a flood of Redis writes and log lines. Every refusal is counted in
this process by source and kind (a fixed vocabulary, so `Rejections.counts` can feed metrics), but only the first
SAMPLES_PER_WINDOW refusals of a source in each WINDOW_S are logged and kept in `{prefix}:rejected-events` (capped
list); the next sampled line tells how many more were refused meanwhile. Nothing is written on the call: whoever
sent a refused request is not trusted to annotate it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from callqueue.ids import shown
from callqueue.store.calls import CallStore
from callqueue.store.keys import REJECTED_EVENTS_KEEP

log = logging.getLogger("callqueue.tracking")
WINDOW_S = 60.0
SAMPLES_PER_WINDOW = 20


@dataclass
class _Window:
    started: float
    sampled: int = 0
    suppressed: int = 0


@dataclass
class Rejections:
    """Per-process refusal counters and the sampler; one per Runtime."""

    window_s: float = WINDOW_S
    samples_per_window: int = SAMPLES_PER_WINDOW
    clock: Callable[[], float] = time.monotonic
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    _windows: dict[str, _Window] = field(default_factory=dict)

    def _sample(self, source: str) -> tuple[bool, int]:
        """(keep this one?, refusals of this source not kept since the last kept one)."""
        now = self.clock()
        window = self._windows.get(source)
        if window is None or now - window.started >= self.window_s:
            window = self._windows[source] = _Window(now, suppressed=window.suppressed if window else 0)
        if window.sampled < self.samples_per_window:
            window.sampled += 1
            earlier, window.suppressed = window.suppressed, 0
            return True, earlier
        window.suppressed += 1
        return False, 0

    async def record(self, store: CallStore, source: str, kind: str, call_id: str, reason: str) -> None:
        self.counts[(source, kind)] += 1
        keep, earlier = self._sample(source)
        if not keep:
            return
        more = f" ({earlier} more {source} refusals since the last one logged)"
        log.warning("rejected %s event (%s) for call %s: %s%s", source, kind, shown(call_id) if call_id else None,
                    reason, more if earlier else "")  # fmt: skip
        entry = {"at": store.now_ms(), "source": source, "kind": kind, "call_id": call_id[:64] or None}
        entry["reason"] = reason
        try:
            async with store.redis.pipeline(transaction=False) as pipe:
                pipe.lpush(store.keys.rejected_events, json.dumps(entry))
                pipe.ltrim(store.keys.rejected_events, 0, REJECTED_EVENTS_KEEP - 1)
                await pipe.execute()
        except RedisError:
            pass  # a sample is not worth failing the answer for; the counter and the log line have it
