"""Dial attempts of one call: their ids, and which fields of the call record belong to the call, not to an attempt.

The attempt id is what the world outside the queue sees for one dial: the agent's `call_id` and Idempotency-Key,
Plivo's callback URLs, the agent's event stream, and the backend's result key. It is the call id for the first
attempt (so a call dialled once looks exactly as it always did) and `{call_id}.{n}` for attempt n ≥ 2.
"""

from __future__ import annotations

from callqueue.ids import ATTEMPT_SEPARATOR as SEPARATOR

# Fields that describe the call across its attempts. Every other field of the call hash describes the current
# attempt (uuids, duration, hang-up cause, reason, tracking bookkeeping…) and is moved into that attempt's
# snapshot when the next attempt starts. A new call-level field must be added here.
CALL_FIELDS = frozenset(
    {
        "call_id",
        "phone_number",
        "campaign_id",
        "call_config",
        "created_at",
        "accepted_as",  # the status it was accepted in: with created_at, its first history entry (records.py)
        "seq",
        "attempts",  # agent start requests over the call's life (monotonic: a fencing token may rely on it)
        "lease",  # claims over the call's life: the fencing token of the current one (store/scripts.py)
        "fingerprint",
        "retention_s",  # CALL_RETENTION when it was accepted: how long it is kept once final
        "idempotency_key",
        "item_key",
        "traceparent",  # one trace per call, across its attempts
        "status",
        "updated_at",
        "attempt",  # the current dial attempt, 1-based (absent: 1)
        "starts_before",  # `attempts` when the current dial attempt began
        "retry",  # the call's own retry policy (JSON), overriding its campaign's
        "zones",  # the time zones its calling hours are checked in, comma-separated
        "zone_source",
        "not_before",
        "due_at",
        "waiting_for",
        "window_close",
        "wver",
        "retry_after",
    }
)
# Delivery bookkeeping of results still in the outbox stays with the call, whichever attempt they belong to.
CALL_FIELD_PREFIXES = ("trk_delivery_", "trk_dead_letter")


def attempt_id(call_id: str, attempt: int) -> str:
    return call_id if attempt <= 1 else f"{call_id}{SEPARATOR}{attempt}"


def split_attempt_id(value: str) -> tuple[str, int]:
    """(call_id, attempt) of an attempt id; a plain call id is attempt 1."""
    base, sep, number = value.rpartition(SEPARATOR)
    if sep and base and number.isdigit() and int(number) >= 2:
        return base, int(number)
    return value, 1
