"""The result body POSTed to the backend for one outbox entry (docs/contracts.md, "Call results")."""

from __future__ import annotations

from typing import Any

from callqueue.store.records import CallRecord, iso


def result_body(record: CallRecord, outcome: str, call: CallRecord | None = None) -> dict[str, Any]:
    """Built at delivery time from `record`, the view of the attempt the outbox entry was written for, and `call`,
    the call as it stands now; `outcome` is that attempt's status. `final` is false when another attempt follows
    (the retry policy redials) or the outcome is `unknown` (it may still be settled): exactly one result of a call
    has `final: true` (docs/contracts.md, "Call results")."""
    call = call or record
    later = call.attempt > record.attempt
    return {
        "call_id": record.call_id,
        "attempt": record.attempt,
        "attempt_id": record.attempt_id,
        "campaign_id": record.campaign_id,
        "phone_number": record.phone_number,
        "outcome": outcome,
        "final": outcome != "unknown" and not later,
        "next_attempt": {"attempt": call.attempt, "status": call.status.value, "due_at": iso(call.due_at_ms)}
        if later
        else None,
        "duration": record.duration,
        "hangup_cause": record.hangup_cause,
        "recording_url": record.recording_url,
        "attempts": record.attempts,
        "reason": record.reason,
        "request_uuid": record.request_uuid,
        "call_uuid": record.call_uuid,
        "call_config": record.call_config,
        "timeline": [t.as_json() for t in record.history],
    }


def wants_recording(record: CallRecord) -> bool:
    """Ask Plivo's recordings API only for answered calls whose config asks for a recording (`record: true`):
    the agent or the callback usually brings the URL, and every lookup spends the shared REST budget."""
    return (
        record.recording_url is None
        and record.call_uuid is not None
        and (record.duration or 0) > 0
        and bool(record.call_config.get("record"))
    )
