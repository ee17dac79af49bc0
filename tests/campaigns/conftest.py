"""Campaign tests: the API alone, the store alone, or the whole stack over real HTTP, each on its own key prefix.

The service's clock (calling hours, retry waits) is an OffsetClock the test moves, so no test sleeps through hours.
Store-level tests run their coroutines with `asyncio.run` on a fresh client, as the other store tests do.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from redis.asyncio import Redis

from callqueue.api.app import create_app
from callqueue.clock import OffsetClock
from callqueue.settings import load_settings
from callqueue.store.calls import CallStore
from local.redis_server import free_port
from local.simulators.agent import create_agent_app
from local.simulators.backend import create_backend_app
from local.simulators.plivo import create_plivo_app
from local.simulators.server import running
from local.simulators.wiring import simulator_env

AUTH_ID = "MACAMPAIGN"
AUTH_TOKEN = "campaign-token"
FINAL = {"completed", "busy", "no_answer", "canceled", "failed", "missed", "suppressed", "unknown"}
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
T = TypeVar("T")
_numbers = itertools.count(100)


def new_number(area: str = "212") -> str:
    """A distinct valid number per call (New York by default: America/New_York), so each can have its own script."""
    return f"+1{area}555{next(_numbers) % 10000:04d}"


def local_ms(zone: str, year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).timestamp() * 1000)


def wait_for(check: Callable[[], T | Literal[False] | None], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy (returned), with a generous overall deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def run_store(redis_url: str, prefix: str, clock: OffsetClock, body: Callable[[CallStore], Awaitable[T]]) -> T:
    """Run `body(store)` on a fresh Redis client and store (the service's scripts, the test's clock)."""
    import asyncio

    async def main() -> T:
        client = Redis.from_url(redis_url, decode_responses=True)
        try:
            return await body(CallStore(client, prefix, clock))
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def api(redis_url: str, key_prefix: str, clock: OffsetClock) -> Iterator[httpx.Client]:
    """The service without background loops: nothing is planned or dialled, so API effects are seen alone."""
    settings = load_settings({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "DISPATCH_WORKERS": "0"})
    app = create_app(settings, background=False, clock=clock)
    with running(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


@dataclass
class Stack:
    plivo: str
    agent: str
    backend: str
    service: str
    prefix: str
    redis: redis.Redis
    http: httpx.Client
    clock: OffsetClock

    def script(self, to: str, script: dict[str, Any] | list[dict[str, Any]]) -> None:
        self.http.post(f"{self.plivo}/_sim/scripts", json={"to": to, "script": script}).raise_for_status()

    def agent_fault(self, **rule: Any) -> None:
        self.http.post(f"{self.agent}/_sim/faults", json=rule).raise_for_status()

    def starts(self) -> list[dict[str, Any]]:
        starts: list[dict[str, Any]] = self.http.get(f"{self.agent}/_sim/starts").json()["starts"]
        return starts

    def results(self) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = self.http.get(f"{self.backend}/_sim/results").json()["results"]
        return results

    def put(self, campaign: str, **settings: Any) -> dict[str, Any]:
        answer = self.http.put(f"{self.service}/api/campaigns/{campaign}", json=settings)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def bulk(self, campaign: str, calls: list[dict[str, Any]], **body: Any) -> dict[str, Any]:
        payload = {"calls": calls, "call_config": {"flow_name": "campaign-test"}, **body}
        answer = self.http.post(f"{self.service}/api/campaigns/{campaign}/calls", json=payload)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def post(self, path: str, **body: Any) -> httpx.Response:
        return self.http.post(f"{self.service}{path}", json=body or None)

    def status(self, campaign: str) -> dict[str, Any]:
        answer = self.http.get(f"{self.service}/api/campaigns/{campaign}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def call(self, call_id: str) -> dict[str, Any]:
        answer = self.http.get(f"{self.service}/api/calls/{call_id}")
        answer.raise_for_status()
        return dict(answer.json())

    def wait(self, call_id: str, statuses: set[str] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        wanted = statuses or FINAL

        def reached() -> dict[str, Any] | None:
            record = self.call(call_id)
            return record if record["status"] in wanted else None

        return wait_for(reached, timeout, f"call {call_id} in {wanted}")


@pytest.fixture
def stack(key_prefix: str, redis_url: str, clock: OffsetClock) -> Iterator[Callable[..., Stack]]:
    """`stack(**ENV)`: the simulators and the service (in this process, with the test's clock)."""
    with ExitStack() as exits:

        def start(*, cps: float = 50.0, time_scale: float = 0.2, **env: str) -> Stack:
            plivo = exits.enter_context(running(create_plivo_app(AUTH_ID, AUTH_TOKEN, cps=cps, time_scale=time_scale)))
            agent = exits.enter_context(running(create_agent_app(plivo, AUTH_ID, AUTH_TOKEN)))
            backend = exits.enter_context(running(create_backend_app()))
            port = free_port()
            full_env = {
                **SHRUNK,
                **simulator_env(plivo=plivo, agent=agent, backend=backend, auth_id=AUTH_ID, auth_token=AUTH_TOKEN),
                "REDIS_URL": redis_url,
                "REDIS_KEY_PREFIX": key_prefix,
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "PORT": str(port),
                **env,
            }
            app = create_app(load_settings(full_env), clock=clock)
            service = exits.enter_context(running(app, port=port))
            client = exits.enter_context(httpx.Client(timeout=30.0))
            sync_redis = redis.Redis.from_url(redis_url, decode_responses=True)
            exits.callback(sync_redis.close)
            return Stack(plivo, agent, backend, service, key_prefix, sync_redis, client, clock)

        yield start
