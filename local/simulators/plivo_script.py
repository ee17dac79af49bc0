"""What a simulated Plivo call does: the per-call script and the hang-up details of each outcome.

Every duration in a script is in *script seconds*; the server multiplies them by its `time_scale` before
sleeping (0.01 runs a 5 s call in 50 ms). Durations reported back (Duration, bill_duration) are in script
seconds; timestamps are wall-clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Outcome = Literal["completed", "busy", "no_answer", "failed", "canceled", "timeout"]
CALLBACK_MODE = re.compile(r"^(send|drop|duplicate|late:\d+(\.\d+)?)$")


class Script(BaseModel):
    """The scripted life of one call, from `POST Call/` to its detail record (all times in script seconds).

    invisible_for: every GET naming the call (and the lists) misses it this long after creation — the
      "call not found right after creation" symptom. queue_for: least time queued at Plivo (the CPS slot may
      add more). ring_after: from leaving the queue to ringing, or to failing for busy/failed/timeout; no
      lookup finds the call in between. answer_after: ringing time before the answer (completed, capped by
      the request's ring_timeout: a later answer becomes no-answer) or before giving up (no_answer,
      canceled). talk_for: answered time (capped by time_limit). callbacks: per event `ring`/`hangup` one of
      send, drop, duplicate, late:N. out_of_order: the ring callback waits until the hang-up one was sent.
      recording: a recording exists after an answered call. cdr_delay: hang-up until the detail record shows.
    """

    model_config = ConfigDict(extra="forbid")

    invisible_for: float = Field(default=0.0, ge=0)
    queue_for: float = Field(default=0.0, ge=0)
    ring_after: float = Field(default=0.0, ge=0)
    outcome: Outcome = "completed"
    answer_after: float = Field(default=1.0, ge=0)
    talk_for: float = Field(default=3.0, ge=0)
    callbacks: dict[Literal["ring", "hangup"], str] = Field(default_factory=dict)
    out_of_order: bool = False
    recording: bool = False
    cdr_delay: float = Field(default=1.0, ge=0)

    @field_validator("callbacks")
    @classmethod
    def _modes(cls, value: dict[str, str]) -> dict[str, str]:
        for event, mode in value.items():
            if not CALLBACK_MODE.match(mode):
                raise ValueError(f"callback mode for {event}: send, drop, duplicate or late:N, not {mode!r}")
        return value

    def callback_mode(self, event: Literal["ring", "hangup"]) -> str:
        return self.callbacks.get(event, "send")


@dataclass(frozen=True)
class Ending:
    """How a call ends, as Plivo reports it in the hang-up callback and the detail record."""

    call_status: str
    hangup_cause: str
    hangup_cause_name: str
    hangup_cause_code: int
    hangup_source: str
    rings: bool = True


# Codes, names and sources follow plivo.com/docs/voice/troubleshooting/hangup-causes where checked (1000,
# 2010, 4000, the source names); 3000/3010/3020 and the timeout and time-limit rows are this simulator's best
# reading: verify against that page before a test relies on them.
OUTCOMES: dict[str, Ending] = {
    "completed": Ending("completed", "NORMAL_CLEARING", "Normal Hangup", 4000, "Call recipient"),
    "busy": Ending("busy", "USER_BUSY", "Busy Line", 3000, "Call recipient", rings=False),
    "no_answer": Ending("no-answer", "NO_ANSWER", "No Answer", 3020, "Carrier"),
    "canceled": Ending("cancel", "CALL_REJECTED", "Rejected", 3010, "Call recipient"),
    "failed": Ending("failed", "DESTINATION_OUT_OF_ORDER", "Destination Out Of Service", 2010, "Carrier", False),
    "timeout": Ending("timeout", "RECOVERY_ON_TIMER_EXPIRE", "Timeout", 5010, "Plivo", rings=False),
}
API_CANCEL = Ending("cancel", "ORIGINATOR_CANCEL", "Canceled", 1000, "API Request")
API_HANGUP = Ending("completed", "NORMAL_CLEARING", "Normal Hangup", 4000, "API Request")
TIME_LIMIT = Ending("completed", "ALLOTTED_TIMEOUT", "Time Limit Reached", 4000, "Plivo")
