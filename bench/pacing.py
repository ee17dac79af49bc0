"""Pacing accuracy: four service processes on one Redis with DISPATCH_RATE=10, measured from the recorded starts."""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import datetime

import httpx
import redis as sync_redis

from bench.common import redis_url, service_process
from local.simulators.agent import create_agent_app
from local.simulators.backend import create_backend_app
from local.simulators.plivo import create_plivo_app
from local.simulators.server import running
from local.simulators.wiring import simulator_env

PROCESSES = 4
RATE = 10
CALLS = 300
PREFIX = "bench-pacing"


def _start_times(base: str, ids: list[str]) -> list[float]:
    times = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for call_id in ids:
            for entry in client.get(f"/api/calls/{call_id}").json()["history"]:
                if entry["status"] == "dispatching":
                    times.append(datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp())
    return sorted(times)


def measure() -> dict[str, float]:
    with ExitStack() as stack:
        plivo = stack.enter_context(running(create_plivo_app("MABENCH", "bench", cps=1000, time_scale=0.05)))
        agent = stack.enter_context(running(create_agent_app(plivo, "MABENCH", "bench")))
        backend = stack.enter_context(running(create_backend_app()))
        env = {
            **simulator_env(plivo=plivo, agent=agent, backend=backend, auth_id="MABENCH", auth_token="bench"),
            "REDIS_URL": redis_url(), "REDIS_KEY_PREFIX": PREFIX,
            "DISPATCH_RATE": str(RATE), "MAX_CONCURRENT_CALLS": "100000", "DISPATCH_WORKERS": "4",
        }  # fmt: skip
        first = stack.enter_context(service_process({**env, "DISPATCH_WORKERS": "0"}))
        with httpx.Client(base_url=first, timeout=10) as client:
            body = {"phone_number": "+14155550100", "campaign_id": "pacing", "call_config": {"flow_name": "f"}}
            ids = [client.post("/api/calls/queue", json=body).json()["call_id"] for _ in range(CALLS)]
        for _ in range(PROCESSES):
            stack.enter_context(service_process(env))
        deadline = time.monotonic() + CALLS / RATE * 2 + 30
        while time.monotonic() < deadline:
            if httpx.get(f"{first}/api/queue/status").json()["queued"] == 0:
                break
            time.sleep(0.5)
        time.sleep(1)
        times = _start_times(first, ids)
    measured = (len(times) - 1) / (times[-1] - times[0])
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    return {"starts": len(times), "rate": measured, "busiest_window": busiest}


def run() -> str:
    client = sync_redis.Redis.from_url(redis_url())
    result = measure()
    for key in client.scan_iter(f"{PREFIX}:*"):
        client.delete(key)
    error = (result["rate"] - RATE) / RATE * 100
    return "\n".join([
        "## Pacing",
        "",
        f"- {PROCESSES} service processes × 4 dispatch workers on one Redis, `DISPATCH_RATE={RATE}`, {CALLS} calls "
        f"(start times from each call's recorded `dispatching` transition, Redis clock): measured "
        f"**{result['rate']:.2f} starts/s ({error:+.1f} %)** (target within ±5 %), busiest 1-second window "
        f"**{result['busiest_window']:.0f} starts** (limit {RATE}), {result['starts']:.0f} starts in all.",
        "",
    ])  # fmt: skip
