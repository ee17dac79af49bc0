"""Search Plivo for the dial of one attempt whose start answer was lost: is the person being called, or not?

Three places, each within the shared REST budget: calls waiting in Plivo's CPS queue (`GET Call/?status=queued`,
then each request uuid no call of ours owns), live calls (`GET Call/?status=live`, then each unowned call uuid),
and finished calls to the number since the attempt began (`GET Call/?to_number=…&end_time__gte=…`). A call is
taken as this attempt's when its destination is the attempt's number and no other attempt of ours owns its uuid.

The answer is `found` (adopt it), `absent` (every place was searched completely and none holds it) or
`incomplete` (too many unowned calls to look at in one search: no conclusion either way).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from callqueue.clients.plivo import PlivoClient
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from callqueue.store.records import CallRecord
from callqueue.tracking.events import BadEvent, CallEvent, from_cdr, from_live

log = logging.getLogger("callqueue.reconcile")
MAX_LOOKUPS = 25  # unowned queued/live calls looked at per search; beyond it the search is incomplete
CLOCK_SLACK_S = 10  # Plivo's times have whole seconds and its clock may differ a little from ours


@dataclass
class DialSearch:
    outcome: Literal["found", "absent", "incomplete"]
    where: str = ""  # queued | live | record
    event: CallEvent | None = None
    request_uuid: str | None = None
    call_uuid: str | None = None
    looked: dict[str, int] = field(default_factory=dict)


def digits(number: object) -> str:
    """Plivo reports numbers without '+'; compare digits only."""
    return "".join(ch for ch in str(number or "") if ch.isdigit())


def attempt_began_ms(record: CallRecord) -> int:
    """When the first start request of the current attempt was made (its first `dispatching`)."""
    times = [t.at_ms for t in record.history if t.status is CallStatus.DISPATCHING and t.attempt == record.attempt]
    return min(times) if times else (record.dispatched_at_ms or record.created_at_ms)


async def _owned_elsewhere(store: CallStore, record: CallRecord, **uuid: str) -> bool:
    owner = await store.call_id_for(**uuid)
    return owner not in (None, record.attempt_id)


async def search_dial(store: CallStore, plivo: PlivoClient, record: CallRecord) -> DialSearch:
    """Where Plivo shows this attempt's dial, or that it shows none (module docstring)."""
    want = digits(record.phone_number)
    looked = {"queued": 0, "live": 0, "records": 0}
    complete = True
    queued = [
        u for u in await plivo.queued_request_uuids() if not await _owned_elsewhere(store, record, request_uuid=u)
    ]
    complete &= len(queued) <= MAX_LOOKUPS
    for request_uuid in queued[:MAX_LOOKUPS]:
        looked["queued"] += 1
        call = await plivo.queued_call(request_uuid)
        if call is not None and digits(call.get("to")) == want:
            detail = {"observed": "queued at Plivo for a CPS slot", "found_by": "dial search"}
            event = CallEvent(record.attempt_id, CallStatus.INITIATED, "plivo-api:queued", detail)
            return DialSearch("found", "queued", event, request_uuid, None, looked)
    live = [u for u in await plivo.live_call_uuids() if not await _owned_elsewhere(store, record, call_uuid=u)]
    complete &= len(live) <= MAX_LOOKUPS
    for call_uuid in live[:MAX_LOOKUPS]:
        looked["live"] += 1
        call = await plivo.live_call(call_uuid)
        if call is None or digits(call.get("to")) != want:
            continue
        live_request_uuid = str(call.get("request_uuid") or "") or None
        if live_request_uuid and await _owned_elsewhere(store, record, request_uuid=live_request_uuid):
            continue
        try:
            event = from_live(record.attempt_id, call)
        except BadEvent as exc:
            log.warning("call %s: live call %s not usable: %s", record.call_id, call_uuid, exc)
            continue
        return DialSearch("found", "live", event, live_request_uuid, call_uuid, looked)
    since = datetime.fromtimestamp(attempt_began_ms(record) / 1000 - CLOCK_SLACK_S, UTC)
    for cdr in await plivo.find_calls(record.phone_number, since):
        looked["records"] += 1
        call_uuid = str(cdr.get("call_uuid") or "")
        if not call_uuid or digits(cdr.get("to_number")) not in ("", want):
            continue
        if await _owned_elsewhere(store, record, call_uuid=call_uuid):
            continue
        try:
            event = from_cdr(record.attempt_id, cdr, "plivo-api:list")
        except BadEvent as exc:
            log.warning("call %s: detail record %s not usable: %s", record.call_id, call_uuid, exc)
            continue
        return DialSearch("found", "record", event, None, call_uuid, looked)
    return DialSearch("absent" if complete else "incomplete", looked=looked)
