"""Durable like the rest: an instance killed mid-campaign loses no pending redial, no schedule and no pause; the next
instance carries on from Redis alone. The service runs as `python -m callqueue`, killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.redis_server import free_port
from local.simulators.agent import create_agent_app
from local.simulators.backend import create_backend_app
from local.simulators.plivo import create_plivo_app
from local.simulators.server import running
from local.simulators.wiring import simulator_env
from tests.campaigns.conftest import AUTH_ID, AUTH_TOKEN, SHRUNK, new_number, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Instance:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        path = os.pathsep.join([str(ROOT / "service"), str(ROOT)])
        full = {**os.environ, **env, "PORT": str(self.port), "LOG_LEVEL": "WARNING", "PYTHONPATH": path}
        self.proc = subprocess.Popen([sys.executable, "-m", "callqueue"], env=full)
        wait_for(self._healthy, 30, f"instance on {self.url}")

    def _healthy(self) -> bool:
        assert self.proc.poll() is None, "the instance died at start-up"
        try:
            return httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def one_call(number: str) -> dict[str, Any]:
    return {"calls": [{"phone_number": number}], "call_config": {"flow_name": "f"}}


@pytest.fixture
def env(redis_url: str, key_prefix: str) -> Iterator[dict[str, str]]:
    with ExitStack() as exits:
        plivo = exits.enter_context(running(create_plivo_app(AUTH_ID, AUTH_TOKEN, cps=50, time_scale=0.2)))
        agent = exits.enter_context(running(create_agent_app(plivo, AUTH_ID, AUTH_TOKEN)))
        backend = exits.enter_context(running(create_backend_app()))
        yield {
            **SHRUNK,
            **simulator_env(plivo=plivo, agent=agent, backend=backend, auth_id=AUTH_ID, auth_token=AUTH_TOKEN),
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": key_prefix,
            "PUBLIC_BASE_URL": "http://127.0.0.1:9",  # no callbacks: the tracker polls the simulators
            "_PLIVO": plivo,
        }


def test_a_killed_instance_loses_no_pending_redial_schedule_or_pause(env: dict[str, str]) -> None:
    plivo = env.pop("_PLIVO")
    busy_first = new_number()
    httpx.post(f"{plivo}/_sim/scripts", json={"to": busy_first, "script": [{"outcome": "busy"}, {}]}).raise_for_status()
    first = Instance(env)
    try:
        with httpx.Client(base_url=first.url, timeout=30) as api:
            api.put("/api/campaigns/durable", json={"retry": {"max_attempts": 2, "on": ["busy"], "waits_s": [4]}})
            api.put("/api/campaigns/frozen", json={})
            # Paused before its call is queued: queued first, this instance's workers could dial it in between.
            api.post("/api/campaigns/frozen/pause", json={"reason": "held over the restart"})
            frozen = api.post("/api/campaigns/frozen/calls", json=one_call(new_number()))
            assert frozen.json()["accepted"] == 1, frozen.text
            queued = api.post("/api/campaigns/durable/calls", json=one_call(busy_first))
            call_id = queued.json()["items"][0]["call_id"]
            wait_for(lambda: api.get(f"/api/calls/{call_id}").json()["due_at"], 30, "the redial to be planned")
            before = api.get(f"/api/calls/{call_id}").json()
            assert (before["status"], before["attempt"]) == ("scheduled", 2)
    finally:
        first.kill()
    frozen_id = frozen.json()["items"][0]["call_id"]
    second = Instance(env)
    try:
        with httpx.Client(base_url=second.url, timeout=30) as api:
            record = wait_for(
                lambda: (r := api.get(f"/api/calls/{call_id}").json())["status"] == "completed" and r, 60, "attempt 2"
            )
            assert [a["status"] for a in record["dial_attempts"]] == ["busy", "completed"]
            dialled_at = next(h["at"] for h in record["history"] if h["attempt"] == 2 and h["status"] == "dispatching")
            assert dialled_at >= before["due_at"]  # not before its wait, whoever dialled it
            status = api.get("/api/campaigns/frozen").json()
            assert status["state"] == "paused" and status["paused"]["reason"] == "held over the restart"
            # The new instance's workers dialled attempt 2 after the paused campaign's call was queued: they passed it.
            assert api.get(f"/api/calls/{frozen_id}").json()["status"] == "queued"
    finally:
        second.kill()
