"""The seed's before/after under the real Cloud Run profile (20 s initial delay, 15 s interval, 60 s auto-miss).

A call stays invisible at Plivo for 8 s after creation, then rings and completes. The seed checked at once, saw
"not found" and marked it FAILED. Here: even a check forced at once (the seed's "before") records `initiated`,
and the call ends `completed` without ever passing through `failed` — by callbacks, or by polling alone.
"""

from __future__ import annotations

import logging
import time

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
    started = time.monotonic()
    ids = {
        name: s.queue(number) for name, number in (("cb", with_callbacks), ("poll", polled), ("now", checked_at_once))
    }
    # The seed's "Checking status immediately...": pull the first check of one call forward to right now.
    wait_for(lambda: s.call(ids["now"])["status"] == "dispatched", 5, "dispatch")
    s.redis.zadd(f"{s.prefix}:tracking", {ids["now"]: 0})
    early = s.wait(ids["now"], {"initiated"}, timeout=5)
    assert early["history"][-1]["source"].startswith(("plivo-api", "agent-status")), early["history"][-1]
    records = {name: s.wait(call_id, timeout=45) for name, call_id in ids.items()}
    elapsed = time.monotonic() - started
    for name, record in records.items():
        assert record["status"] == "completed", (name, record)
        assert "failed" not in path(record), (name, path(record))
        assert path(record)[-1] == "completed"
    assert "initiated" in path(records["now"])
    assert "ringing" in path(records["cb"])
    assert records["poll"]["call_uuid"] and records["poll"]["duration"] == 3
    assert elapsed < 40, f"polling finished in {elapsed:.0f}s: first check at 20 s, then every 15 s"
    assert "Call status changed: dispatched → initiated" in caplog.text
    assert "→ completed" in caplog.text
