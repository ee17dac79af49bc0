"""Campaigns end to end: the service with its background loops, the Plivo, agent and backend simulators, real
Redis. The service clock is the test's, so calling hours and retry waits pass without waiting."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from tests.campaigns.conftest import Stack, local_ms, new_number, wait_for

NY = "America/New_York"
StackFactory = Callable[..., Stack]


def test_busy_then_answered_two_attempts_two_results_one_final(stack: StackFactory) -> None:
    s = stack()
    number = new_number()
    s.script(number, [{"outcome": "busy"}, {"outcome": "completed", "talk_for": 1}])
    s.put("redial", retry={"max_attempts": 3, "on": ["busy"], "waits_s": [600]})
    call_id = s.bulk("redial", [{"phone_number": number, "key": "contact-1"}])["items"][0]["call_id"]
    scheduled = s.wait(call_id, {"scheduled"})
    assert scheduled["attempt"] == 2 and scheduled["dial_attempts"][0]["status"] == "busy"
    wait_for(lambda: s.call(call_id)["due_at"], what="the planner to set the redial's due time")
    assert len(s.starts()) == 1  # nothing is dialled during the wait
    s.clock.advance(600_000)
    record = s.wait(call_id, {"completed"})
    assert record["attempt"] == 2 and record["attempt_id"] == f"{call_id}.2"
    assert [a["status"] for a in record["dial_attempts"]] == ["busy", "completed"]
    assert [st["call_id"] for st in s.starts()] == [call_id, f"{call_id}.2"]  # a new dial, its own key
    results = wait_for(lambda: len(r := s.results()) == 2 and r, what="both results at the backend")
    first, second = results[f"{call_id}:busy"]["body"], results[f"{call_id}.2:completed"]["body"]
    assert (first["attempt"], first["final"], first["next_attempt"]["attempt"]) == (1, False, 2)
    assert (second["attempt"], second["final"], second["next_attempt"]) == (2, True, None)
    timeline = [t["status"] for t in second["timeline"]]  # attempt 2's own transitions only
    assert timeline[:3] == ["scheduled", "queued", "dispatching"] and timeline[-1] == "completed"
    assert "busy" not in timeline and {t["attempt"] for t in second["timeline"]} == {2}
    assert [t["status"] for t in first["timeline"]][-1] == "busy"
    status = s.status("redial")
    assert status["attempts"] == {"1": {"busy": 1}, "2": {"completed": 1}}
    assert status["calls"]["by_status"] == {"completed": 1} and status["progress"]["ratio"] == 1.0


def test_calls_outside_calling_hours_wait_for_the_opening(stack: StackFactory) -> None:
    s = stack()
    s.clock.set(local_ms(NY, 2026, 7, 1, 8, 58))
    s.put("morning", calling_hours={"start": "09:00", "end": "20:00"})
    ids = [i["call_id"] for i in s.bulk("morning", [{"phone_number": new_number()} for _ in range(3)])["items"]]
    assert {s.call(c)["status"] for c in ids} == {"scheduled"}
    status = s.status("morning")
    assert status["next_window_opening"] == "2026-07-01T13:00:00.000Z"
    assert status["next_due"] == {"at": "2026-07-01T13:00:00.000Z", "waiting_for": "calling_hours"}
    assert s.starts() == []
    s.clock.set(local_ms(NY, 2026, 7, 1, 9, 0))
    for call_id in ids:
        record = s.wait(call_id, {"completed"})
        assert [h["status"] for h in record["history"]][:3] == ["scheduled", "queued", "dispatching"]
        queued = next(h for h in record["history"] if h["status"] == "queued")
        assert queued["source"] == "planner" and queued["detail"]["time_zones"] == [NY]


def test_pause_holds_waiting_calls_lets_calls_in_flight_finish_and_resume_dials_again(stack: StackFactory) -> None:
    s = stack(DISPATCH_RATE="2")
    numbers = [new_number() for _ in range(6)]
    for number in numbers:
        s.script(number, {"answer_after": 0, "talk_for": 3})
    ids = [i["call_id"] for i in s.bulk("held", [{"phone_number": n} for n in numbers])["items"]]
    wait_for(lambda: len(s.starts()) >= 1, what="the first dial")
    paused = s.post("/api/campaigns/held/pause", reason="script review").json()
    assert paused["state"] == "paused"
    paused_at = int(s.redis.hget(f"{s.prefix}:campaign:held", "paused_at") or 0)  # type: ignore[arg-type]
    dialled = [c for c in ids if s.call(c)["status"] != "queued"]
    for call_id in dialled:  # in flight when paused: they finish
        assert s.wait(call_id)["status"] == "completed"
    for call_id in ids:  # and nothing was claimed after the pause took effect (the Redis clock of both)
        for entry in s.call(call_id)["history"]:
            if entry["status"] == "dispatching":
                assert _ms(entry["at"]) <= paused_at
    assert {s.call(c)["status"] for c in ids if c not in dialled} == {"queued"}
    assert len(s.starts()) == len(dialled) < len(ids)
    assert s.status("held")["paused"]["reason"] == "script review"
    s.post("/api/campaigns/held/resume")
    assert {s.wait(c)["status"] for c in ids} == {"completed"}


def test_cancel_ends_waiting_calls_with_results_delivered_while_calls_in_flight_finish(stack: StackFactory) -> None:
    s = stack(DISPATCH_RATE="1")
    numbers = [new_number() for _ in range(4)]
    s.script(numbers[0], {"answer_after": 0, "talk_for": 20})  # 4 s at time_scale 0.2: still talking at the cancel
    ids = [i["call_id"] for i in s.bulk("doomed", [{"phone_number": n} for n in numbers])["items"]]
    s.wait(ids[0], {"ringing", "in_progress"})
    answer = s.post("/api/campaigns/doomed/cancel").json()
    assert answer["state"] == "canceled" and answer["canceled_calls"] >= 1
    assert s.wait(ids[0])["status"] == "completed"
    outcomes = {c: s.wait(c)["status"] for c in ids}
    canceled = [c for c, st in outcomes.items() if st == "canceled"]
    assert len(canceled) == answer["canceled_calls"]
    results = wait_for(lambda: len(r := s.results()) == len(ids) and r, what="every call's result")
    for call_id in canceled:
        body = results[f"{call_id}:canceled"]["body"]
        assert body["final"] is True and body["reason"] == "campaign canceled"
    assert len(s.starts()) == len(ids) - len(canceled)


def test_circuit_breaker_pauses_a_failing_campaign_and_says_why(
    stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    s = stack(DISPATCH_RATE="20")
    s.put("failing", breaker={"window": 10, "min_attempts": 5, "failure_ratio": 0.8})
    s.agent_fault(status=400, count=1000, body='{"detail": "flow not found"}')
    ids = [i["call_id"] for i in s.bulk("failing", [{"phone_number": new_number()} for _ in range(30)])["items"]]
    with caplog.at_level(logging.ERROR, logger="callqueue.campaigns"):
        status = wait_for(lambda: (st := s.status("failing"))["state"] == "paused" and st, what="the breaker")
        wait_for(lambda: "paused by its circuit breaker" in caplog.text, what="the breaker's log line")
    assert status["paused"]["by"] == "breaker" and status["breaker"]["state"] == "open"
    assert "of the last" in status["paused"]["reason"] and "agent rejected the start" in status["paused"]["reason"]
    failed = [c for c in ids if s.call(c)["status"] == "failed"]
    assert 5 <= len(failed) < 30  # it stopped burning through the list
    assert {s.call(c)["status"] for c in ids} <= {"failed", "queued", "dispatching"}


def test_a_suppressed_number_ends_suppressed_with_its_result_and_is_never_dialled(stack: StackFactory) -> None:
    s = stack()
    blocked, allowed = new_number(), new_number()
    assert s.post("/api/suppressions", numbers=[blocked], reason="opt-out").status_code == 200
    ids = [i["call_id"] for i in s.bulk("optout", [{"phone_number": blocked}, {"phone_number": allowed}])["items"]]
    record = s.wait(ids[0])
    assert record["status"] == "suppressed" and record["reason"] == "number is on the suppression list: opt-out"
    assert s.wait(ids[1])["status"] == "completed"
    result = wait_for(lambda: s.results().get(f"{ids[0]}:suppressed"), what="the suppressed call's result")
    assert result["body"]["outcome"] == "suppressed" and result["body"]["final"] is True
    assert [st["call_id"] for st in s.starts()] == [ids[1]]


def _ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
