"""Apply one event to a call: the forward-only transition, the seed's log line, and the event-driven cadence.

Used by every source; the store's transition script makes it safe against duplicates, late and out-of-order
events (a settled call never changes; a late `ringing` after `completed` is recorded as unchanged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from callqueue.states import FINAL, CallStatus
from callqueue.store.calls import CallStore
from callqueue.tracing import bind_call
from callqueue.tracking.cadence import Cadence
from callqueue.tracking.events import CallEvent

log = logging.getLogger("callqueue.tracking")


@dataclass(frozen=True)
class Applied:
    found: bool
    changed: bool
    before: CallStatus | None
    status: CallStatus | None


async def apply_event(store: CallStore, event: CallEvent) -> Applied:
    changed, before = await store.transition(event.call_id, event.status, event.source, event.detail, event.fields)
    if before is None:
        return Applied(False, False, None, None)
    if changed:
        log.info("call %s: Call status changed: %s → %s (source %s)", event.call_id, before, event.status, event.source)
        return Applied(True, True, before, event.status)
    log.debug("call %s: %s from %s changes nothing (status %s)", event.call_id, event.status, event.source, before)
    return Applied(True, False, before, before)


async def apply_pushed_event(store: CallStore, cadence: Cadence, event: CallEvent) -> Applied:
    """An event pushed to us (callback, agent stream): events are flowing, so polls of this call can wait."""
    bind_call(event.call_id, await store.redis.hget(store.keys.call(event.call_id), "traceparent"))  # type: ignore[misc]
    applied = await apply_event(store, event)
    if applied.found and applied.status not in FINAL:
        await store.set_tracking_fields(event.call_id, last_event_ms=store.now_ms(), silent_checks=0)
        await store.reschedule(event.call_id, cadence.quiet_ms(0))
    return applied
