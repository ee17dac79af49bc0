"""Ids: made here, and checked here wherever one arrives from outside (API paths, callbacks, agent events, outbox).

A call id becomes part of Redis keys (`{prefix}:call:{id}`, …), so only the exact format we hand out is accepted:
anything else could address another key (`<id>:history` is the call's history list). A malformed id is simply an
unknown call (404): it was never ours.

Where a single dial travels (the agent's `call_id`, Plivo's callback URLs, the agent's event stream and status
lookups, outbox members), the id is an attempt id: the call id for attempt 1, `{call_id}.{n}` for attempt n, 2 to
MAX_ATTEMPTS (store/attempts.py); the public call API takes call ids only. Campaign ids and phone numbers that
arrive in a path are checked the same way (campaign ids: CAMPAIGN_ID_PATTERN, phone numbers: phones.py).
"""

from __future__ import annotations

import os
import re

MAX_ATTEMPTS = 10  # dial attempts of one call at most (a retry policy's max_attempts is bounded by it)
ATTEMPT_SEPARATOR = "."

CALL_ID_PATTERN = r"^[0-9a-f]{32}$"
CALL_ID_RULE = "32 lowercase hex digits, as returned by POST /api/calls/queue"
# The attempt suffix as an exact alternation (2|3|…|MAX_ATTEMPTS), so the schema states the bound too.
_SUFFIX = "|".join(str(n) for n in range(MAX_ATTEMPTS, 1, -1))
ATTEMPT_ID_PATTERN = rf"^[0-9a-f]{{32}}(\.({_SUFFIX}))?$"
ATTEMPT_ID_RULE = f"a call id, or a call id with '.n' for its dial attempt n (2 to {MAX_ATTEMPTS})"

CAMPAIGN_ID_MAX = 128
CAMPAIGN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
CAMPAIGN_ID_RULE = f"1 to {CAMPAIGN_ID_MAX} characters: letters, digits and _ . : -, starting with a letter or digit"

_CALL_ID = re.compile(CALL_ID_PATTERN)
_ATTEMPT_ID = re.compile(ATTEMPT_ID_PATTERN)
_CAMPAIGN_ID = re.compile(CAMPAIGN_ID_PATTERN)


# A version 4 UUID from 16 random bytes, as uuid.uuid4() makes it, without building the UUID object (a third of the
# cost; every enqueue makes one).
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_call_id() -> str:
    """32 lowercase hex digits: a random (version 4) UUID."""
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


def is_call_id(value: str) -> bool:
    return _CALL_ID.fullmatch(value) is not None


def is_attempt_id(value: str) -> bool:
    """A call id, or `{call_id}.{n}` with n from 2 to MAX_ATTEMPTS: what the agent and Plivo know a dial by."""
    return _ATTEMPT_ID.fullmatch(value) is not None


def is_campaign_id(value: str) -> bool:
    return len(value) <= CAMPAIGN_ID_MAX and _CAMPAIGN_ID.fullmatch(value) is not None


def shown(value: str, limit: int = 64) -> str:
    """An untrusted id as it may appear in a message or log line: quoted, and cut short."""
    return repr(value if len(value) <= limit else value[:limit] + "…")
