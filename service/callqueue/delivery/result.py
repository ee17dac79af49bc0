"""The result body POSTed to the backend for one outbox entry (docs/contracts.md, "Call results")."""

from __future__ import annotations

from typing import Any

from callqueue.store.records import CallRecord


def result_body(record: CallRecord, outcome: str) -> dict[str, Any]:
    """Built from the record at delivery time; `outcome` is the status the outbox entry was written for."""
    return {
        "call_id": record.call_id,
        "campaign_id": record.campaign_id,
        "phone_number": record.phone_number,
        "outcome": outcome,
        "final": outcome != "unknown",
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
