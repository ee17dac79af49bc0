"""Callbacks late, duplicated and out of order change nothing they should not; the outcome is still right."""

from __future__ import annotations

from typing import Any

from tests.tracking.conftest import StackFactory, new_number, path, wait_for

QUICK = {"ring_after": 0.2, "answer_after": 0.3, "talk_for": 0.5, "cdr_delay": 0.3}
ORDER = ["queued", "dispatching", "dispatched", "initiated", "ringing", "in_progress", "completed"]


def test_late_duplicated_and_out_of_order_callbacks(stack: StackFactory) -> None:
    s = stack()
    scripts: dict[str, dict[str, Any]] = {
        "duplicated": {**QUICK, "callbacks": {"ring": "duplicate", "hangup": "duplicate"}},
        "late": {**QUICK, "callbacks": {"ring": "late:1", "hangup": "late:2"}},
        "out_of_order": {**QUICK, "out_of_order": True},
        "busy_duplicated": {**QUICK, "outcome": "busy", "callbacks": {"hangup": "duplicate"}},
    }
    ids = {}
    for name, script in scripts.items():
        number = new_number()
        s.script(number, script)
        ids[name] = s.queue(number)
    records = {name: s.wait(call_id, timeout=15) for name, call_id in ids.items()}
    for name, record in records.items():
        statuses = path(record)
        assert len(statuses) == len(set(statuses)), (name, statuses)  # nothing recorded twice
        assert statuses == sorted(statuses, key=ORDER.index) if record["status"] == "completed" else True
    assert records["duplicated"]["status"] == "completed"
    assert records["late"]["status"] == "completed"
    out_of_order = records["out_of_order"]
    assert out_of_order["status"] == "completed"
    assert "ringing" not in path(out_of_order)[path(out_of_order).index("completed") :]
    assert records["busy_duplicated"]["status"] == "busy"
    # The late ring of the out-of-order call reached the service and was answered, without changing anything.
    sim = s.http.get(f"{s.plivo}/_sim/calls/{out_of_order['request_uuid']}").json()
    rings = [c for c in sim["callbacks"] if c["event"] == "ring"]
    assert rings and all(c["status_code"] == 200 for c in rings)


def test_callbacks_before_the_dispatch_is_recorded(stack: StackFactory) -> None:
    """The agent dials, then answers /start only after the call rang and ended: the callbacks move the call on
    while it is still `dispatching`, and the late dispatch record changes nothing."""
    s = stack()
    s.agent_fault(delay=2.5, count=1, path_contains="/start")
    number = new_number()
    s.script(number, QUICK)
    call_id = s.queue(number)
    early = s.wait(call_id, {"ringing", "completed"}, timeout=5)
    assert "dispatched" not in path(early), path(early)
    record = s.wait(call_id, timeout=15)
    assert record["status"] == "completed", record
    statuses = path(record)
    assert statuses[:2] == ["queued", "dispatching"] and "dispatched" not in statuses, statuses
    wait_for(lambda: s.call(call_id)["request_uuid"], 10, "the late dispatch record")
    assert s.call(call_id)["status"] == "completed"
