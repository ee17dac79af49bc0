"""Input refused by tracking (bad callbacks, bad agent events), kept with its reason for operators.

A capped list in Redis plus a warning log line; on the call record too when the call exists, so
GET /api/calls/{id} shows why an event did not count.
"""

from __future__ import annotations

import json
import logging

from callqueue.store.calls import CallStore

log = logging.getLogger("callqueue.tracking")
KEEP = 1000


async def record_rejection(store: CallStore, source: str, call_id: str, reason: str) -> None:
    log.warning("rejected %s event for call %r: %s", source, call_id or None, reason)
    entry = json.dumps({"at": store.now_ms(), "source": source, "call_id": call_id or None, "reason": reason})
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.lpush(store.keys.rejected_events, entry)
        pipe.ltrim(store.keys.rejected_events, 0, KEEP - 1)
        await pipe.execute()
    if call_id and await store.redis.exists(store.keys.call(call_id)):
        await store.set_tracking_fields(call_id, last_rejected=f"{source}: {reason}"[:500])
