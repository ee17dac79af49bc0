"""The seed's before/after under the real Cloud Run profile (20 s initial delay, 15 s interval, 60 s auto-miss).

A call stays invisible at Plivo for 8 s after creation, then rings and completes. The seed checked at once, saw
"not found" and marked it FAILED. Here: even a check forced at once (the seed's "before") records `initiated`,
and the call ends `completed` without ever passing through `failed` — by callbacks, or by polling alone.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest

from tests.tracking.conftest import StackFactory, new_number, path, wait_for

CLOUD_RUN = {
    "CLOUD_RUN_OPTIMIZED": "true",
    **{
        name: ""  # empty = the profile's value, not the shrunk test value
        for name in (
            "INITIAL_STATUS_DELAY",
            "STATUS_CHECK_INTERVAL",
            "REQUEST_TIMEOUT",
            "MAX_STATUS_RETRIES",
            "MAX_CONSECUTIVE_ERRORS",
            "AUTO_MISS_TIMEOUT",
        )
    },
}
INVISIBLE = {"invisible_for": 8, "ring_after": 1, "answer_after": 1, "talk_for": 3, "cdr_delay": 1}


def test_call_invisible_for_8s_completes_and_never_fails_under_cloud_run_profile(
    stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callqueue.tracking")
    s = stack(**CLOUD_RUN)
    with_callbacks, polled, checked_at_once = new_number(), new_number(), new_number()
    s.script(with_callbacks, INVISIBLE)
    s.script(polled, {**INVISIBLE, "callbacks": {"ring": "drop", "hangup": "drop"}})
    s.script(checked_at_once, {**INVISIBLE, "callbacks": {"ring": "drop", "hangup": "drop"}})
    ids = {
        name: s.queue(number) for name, number in (("cb", with_callbacks), ("poll", polled), ("now", checked_at_once))
    }
    # The seed's "Checking status immediately...": pull the first check of one call forward to right now.
    wait_for(lambda: s.call(ids["now"])["status"] == "dispatched", 30, "dispatch")
    s.redis.zadd(f"{s.prefix}:tracking", {ids["now"]: 0})
    early = s.wait(ids["now"], {"initiated"}, timeout=15)  # the scheduled check would come at 20 s
    assert early["history"][-1]["source"].startswith(("plivo-api", "agent-status")), early["history"][-1]
    records = {name: s.wait(call_id, timeout=45) for name, call_id in ids.items()}
    for name, record in records.items():
        assert record["status"] == "completed", (name, record)
        assert "failed" not in path(record), (name, path(record))
        assert path(record)[-1] == "completed"
    assert "initiated" in path(records["now"])
    assert "ringing" in path(records["cb"])
    assert records["poll"]["call_uuid"] and records["poll"]["duration"] == 3
    took = max(_span_s(record) for record in records.values())  # the service's own record, not the test's waiting
    assert took < 40, f"polling finished in {took:.0f}s: first check at 20 s, then every 15 s"
    assert "Call status changed: dispatched → initiated" in caplog.text
    assert "→ completed" in caplog.text


def _span_s(record: dict[str, Any]) -> float:
    """Seconds from the call's first recorded transition (queued) to its last (its outcome)."""
    times = [datetime.fromisoformat(h["at"].replace("Z", "+00:00")) for h in record["history"]]
    return (times[-1] - times[0]).total_seconds()
