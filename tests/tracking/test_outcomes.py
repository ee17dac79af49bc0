"""Every outcome, reached through callbacks and, with every callback lost, through polling alone."""

from __future__ import annotations

from typing import Any

from tests.tracking.conftest import Stack, StackFactory, new_number, path

QUICK = {"ring_after": 0.2, "answer_after": 0.3, "talk_for": 0.5, "cdr_delay": 0.3}
# Plivo script outcome -> the status the queue must end in.
EXPECTED = {
    "completed": "completed",
    "busy": "busy",
    "no_answer": "no_answer",
    "canceled": "canceled",
    "failed": "failed",
    "timeout": "no_answer",
}
DROP_ALL = {"ring": "drop", "hangup": "drop"}


def _run_outcomes(s: Stack, callbacks: dict[str, str]) -> dict[str, dict[str, Any]]:
    ids = {}
    for outcome in EXPECTED:
        number = new_number()
        s.script(number, {**QUICK, "outcome": outcome, "callbacks": callbacks})
        ids[outcome] = s.queue(number)
    return {outcome: s.wait(call_id, timeout=15) for outcome, call_id in ids.items()}


def test_every_outcome_through_callbacks_and_through_polling_alone(stack: StackFactory) -> None:
    s = stack()
    by_callback = _run_outcomes(s, {})
    by_polling = _run_outcomes(s, DROP_ALL)
    for results, source in ((by_callback, "plivo-callback"), (by_polling, "plivo-api")):
        for outcome, record in results.items():
            assert record["status"] == EXPECTED[outcome], (outcome, record)
            statuses = path(record)
            assert "unknown" not in statuses and "missed" not in statuses
            assert statuses.count(record["status"]) == 1
            last = record["history"][-1]
            assert last["source"].startswith(source) or last["source"].startswith("agent"), last
            if outcome != "failed":
                assert "failed" not in statuses
    completed = by_callback["completed"]
    assert completed["call_uuid"] and completed["hangup_cause"] == "Normal Hangup"
    assert completed["duration"] is not None
    assert by_polling["completed"]["call_uuid"]


def test_missed_only_when_nothing_rings_and_not_while_waiting_in_plivos_queue(stack: StackFactory) -> None:
    s = stack(AUTO_MISS_TIMEOUT="5")
    never_rings, queued_long = new_number(), new_number()
    s.script(never_rings, {"ring_after": 60, "outcome": "completed"})
    # Waits 7 s in Plivo's CPS queue (longer than AUTO_MISS_TIMEOUT), then rings and completes: not missed.
    s.script(queued_long, {**QUICK, "queue_for": 7, "callbacks": DROP_ALL})
    missed_id, queued_id = s.queue(never_rings), s.queue(queued_long)
    missed = s.wait(missed_id, timeout=15)
    assert missed["status"] == "missed", missed
    assert "AUTO_MISS_TIMEOUT" in (missed["reason"] or "")
    assert "failed" not in path(missed)
    sim_call = s.http.get(f"{s.plivo}/_sim/calls/{missed['request_uuid']}").json()
    assert sim_call["hangup_source"] == "API Request", "a missed call is cancelled at Plivo"
    queued = s.wait(queued_id, timeout=20)
    assert queued["status"] == "completed", queued
    assert "missed" not in path(queued)
