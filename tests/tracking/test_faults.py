"""Plivo 5xx and 429 bursts, undocumented answers, an agent answering HTML: tolerated, recorded, never `failed`.
Errors past MAX_CONSECUTIVE_ERRORS make the call `unknown` with the reason; Plivo's records later settle it."""

from __future__ import annotations

import time
from typing import cast

from tests.tracking.conftest import StackFactory, new_number, path, wait_for

QUICK = {"ring_after": 0.2, "answer_after": 0.3, "talk_for": 0.5, "cdr_delay": 0.3}
SILENT = {**QUICK, "callbacks": {"ring": "drop", "hangup": "drop"}}


def test_5xx_and_429_bursts_and_bad_answers_do_not_fail_calls(stack: StackFactory) -> None:
    s = stack(MAX_CONSECUTIVE_ERRORS="4")
    numbers = [new_number() for _ in range(4)]
    for number in numbers:
        s.script(number, {**SILENT, "queue_for": 2})
    ids = [s.queue(n) for n in numbers]
    wait_for(lambda: all(s.call(c)["status"] == "dispatched" for c in ids), 5, "dispatch")
    s.plivo_fault(status=503, count=4, path_contains="/Call/")
    s.plivo_fault(status=429, count=4, path_contains="/Call/", retry_after=1)
    s.plivo_fault(status=200, body='{"api_id": "x"}', count=1, path_contains="/Call/")  # fields missing
    s.agent_fault(status=200, body="<html><body>Service Unavailable</body></html>", count=3, path_contains="/calls/")
    records = {c: s.wait(c, timeout=25) for c in ids}
    for record in records.values():
        assert record["status"] == "completed", record
        assert not {"failed", "unknown", "missed"} & set(path(record)), path(record)
    stats = s.plivo_stats()["by_status"]
    assert stats.get("503") and stats.get("429"), stats
    problems = " ".join(
        cast(str | None, s.redis.hget(f"{s.prefix}:call:{c}", "trk_last_source_problem")) or "" for c in ids
    )
    assert "HTTP 503" in problems or "call_status" in problems or "agent" in problems, problems


def test_errors_past_tolerance_become_unknown_then_reconciled_from_plivo_records(stack: StackFactory) -> None:
    s = stack(MAX_CONSECUTIVE_ERRORS="2", MAX_STATUS_RETRIES="0")
    number = new_number()
    # A busy call never rings: no live lookup, so not even the live sweep learns its call uuid; only its request
    # uuid is known, and the faults below are aimed at that call's own lookups.
    s.script(number, {**SILENT, "outcome": "busy"})
    call_id = s.queue(number)
    request_uuid = s.wait(call_id, {"dispatched"}, timeout=30)["request_uuid"]
    s.plivo_fault(status=503, count=2, path_contains=f"/Call/{request_uuid}/")
    s.agent_fault(status=503, count=2, path_contains="/calls/")
    unknown = s.wait(call_id, {"unknown"}, timeout=10)
    assert "consecutive checks" in (unknown["reason"] or ""), unknown
    assert unknown["history"][-1]["detail"]["reason"] == unknown["reason"]
    settled = s.wait(call_id, {"completed", "busy", "no_answer", "failed", "canceled", "missed"}, timeout=20)
    assert settled["status"] == "busy", settled
    statuses = path(settled)
    assert statuses[-2:] == ["unknown", "busy"] and "failed" not in statuses
    assert settled["history"][-1]["source"] == "plivo-api:list"  # found by destination and time
    assert settled["call_uuid"]
    deadline = time.monotonic() + 10
    while f"{call_id}:busy" not in s.backend_results()["results"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"{call_id}:busy" in s.backend_results()["results"]
