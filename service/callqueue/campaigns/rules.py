"""Which outcomes a retry policy may redial, and which attempts the circuit breaker counts as failures.

Compiled into the Lua scripts (store/scripts.py), where the decisions are taken atomically with the outcome.
"""

from __future__ import annotations

from callqueue.states import CallStatus

# Never redialled, whatever a policy says: completed, canceled, suppressed, unknown (the person may have been
# reached) — and an invalid or barred number (below).
RETRYABLE = frozenset({CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED, CallStatus.MISSED})

# Plivo hang-up causes that make a `failed` permanent (plivo.com/docs/voice/troubleshooting/hangup-causes):
# 2000 Invalid Destination Address, 2030 Destination Country Barred, 2040 Destination Number Barred.
PERMANENT_HANGUP_CODES = frozenset({"2000", "2030", "2040"})
# A `failed` the dispatcher records because the agent refused the start (4xx, malformed answer) is permanent too:
# it carries the call field failure_kind=permanent.
PERMANENT_FAILURE_KIND = "permanent"

# The breaker counts dialled attempts: these outcomes (and Plivo's 1010 "Canceled (Out Of Credits)") are failures
# of the system, not of the person (busy, no answer and completed are the person's answers).
BREAKER_FAILURES = frozenset({CallStatus.FAILED, CallStatus.MISSED, CallStatus.UNKNOWN})
OUT_OF_CREDITS_CODE = "1010"
