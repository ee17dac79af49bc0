"""Redis full (maxmemory, noeviction) or down: 503 with Retry-After, nothing half-written, and a quiet log."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import cast

import httpx
import pytest
import redis

from callqueue.api.app import create_app
from callqueue.runtime import OUTAGE_BACKOFF_S
from callqueue.settings import load_settings
from local.redis_server import ThrowawayRedis
from local.simulators.server import running
from local.simulators.signing import signature_headers

CALL = {"phone_number": "+14155550100", "campaign_id": "full", "call_config": {"flow_name": "f"}}
PUBLIC = "https://queue-1234.us-east1.run.app"


@pytest.fixture
def own_redis() -> Iterator[ThrowawayRedis]:
    """A Redis of this test's own: its memory limit and its life are changed here, not the shared one's."""
    with ThrowawayRedis() as server:
        yield server


def _dump(r: redis.Redis) -> dict[str, object]:
    return {str(k): r.dump(k) for k in sorted(r.scan_iter("*"))}


def test_redis_at_maxmemory_answers_503_with_retry_after_and_writes_nothing(own_redis: ThrowawayRedis) -> None:
    env = {"REDIS_URL": own_redis.url, "DISPATCH_WORKERS": "0", "PLIVO_AUTH_ID": "MAFULL",
           "PLIVO_AUTH_TOKEN": "tok", "PUBLIC_BASE_URL": PUBLIC}  # fmt: skip
    r = redis.Redis.from_url(own_redis.url)
    with running(create_app(load_settings(env), background=False)) as base, httpx.Client(base_url=base) as api:
        call_id = api.post("/api/calls/queue", json=CALL).json()["call_id"]
        r.config_set("maxmemory", 1)  # far below what is used: every write is refused (noeviction)
        before = _dump(r)
        path = f"/api/webhooks/plivo/ring?call_id={call_id}"
        ring = {"CallUUID": "c-1", "CallStatus": "ringing"}
        answers = [api.post("/api/calls/queue", json=CALL) for _ in range(50)]
        answers.append(api.post(path, data=ring, headers=signature_headers("tok", "POST", PUBLIC + path, ring)))
        answers.append(api.get(f"/api/calls/{call_id}"))  # a MULTI read: Redis refuses it too when full
        answers += [api.get("/metrics"), api.get("/api/operator/overview")]  # they read the queue's status likewise
        # Issue 13's routes: settings, bulk enqueue, suppression, control and status, all 503 and nothing written.
        item = {"calls": [{"phone_number": "+14155550101", "key": "k"}], "call_config": {"flow_name": "f"}}
        answers += [
            api.put("/api/campaigns/full", json={"weight": 2}),
            api.post("/api/campaigns/full/calls", json=item),
            api.post("/api/campaigns/full/calls", json=item, params={"mode": "all_or_nothing"}),
            api.post("/api/suppressions", json={"numbers": ["+14155550102"]}),
            api.post("/api/campaigns/full/pause"),
            api.get("/api/campaigns/full"),  # a MULTI read, refused like GET /api/calls/{id}
        ]
        assert api.get("/api/campaigns").status_code == 200  # plain reads are still served
        full = {"dependency": "redis", "reason": "full: maxmemory reached, writes refused"}
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"] == "dependency_unavailable" and answer.json()["errors"] == [full]
            assert int(answer.headers["Retry-After"]) > 0
        assert _dump(r) == before, "nothing may be half-written"
        # A cancel frees memory first (Redis lets a script that started by deleting finish): all of it, or none.
        cancel = api.post(f"/api/calls/{call_id}/cancel")
        assert cancel.status_code in (200, 503), cancel.text
        status = "canceled" if cancel.status_code == 200 else "queued"
        assert cast(bytes, r.hget(f"cq:call:{call_id}", "status")) == status.encode()
        assert r.zcard("cq:queued") == (0 if status == "canceled" else 1)
        assert r.zcard("cq:outbox") == (1 if status == "canceled" else 0)
        r.config_set("maxmemory", 0)
        assert api.post("/api/calls/queue", json=CALL).status_code == 202
    r.close()


def test_redis_down_for_5_s_logs_one_line_per_loop_and_backoff_step_and_one_when_back(
    own_redis: ThrowawayRedis, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"REDIS_URL": own_redis.url, "CLOUD_RUN_OPTIMIZED": "false", "AUTH_MODE": "none"}
    caplog.set_level(logging.INFO, logger="callqueue")
    # These loops touch Redis all the time; `history` samples every 10 s and may sleep through a 5 s outage.
    busy = {f"dispatch-{n}" for n in range(4)} | {"maintenance", "tracker", "agent-events", "result-delivery",
                                                 "campaign-planner"}  # fmt: skip
    sampling = {"history"}
    revived = ThrowawayRedis(port=own_redis.port)

    def named(pattern: str) -> set[str]:
        found = (re.match(pattern, r.getMessage()) for r in caplog.records)
        return {m.group(1) for m in found if m}

    def back() -> set[str]:
        return named(r"background loop (\S+): redis is back")

    def failed() -> set[str]:
        return named(r"background loop (\S+): redis is unreachable")

    def recovered() -> bool:
        return busy <= failed() <= back()

    try:
        with running(create_app(load_settings(env))) as base, httpx.Client(base_url=base) as api:
            deadline = time.monotonic() + 30
            while api.get("/api/queue/status").json()["live_workers"] < 4 and time.monotonic() < deadline:
                time.sleep(0.1)
            caplog.clear()
            own_redis.stop()
            down_at = time.monotonic()
            time.sleep(5)  # the outage itself
            revived.start()
            outage_s = time.monotonic() - down_at
            deadline = time.monotonic() + 60
            while not recovered() and time.monotonic() < deadline:
                time.sleep(0.1)
            records = [r for r in caplog.records if r.name.startswith("callqueue")]
            assert recovered(), f"failed {sorted(failed())}, back {sorted(back())}, busy {sorted(busy)}"
            assert back() <= busy | sampling
            assert api.get("/api/queue/status").status_code == 200
    finally:
        revived.stop()
    tracebacks = [r for r in records if r.exc_info]
    assert len(tracebacks) <= 1, [r.getMessage() for r in tracebacks]
    # A loop fails once, then once after each wait that ended while Redis was still down.
    waits = [sum(OUTAGE_BACKOFF_S[: n + 1]) for n in range(len(OUTAGE_BACKOFF_S))]
    per_loop_bound = 2 + sum(1 for w in waits if w < outage_s)
    for loop in failed():
        failing = [r for r in records if r.getMessage().startswith(f"background loop {loop}: redis is unreachable")]
        assert 1 <= len(failing) <= per_loop_bound, (loop, [r.getMessage() for r in failing])
    other = [r.getMessage() for r in records if not r.getMessage().startswith("background loop ")]
    assert len(other) <= 5, other


def test_redis_back_from_an_outage_with_an_evicting_policy_is_refused_until_it_is_fixed(
    own_redis: ThrowawayRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """Another Redis answers after an outage, one that evicts: no loop resumes against it, each says why (not
    "unreachable"), requests answer 503 naming the policy; once the policy is fixed, everything resumes."""
    env = {"REDIS_URL": own_redis.url, "CLOUD_RUN_OPTIMIZED": "false", "AUTH_MODE": "none"}
    caplog.set_level(logging.INFO, logger="callqueue")
    busy = {f"dispatch-{n}" for n in range(4)} | {"maintenance", "tracker", "agent-events", "result-delivery"}
    evicting = ThrowawayRedis(port=own_redis.port, maxmemory_policy="allkeys-lru")
    reason = "refused for its eviction policy (maxmemory-policy allkeys-lru)"

    def named(pattern: str) -> set[str]:
        found = (re.match(pattern, r.getMessage()) for r in caplog.records)
        return {m.group(1) for m in found if m}

    def until(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 90
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    try:
        with running(create_app(load_settings(env))) as base, httpx.Client(base_url=base, timeout=15) as api:
            until(lambda: api.get("/api/queue/status").json()["live_workers"] >= 4, "workers started")
            caplog.clear()
            own_redis.stop()
            until(lambda: busy <= named(r"background loop (\S+): redis is unreachable"), "every loop saw the outage")
            evicting.start()
            until(lambda: busy <= named(rf"background loop (\S+): redis is {re.escape(reason)}"), "loops refuse")
            health = api.get("/api/health")
            assert health.status_code == 503 and health.json()["failing"] == ["redis-policy"], health.text
            answer = api.post("/api/calls/queue", json=CALL)
            assert answer.status_code == 503 and answer.json()["errors"] == [{"dependency": "redis", "reason": reason}]
            r = redis.Redis.from_url(evicting.url)
            written = {k.decode() for k in r.scan_iter("*")}
            # Only the history sampler, which touches Redis once per 10 s, may have sampled before a loop found out.
            assert written <= {"cq:metrics:history"}, written
            assert not [m for m in caplog.records if reason in m.getMessage() and m.exc_info], "no traceback"
            r.config_set("maxmemory-policy", "noeviction")
            until(lambda: busy <= named(r"background loop (\S+): redis is back"), "loops resume once it is fixed")
            assert api.post("/api/calls/queue", json=CALL).status_code == 202
            assert api.get("/api/health").status_code == 200
            r.close()
    finally:
        evicting.stop()
