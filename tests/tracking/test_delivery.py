"""Results reach the backend exactly once per outcome, even when it is down for a while; invalid ones dead-letter."""

from __future__ import annotations

import time
from typing import cast

from tests.tracking.conftest import StackFactory, new_number, wait_for

QUICK = {"ring_after": 0.2, "answer_after": 0.3, "talk_for": 0.5, "cdr_delay": 0.3}


def test_backend_down_then_up_delivers_every_result_once(stack: StackFactory) -> None:
    s = stack()
    s.backend_control(down=True)
    outcomes = ["completed", "busy", "no_answer", "failed", "completed"]
    ids = []
    for outcome in outcomes:
        number = new_number()
        s.script(number, {**QUICK, "outcome": outcome})
        ids.append(s.queue(number))
    records = s.wait_all(ids, timeout=15)
    wait_for(lambda: s.backend_results()["refused_while_down"] >= 2 * len(ids), 15, "retries while down")
    assert s.backend_results()["results"] == {}
    assert s.redis.zcard(f"{s.prefix}:outbox") == len(ids)
    s.backend_control(down=False)
    expected = {f"{c}:{r['status']}" for c, r in records.items()}
    wait_for(lambda: set(s.backend_results()["results"]) == expected, 15, "delivery after the outage")
    time.sleep(1.0)  # anything delivered twice would show up now
    results = s.backend_results()
    assert results["duplicates"] == [] and results["without_key"] == []
    assert s.redis.zcard(f"{s.prefix}:outbox") == 0
    body = results["results"][f"{ids[0]}:completed"]["body"]
    assert body["call_id"] == ids[0] and body["outcome"] == "completed" and body["campaign_id"] == "tracking"
    assert body["phone_number"].startswith("+1415555") and body["duration"] is not None
    assert body["hangup_cause"] == "Normal Hangup" and body["attempts"] == 1
    assert [t["status"] for t in body["timeline"]][-1] == "completed"
    assert {"recording_url", "reason"} <= set(body)


def test_recording_url_from_plivo_and_invalid_result_dead_lettered(stack: StackFactory) -> None:
    s = stack()
    recorded, rejected = new_number(), new_number()
    s.script(recorded, {**QUICK, "talk_for": 1.5, "recording": True})
    s.script(rejected, QUICK)
    recorded_id = s.queue(recorded, record=True)
    wait_for(lambda: f"{recorded_id}:completed" in s.backend_results()["results"], 15, "recorded result")
    body = s.backend_results()["results"][f"{recorded_id}:completed"]["body"]
    assert body["recording_url"] and body["recording_url"].endswith(".mp3")
    s.backend_control(status=422, count=1, path_contains="/api/call-results")
    rejected_id = s.queue(rejected)
    s.wait(rejected_id, timeout=15)
    wait_for(lambda: s.redis.zscore(f"{s.prefix}:outbox:dead", f"{rejected_id}:completed"), 10, "dead letter")
    reason = cast(str | None, s.redis.hget(f"{s.prefix}:call:{rejected_id}", "trk_dead_letter")) or ""
    assert "422" in reason
