"""Find the real outcome of a call from Plivo's detail records: for `unknown` calls, and before declaring `missed`.

By call uuid when we have it; otherwise by destination and time through the list API, taking only a record
that no other call of ours has claimed and that started after this call was dispatched.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from callqueue.clients.plivo import PlivoClient
from callqueue.store.calls import CallStore
from callqueue.store.records import CallRecord
from callqueue.tracking.events import BadEvent, CallEvent, from_cdr, from_live

log = logging.getLogger("callqueue.tracking")
CLOCK_SLACK_S = 60  # Plivo's clock and ours may differ; its times have whole seconds


def _epoch(plivo_time: object) -> float | None:
    if not isinstance(plivo_time, str) or not plivo_time:
        return None
    try:
        parsed = datetime.fromisoformat(plivo_time.strip())
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


async def find_live(store: CallStore, plivo: PlivoClient, record: CallRecord, limit: int = 20) -> CallEvent | None:
    """A live call of ours whose uuid we never learned (ring callback lost), matched by its request uuid."""
    if record.call_uuid or not record.request_uuid:
        return None
    for call_uuid in (await plivo.live_call_uuids())[:limit]:
        if await store.call_id_for(call_uuid=call_uuid) not in (None, record.attempt_id):
            continue
        live = await plivo.live_call(call_uuid)
        if live is not None and live.get("request_uuid") == record.request_uuid:
            try:
                return from_live(record.attempt_id, live)
            except BadEvent:
                return None
    return None


async def outcome_from_records(store: CallStore, plivo: PlivoClient, record: CallRecord) -> CallEvent | None:
    """The settled outcome Plivo's records prove for `record`, or None when they do not (yet)."""
    if record.call_uuid:
        cdr = await plivo.call_detail(record.call_uuid)
        if cdr is None:
            return None
        try:
            return from_cdr(record.attempt_id, cdr, "plivo-api:detail-record")
        except BadEvent as exc:
            log.warning("call %s: detail record not usable: %s", record.call_id, exc)
            return None
    started_ms = record.dispatched_at_ms or record.created_at_ms
    since = datetime.fromtimestamp(started_ms / 1000 - CLOCK_SLACK_S, UTC)
    for cdr in await plivo.find_calls(record.phone_number, since):
        call_uuid = str(cdr.get("call_uuid") or "")
        initiated = _epoch(cdr.get("initiation_time"))
        if not call_uuid or (initiated is not None and initiated < started_ms / 1000 - CLOCK_SLACK_S):
            continue
        owner = await store.call_id_for(call_uuid=call_uuid)  # the attempt id that owns the uuid
        if owner not in (None, record.attempt_id):
            continue
        try:
            event = from_cdr(record.attempt_id, cdr, "plivo-api:list")
        except BadEvent:
            continue
        log.info("call %s: found its detail record by destination and time: %s", record.call_id, call_uuid)
        return event
    return None
