"""Cancel after dispatch: Plivo is asked to stop the call, and the outcome arrives like any other."""

from __future__ import annotations

from tests.tracking.conftest import FINAL, Stack, StackFactory, new_number, path, wait_for

QUICK = {"ring_after": 0.2, "answer_after": 0.3, "talk_for": 1.0, "cdr_delay": 0.3}


def test_cancel_while_waiting_in_plivos_queue_never_rings(stack: StackFactory) -> None:
    s = stack(cps=0.02)  # one call per 50 s: the second call waits in Plivo's queue
    first, second = new_number(), new_number()
    s.script(first, QUICK)
    s.script(second, QUICK)
    # The first must reach Plivo first (dispatched: the agent placed it), else the second takes the free slot.
    s.wait(s.queue(first), {"dispatched", "initiated", "ringing", "in_progress"} | FINAL, timeout=30)
    call_id = s.queue(second)
    s.wait(call_id, {"dispatched", "initiated"}, timeout=30)

    answer = s.http.post(f"{s.service}/api/calls/{call_id}/cancel")
    assert answer.status_code == 202, answer.text
    assert answer.json()["cancel_requested"] is True and answer.json()["stopped_at_plivo"] is True

    record = s.wait(call_id, timeout=15)
    assert record["status"] == "canceled", path(record)
    assert "ringing" not in path(record)


def talking(s: Stack, number: str) -> bool:
    calls = s.http.get(f"{s.plivo}/_sim/calls").json()["calls"]
    return any(c["to"].lstrip("+") == number.lstrip("+") and c["status"] == "in-progress" for c in calls)


def test_cancel_of_a_talking_call_hangs_it_up(stack: StackFactory) -> None:
    s = stack()
    number = new_number()
    s.script(number, {**QUICK, "talk_for": 60})
    call_id = s.queue(number)
    s.wait(call_id, {"ringing", "in_progress"}, timeout=10)
    wait_for(lambda: talking(s, number), 30, "Plivo to have the call answered")  # a state, not 1.5 s of sleep

    assert s.http.post(f"{s.service}/api/calls/{call_id}/cancel").status_code == 202
    record = s.wait(call_id, timeout=15)
    assert record["status"] == "completed" and record["duration"] < 60, record


def test_cancel_of_an_ended_call_is_refused(stack: StackFactory) -> None:
    s = stack()
    number = new_number()
    s.script(number, QUICK)
    call_id = s.queue(number)
    ended = s.wait(call_id, timeout=15)
    refused = s.http.post(f"{s.service}/api/calls/{call_id}/cancel")
    assert refused.status_code == 409 and f"already ended as {ended['status']}" in refused.json()["message"]


def test_cancel_after_dispatch_without_plivo_credentials_says_why(stack: StackFactory) -> None:
    s = stack(PLIVO_AUTH_ID="", PLIVO_AUTH_TOKEN="")
    number = new_number()
    s.script(number, {**QUICK, "talk_for": 30})
    call_id = s.queue(number)
    s.wait(call_id, {"dispatched", "initiated", "ringing", "in_progress"}, timeout=10)
    refused = s.http.post(f"{s.service}/api/calls/{call_id}/cancel")
    assert refused.status_code == 409 and "PLIVO_AUTH_ID/TOKEN are not set" in refused.json()["message"]
