"""The agent's Redis stream: events applied through a consumer group; bad entries recorded and acknowledged;
entries a dead consumer read but never acknowledged are taken over."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

import pytest
import redis

from callqueue.tracking import agent_stream
from tests.tracking.conftest import StackFactory, new_number, path, wait_for


def pending(r: redis.Redis, stream: str) -> int:
    summary = cast(dict[str, Any], r.xpending(stream, "tracker"))
    return int(summary["pending"])


QUICK = {"ring_after": 0.3, "answer_after": 0.3, "talk_for": 1.0, "cdr_delay": 0.3}


def test_agent_stream_drives_status_and_survives_bad_entries(
    stack: StackFactory, key_prefix: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_stream, "CLAIM_IDLE_MS", 100)
    monkeypatch.setattr(agent_stream, "CLAIM_EVERY_S", 0.2)
    stream = f"{key_prefix}:agent-events"
    # Before the service starts: a consumer that read an entry and died without acknowledging it.
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.xgroup_create(stream, "tracker", id="0", mkstream=True)
    r.xadd(stream, {"call_id": uuid.uuid4().hex, "status": "ringing", "at": "1", "source": "agent"})
    assert r.xreadgroup("tracker", "dead-instance", {stream: ">"}, count=10)

    s = stack(agent_redis=True)
    wait_for(lambda: pending(r, stream) == 0, 5, "takeover of the orphaned entry")
    unknown = uuid.uuid4().hex
    bad_entries: list[dict[bytes | str, bytes | str | int | float]] = [
        {"status": "ringing", "at": "1"},
        {"call_id": unknown, "status": "exploded", "at": "1"},
        {"call_id": unknown, "status": "completed", "duration": "forever", "at": "1"},
        {"call_id": f"{unknown}:history", "status": "completed", "at": "1"},  # would address another key
    ]
    for bad in bad_entries:
        r.xadd(stream, bad)  # type: ignore[arg-type]  # redis-py's stub wants an invariant dict of its union

    number = new_number()
    s.script(number, {**QUICK, "callbacks": {"ring": "drop", "hangup": "drop"}})
    call_id = s.queue(number)
    record = s.wait(call_id, timeout=10)
    assert record["status"] == "completed", record
    assert any(h["source"].startswith("agent-stream") for h in record["history"]), record["history"]
    assert "in_progress" in path(record)
    wait_for(lambda: pending(r, stream) == 0, 5, "every entry acknowledged")
    rejected = [json.loads(e) for e in cast(list[str], r.lrange(f"{key_prefix}:rejected-events", 0, -1))]
    reasons = " | ".join(e["reason"] for e in rejected)
    assert "no call_id" in reasons and "exploded" in reasons and "forever" in reasons and "unknown call" in reasons
    assert "is not a call id" in reasons
    r.close()
