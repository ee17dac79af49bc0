"""What a source said about a call, normalised into one `CallEvent`, whatever the source (callback, agent, Plivo).

Parsing is strict: anything that is not the documented shape raises `BadEvent` with the reason, so the caller can
record it and move on; no call changes state because of input it did not understand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callqueue.ids import CALL_ID_RULE, is_call_id, shown
from callqueue.states import CallStatus

# Plivo's CallStatus values (callbacks, live lookups, detail records).
PLIVO_STATUS: dict[str, CallStatus] = {
    "queued": CallStatus.INITIATED,
    "initiated": CallStatus.INITIATED,
    "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.IN_PROGRESS,
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
    "timeout": CallStatus.NO_ANSWER,
    "cancel": CallStatus.CANCELED,
    "failed": CallStatus.FAILED,
}
# The agent may use Plivo's spellings or ours (docs/contracts.md).
AGENT_STATUS: dict[str, CallStatus] = {
    **PLIVO_STATUS,
    "call_initiated": CallStatus.INITIATED,
    "in_progress": CallStatus.IN_PROGRESS,
    "no_answer": CallStatus.NO_ANSWER,
    "canceled": CallStatus.CANCELED,
    "cancelled": CallStatus.CANCELED,
}
# Detail records of the real API carry `call_state` rather than `call_status`.
CDR_STATE: dict[str, CallStatus] = {
    "ANSWER": CallStatus.COMPLETED,
    "BUSY": CallStatus.BUSY,
    "NO_ANSWER": CallStatus.NO_ANSWER,
    "CANCEL": CallStatus.CANCELED,
    "FAILED": CallStatus.FAILED,
    "TIMEOUT": CallStatus.NO_ANSWER,
}


class BadEvent(ValueError):
    """Input that is not the documented shape; the message is the reason recorded."""


@dataclass(frozen=True)
class CallEvent:
    call_id: str
    status: CallStatus
    source: str
    detail: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str | int] = field(default_factory=dict)


def _put(fields: dict[str, str | int], name: str, value: Any) -> None:
    if value is None or value == "":
        return
    fields[name] = int(float(value)) if name == "duration" else str(value)


def from_plivo_callback(call_id: str, event: str, params: dict[str, str]) -> CallEvent:
    """A ring or hang-up callback's form parameters."""
    raw = params.get("CallStatus", "").strip().lower()
    status = PLIVO_STATUS.get(raw)
    if status is None:
        raise BadEvent(f"CallStatus {raw!r} is not one of {sorted(PLIVO_STATUS)}")
    fields: dict[str, str | int] = {}
    _put(fields, "call_uuid", params.get("CallUUID"))
    _put(fields, "request_uuid", params.get("RequestUUID") or params.get("ALegRequestUUID"))
    try:
        _put(fields, "duration", params.get("Duration"))
    except ValueError:
        raise BadEvent(f"Duration {params.get('Duration')!r} is not a number") from None
    _put(fields, "hangup_cause", params.get("HangupCauseName") or params.get("HangupCause"))
    _put(fields, "hangup_cause_code", params.get("HangupCauseCode"))
    _put(fields, "hangup_source", params.get("HangupSource"))
    _put(fields, "answer_time", params.get("AnswerTime"))
    _put(fields, "end_time", params.get("EndTime"))
    _put(fields, "recording_url", params.get("RecordUrl") or params.get("RecordingUrl"))
    detail = {"event": event, "call_status": raw, **{k: v for k, v in fields.items() if k != "request_uuid"}}
    return CallEvent(call_id, status, f"plivo-callback:{event}", detail, fields)


AGENT_FIELDS = ("request_uuid", "call_uuid", "duration", "hangup_cause", "recording_url")


def from_agent_entry(entry: dict[str, str]) -> CallEvent:
    """One entry of the agent's Redis stream (docs/contracts.md, "Agent events")."""
    call_id = entry.get("call_id", "").strip()
    if not call_id:
        raise BadEvent("entry has no call_id")
    if not is_call_id(call_id):
        raise BadEvent(f"call_id {shown(call_id)} is not a call id ({CALL_ID_RULE})")
    raw = entry.get("status", "").strip().lower()
    status = AGENT_STATUS.get(raw)
    if status is None:
        raise BadEvent(f"status {raw!r} is not one of {sorted(AGENT_STATUS)}")
    fields: dict[str, str | int] = {}
    try:
        for name in AGENT_FIELDS:
            _put(fields, name, entry.get(name))
    except ValueError:
        raise BadEvent(f"duration {entry.get('duration')!r} is not a number") from None
    source = entry.get("source", "").strip() or "agent"
    detail = {"status": raw, "at": entry.get("at"), "via": "agent-events", **fields}
    return CallEvent(call_id, status, f"agent-stream:{source}", detail, fields)


def from_agent_status(call_id: str, status: str, fields: dict[str, Any]) -> CallEvent:
    """The agent's GET /calls/{call_id} answer."""
    mapped = AGENT_STATUS.get(status.strip().lower())
    if mapped is None:
        raise BadEvent(f"agent status {status!r} is not one of {sorted(AGENT_STATUS)}")
    clean: dict[str, str | int] = {}
    for name in AGENT_FIELDS:
        _put(clean, name, fields.get(name))
    return CallEvent(call_id, mapped, "agent-status", {"status": status, **clean}, clean)


def from_live(call_id: str, live: dict[str, Any]) -> CallEvent:
    """Plivo's live-call object (`?status=live`)."""
    raw = str(live.get("call_status") or "").lower()
    status = PLIVO_STATUS.get(raw)
    if status not in (CallStatus.RINGING, CallStatus.IN_PROGRESS):
        raise BadEvent(f"live call answer has call_status {raw!r}, expected ringing or in-progress")
    fields: dict[str, str | int] = {}
    _put(fields, "call_uuid", live.get("call_uuid"))
    return CallEvent(call_id, status, "plivo-api:live", {"call_status": raw}, fields)


def cdr_outcome(cdr: dict[str, Any]) -> tuple[CallStatus, str]:
    """The outcome a detail record proves, and why; BadEvent when it proves nothing."""
    raw = str(cdr.get("call_status") or "").lower()
    if raw in PLIVO_STATUS and PLIVO_STATUS[raw] not in (CallStatus.RINGING, CallStatus.IN_PROGRESS):
        status = PLIVO_STATUS[raw]
        if status is CallStatus.INITIATED:
            raise BadEvent(f"detail record has call_status {raw!r}: the call has not ended")
        return status, f"call_status={raw}"
    state = str(cdr.get("call_state") or "").upper()
    if state in CDR_STATE:
        return CDR_STATE[state], f"call_state={state}"
    cause = str(cdr.get("hangup_cause_name") or "")
    if not cause or not cdr.get("end_time"):
        raise BadEvent("detail record has neither call_status, call_state nor hangup_cause_name and end_time")
    lowered = cause.lower()
    if cdr.get("answer_time"):
        return CallStatus.COMPLETED, f"answered; hangup_cause_name={cause}"
    for word, status in (("busy", CallStatus.BUSY), ("no answer", CallStatus.NO_ANSWER)):
        if word in lowered:
            return status, f"hangup_cause_name={cause}"
    if "cancel" in lowered or "reject" in lowered:
        return CallStatus.CANCELED, f"hangup_cause_name={cause}"
    return CallStatus.FAILED, f"never answered; hangup_cause_name={cause}"


def from_cdr(call_id: str, cdr: dict[str, Any], source: str) -> CallEvent:
    """A finished call's detail record (`GET Call/{call_uuid}/`, or one row of the list API)."""
    status, why = cdr_outcome(cdr)
    fields: dict[str, str | int] = {}
    _put(fields, "call_uuid", cdr.get("call_uuid"))
    try:
        _put(fields, "duration", cdr.get("call_duration", cdr.get("bill_duration")))
    except ValueError:
        raise BadEvent(f"call_duration {cdr.get('call_duration')!r} is not a number") from None
    _put(fields, "hangup_cause", cdr.get("hangup_cause_name"))
    _put(fields, "hangup_cause_code", cdr.get("hangup_cause_code"))
    _put(fields, "hangup_source", cdr.get("hangup_source"))
    _put(fields, "answer_time", cdr.get("answer_time"))
    _put(fields, "end_time", cdr.get("end_time"))
    if status is CallStatus.FAILED:
        fields["reason"] = f"Plivo detail record: {why}"
    return CallEvent(call_id, status, source, {"why": why, **fields}, fields)
