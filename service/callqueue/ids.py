"""Call ids: made here, and checked here wherever one arrives from outside (API paths, callbacks, agent events).

A call id becomes part of Redis keys (`{prefix}:call:{id}`, …), so only the exact format we hand out is accepted:
anything else could address another key (`<id>:history` is the call's history list). A malformed id is simply an
unknown call (404): it was never ours.
"""

from __future__ import annotations

import re
import uuid

CALL_ID_PATTERN = r"^[0-9a-f]{32}$"
CALL_ID_RULE = "32 lowercase hex digits, as returned by POST /api/calls/queue"
_CALL_ID = re.compile(CALL_ID_PATTERN)


def new_call_id() -> str:
    return uuid.uuid4().hex


def is_call_id(value: str) -> bool:
    return _CALL_ID.fullmatch(value) is not None


def shown(value: str, limit: int = 64) -> str:
    """An untrusted id as it may appear in a message or log line: quoted, and cut short."""
    return repr(value if len(value) <= limit else value[:limit] + "…")
