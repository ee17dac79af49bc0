"""Several service processes on one Redis, as Cloud Run runs them: no double dial, global pacing, crash safety."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from callqueue.api.app import create_app
from callqueue.dispatch.crash_points import AFTER_CLAIM, AFTER_START
from callqueue.settings import load_settings
from local.simulators.server import running
from tests.queue.conftest import ServiceProcess, Sims, wait_for

Spawn = Callable[[dict[str, str]], ServiceProcess]
DISPATCHED_OR_LATER = {"dispatched", "initiated", "ringing", "in_progress", "completed", "busy", "no_answer"}


def queue_many(base: str, count: int) -> list[str]:
    ids = []
    with httpx.Client(base_url=base) as client:
        for n in range(count):
            body = {"phone_number": f"+1415555{n:04d}", "campaign_id": "load", "call_config": {"flow_name": "f"}}
            response = client.post("/api/calls/queue", json=body)
            assert response.status_code == 202, response.text
            ids.append(response.json()["call_id"])
    return ids


def records(base: str, ids: list[str]) -> list[dict[str, Any]]:
    with httpx.Client(base_url=base) as client:
        return [client.get(f"/api/calls/{call_id}").json() for call_id in ids]


def all_dispatched(base: str, ids: list[str]) -> Callable[[], bool]:
    return lambda: all(r["status"] in DISPATCHED_OR_LATER for r in records(base, ids))


def test_three_instances_dispatch_every_call_exactly_once(
    spawn: Spawn, service_env: dict[str, str], sims: Sims
) -> None:
    instances = [spawn({**service_env, "DISPATCH_WORKERS": "4"}) for _ in range(3)]
    ids = queue_many(instances[0].url, 60)
    wait_for(all_dispatched(instances[1].url, ids), 60, "all 60 calls dispatched")
    per_call = Counter(s["call_id"] for s in sims.starts())
    assert {per_call[call_id] for call_id in ids} == {1}, "every call started exactly once"
    workers = {r["history"][1]["detail"]["worker"].split("/")[0] for r in records(instances[2].url, ids)}
    assert len(workers) == 3, "all three instances took part"
    status = httpx.get(f"{instances[0].url}/api/queue/status").json()
    assert (status["live_instances"], status["live_workers"]) == (3, 12)
    instances[2].stop()
    status = httpx.get(f"{instances[0].url}/api/queue/status").json()
    assert (status["live_instances"], status["live_workers"]) == (2, 8), "a drained instance leaves the counts"


def test_pacing_holds_across_instances(spawn: Spawn, service_env: dict[str, str], sims: Sims) -> None:
    instances = [spawn({**service_env, "DISPATCH_RATE": "5", "DISPATCH_WORKERS": "4"}) for _ in range(3)]
    ids = queue_many(instances[0].url, 20)
    wait_for(all_dispatched(instances[0].url, ids), 60, "all 20 calls dispatched")
    starts = sorted(
        h["at"] for r in records(instances[0].url, ids) for h in r["history"] if h["status"] == "dispatching"
    )
    from datetime import datetime

    times = [datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in starts]
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert busiest <= 5, f"{busiest} starts within one second; DISPATCH_RATE is 5"
    assert times[-1] - times[0] >= (len(times) - 5) / 5 - 0.05


@pytest.mark.parametrize("point", [AFTER_CLAIM, AFTER_START])
def test_kill_9_at_each_dispatch_step_then_every_call_is_dispatched_once(
    spawn: Spawn, service_env: dict[str, str], sims: Sims, point: str
) -> None:
    # Queued before the doomed instance exists: its crash must not race (and cut short) the enqueue requests.
    with running(create_app(load_settings({**service_env, "DISPATCH_WORKERS": "0"}), background=False)) as api:
        ids = queue_many(api, 3)
    doomed = spawn({**service_env, "DISPATCH_WORKERS": "1", "CALLQUEUE_CRASH_AT": point})
    assert doomed.proc.wait(60) == -signal.SIGKILL, "the crash point killed the instance"
    survivor = spawn({**service_env, "DISPATCH_WORKERS": "2"})
    wait_for(all_dispatched(survivor.url, ids), 60, "every call dispatched after the crash")
    per_call = Counter(s["call_id"] for s in sims.starts())
    dialled = Counter(s["call_id"] for s in sims.starts() if s["dialled"])
    assert {dialled[call_id] for call_id in ids} == {1}
    assert {per_call[call_id] for call_id in ids} == {1}, "no start was sent twice, even for the crashed call"


def test_kill_9_while_the_agent_is_placing_the_call(spawn: Spawn, service_env: dict[str, str], sims: Sims) -> None:
    sims.agent_fault(delay=3, count=1)
    doomed = spawn({**service_env, "DISPATCH_WORKERS": "1", "REQUEST_TIMEOUT": "10"})
    [call_id] = queue_many(doomed.url, 1)
    wait_for(lambda: any(s["call_id"] == call_id for s in sims.starts()), 10, "the start to reach the agent")
    doomed.proc.kill()
    doomed.proc.wait(5)
    survivor = spawn({**service_env, "DISPATCH_WORKERS": "1", "REQUEST_TIMEOUT": "10"})
    wait_for(all_dispatched(survivor.url, [call_id]), 60, "the call recorded as dispatched")
    starts = [s for s in sims.starts() if s["call_id"] == call_id]
    assert len(starts) == 1 and starts[0]["dialled"]
