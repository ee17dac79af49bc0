"""A whole stack over real HTTP: Plivo, agent and backend simulators plus the real service app, on one Redis.

`stack(**env)` starts everything with the tracking timings shrunk (override any variable), returns a `Stack` with
helpers to script calls, queue them and wait for their outcome. Each test gets its own REDIS_KEY_PREFIX.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from callqueue.api.app import create_app
from callqueue.settings import load_settings
from local.redis_server import free_port
from local.simulators.agent import create_agent_app
from local.simulators.backend import create_backend_app
from local.simulators.plivo import create_plivo_app
from local.simulators.server import running
from local.simulators.wiring import simulator_env

AUTH_ID = "MATRACKING"
AUTH_TOKEN = "tracking-token"
FINAL = {"completed", "busy", "no_answer", "canceled", "failed", "missed", "unknown"}
SHRUNK = {
    "CLOUD_RUN_OPTIMIZED": "false",
    "INITIAL_STATUS_DELAY": "1",
    "STATUS_CHECK_INTERVAL": "1",
    "REQUEST_TIMEOUT": "2",
    "MAX_STATUS_RETRIES": "1",
    "MAX_CONSECUTIVE_ERRORS": "3",
    "AUTO_MISS_TIMEOUT": "5",
    "DISPATCH_RATE": "50",
    "MAX_CONCURRENT_CALLS": "200",
    "DISPATCH_WORKERS": "4",
    "AUTH_MODE": "none",
    "LOG_LEVEL": "INFO",
}
_numbers = itertools.count(100)


def new_number() -> str:
    """A distinct, valid destination per call, so each call can have its own Plivo script."""
    return f"+1415555{next(_numbers) % 10000:04d}"


@dataclass
class Stack:
    plivo: str
    agent: str
    backend: str
    service: str
    prefix: str
    env: dict[str, str]
    redis: redis.Redis
    http: httpx.Client

    def script(self, to: str, script: dict[str, Any] | list[dict[str, Any]]) -> None:
        self.http.post(f"{self.plivo}/_sim/scripts", json={"to": to, "script": script}).raise_for_status()

    def plivo_fault(self, **rule: Any) -> None:
        self.http.post(f"{self.plivo}/_sim/faults", json=rule).raise_for_status()

    def agent_fault(self, **rule: Any) -> None:
        self.http.post(f"{self.agent}/_sim/faults", json=rule).raise_for_status()

    def backend_control(self, **rule: Any) -> None:
        self.http.post(f"{self.backend}/_sim/faults", json=rule).raise_for_status()

    def plivo_stats(self) -> dict[str, Any]:
        return dict(self.http.get(f"{self.plivo}/_sim/stats").json())

    def backend_results(self) -> dict[str, Any]:
        return dict(self.http.get(f"{self.backend}/_sim/results").json())

    def queue(self, phone: str, **config: Any) -> str:
        body = {"phone_number": phone, "campaign_id": "tracking", "call_config": {"flow_name": "test", **config}}
        answer = self.http.post(f"{self.service}/api/calls/queue", json=body)
        answer.raise_for_status()
        return str(answer.json()["call_id"])

    def call(self, call_id: str) -> dict[str, Any]:
        answer = self.http.get(f"{self.service}/api/calls/{call_id}")
        answer.raise_for_status()
        return dict(answer.json())

    def wait(self, call_id: str, statuses: set[str] | None = None, timeout: float = 20.0) -> dict[str, Any]:
        wanted = statuses or FINAL
        deadline = time.monotonic() + timeout
        while True:
            record = self.call(call_id)
            if record["status"] in wanted:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"call {call_id} still {record['status']} after {timeout}s: {record}")
            time.sleep(0.05)

    def wait_all(self, call_ids: list[str], timeout: float = 20.0) -> dict[str, dict[str, Any]]:
        return {c: self.wait(c, timeout=timeout) for c in call_ids}


def path(record: dict[str, Any]) -> list[str]:
    """The statuses a call went through, oldest first."""
    return [h["status"] for h in record["history"]]


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def service_env(prefix: str, redis_url: str, plivo: str, agent: str, backend: str, port: int) -> dict[str, str]:
    return {
        **SHRUNK,
        **simulator_env(plivo=plivo, agent=agent, backend=backend, auth_id=AUTH_ID, auth_token=AUTH_TOKEN),
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),
    }


StackFactory = Callable[..., Stack]


@pytest.fixture
def stack(key_prefix: str, redis_url: str) -> Iterator[StackFactory]:
    """`stack(cps=…, time_scale=…, agent_redis=…, **ENV)`: start the simulators and the service."""
    with ExitStack() as exits:

        def start(*, cps: float = 50.0, time_scale: float = 1.0, agent_redis: bool = False, **env: str) -> Stack:
            plivo = exits.enter_context(running(create_plivo_app(AUTH_ID, AUTH_TOKEN, cps=cps, time_scale=time_scale)))
            agent_app = create_agent_app(
                plivo,
                AUTH_ID,
                AUTH_TOKEN,
                redis_url=redis_url if agent_redis else None,
                key_prefix=key_prefix,
            )
            agent = exits.enter_context(running(agent_app))
            backend = exits.enter_context(running(create_backend_app()))
            port = free_port()
            full_env = {**service_env(key_prefix, redis_url, plivo, agent, backend, port), **env}
            service = exits.enter_context(running(create_app(load_settings(full_env)), port=port))
            client = exits.enter_context(httpx.Client(timeout=10.0))
            sync_redis = redis.Redis.from_url(redis_url, decode_responses=True)
            exits.callback(sync_redis.close)
            return Stack(plivo, agent, backend, service, key_prefix, full_env, sync_redis, client)

        yield start


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The environment a `python -m callqueue` subprocess needs to import the service and the simulators."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(root, "service"), root])}
