"""The call state machine: statuses, their order, and which moves are allowed.

Transitions only move forward, so a late or duplicated event can never undo what is already known. The one
exception is `unknown`: tracking gave up, and a later source that knows the real outcome may still settle it.
The same rules are compiled into the Redis transition script (store/scripts.py), which is where they are enforced.

They hold per dial attempt: a call whose attempt ended with an outcome its retry policy redials starts its next
attempt at `scheduled` (store/scripts.py, `start_retry`), and events name the attempt they belong to, so a late
event of attempt 1 never touches attempt 2 (docs/contracts.md, "Attempts").
"""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time: a retry's wait, its calling hours, or not_before (see due_at)
    QUEUED = "queued"
    DISPATCHING = "dispatching"  # a worker holds the call and is asking the agent to start it
    DISPATCHED = "dispatched"  # the agent accepted it; Plivo's request uuid is known
    INITIATED = "initiated"  # Plivo has the call (queued for its CPS slot, or dialling); not visible as live yet
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CANCELED = "canceled"
    FAILED = "failed"  # a source said the call failed, with its reason
    MISSED = "missed"  # nothing rang or answered within AUTO_MISS_TIMEOUT
    SUPPRESSED = "suppressed"  # the number is on the suppression list: never dialled
    UNKNOWN = "unknown"  # tracking could not decide; reconciliation may still settle it


SETTLED = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.CANCELED,
        CallStatus.FAILED,
        CallStatus.MISSED,
        CallStatus.SUPPRESSED,
    }
)
FINAL = SETTLED | {CallStatus.UNKNOWN}
# Calls that hold one of the MAX_CONCURRENT_CALLS slots.
IN_FLIGHT = frozenset(
    {
        CallStatus.DISPATCHING,
        CallStatus.DISPATCHED,
        CallStatus.INITIATED,
        CallStatus.RINGING,
        CallStatus.IN_PROGRESS,
    }
)

# Waiting to be dialled: no dial of the current attempt has started.
WAITING = frozenset({CallStatus.SCHEDULED, CallStatus.QUEUED})

# `scheduled` and `queued` share rank 0: moves between them are made only by dedicated scripts (planning, claims).
RANK: dict[CallStatus, int] = {
    CallStatus.SCHEDULED: 0,
    CallStatus.QUEUED: 0,
    CallStatus.DISPATCHING: 1,
    CallStatus.DISPATCHED: 2,
    CallStatus.INITIATED: 3,
    CallStatus.RINGING: 4,
    CallStatus.IN_PROGRESS: 5,
    CallStatus.UNKNOWN: 9,
    **{status: 10 for status in SETTLED},
}


def may_transition(current: CallStatus, new: CallStatus) -> bool:
    """Forward only; a settled outcome is never replaced; `unknown` may still be settled."""
    if current in SETTLED:
        return False
    if current is CallStatus.UNKNOWN:
        return new in SETTLED
    return RANK[new] > RANK[current]
