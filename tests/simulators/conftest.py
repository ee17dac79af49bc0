"""Fixtures for the simulator tests: servers on free loopback ports, a callback receiver, a polling helper."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI, Request

from local.simulators.plivo import create_plivo_app
from local.simulators.server import running

AUTH_ID = "MATESTACCOUNT"
AUTH_TOKEN = "test-token"
T = TypeVar("T")


@dataclass
class Received:
    path: str
    url: str
    method: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class Receiver:
    """A stand-in for the queue service's callback endpoints: records every request, answers 200."""

    base_url: str = ""
    requests: list[Received] = field(default_factory=list)

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture(scope="session")
def _receiver_server() -> Iterator[Receiver]:
    record = Receiver()
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def catch_all(path: str, request: Request) -> dict[str, str]:
        raw = (await request.body()).decode()
        params = dict(parse_qsl(raw, keep_blank_values=True)) if request.method == "POST" else {}
        if not path.startswith("_sim/"):  # running() probes /_sim/ping
            record.requests.append(
                Received("/" + path, str(request.url), request.method, params, dict(request.headers))
            )
        return {"status": "ok"}

    with running(app) as base_url:
        record.base_url = base_url
        yield record


@pytest.fixture
def receiver(_receiver_server: Receiver) -> Receiver:
    """The shared callback receiver, emptied for this test."""
    _receiver_server.requests.clear()
    return _receiver_server


@pytest.fixture
def plivo_factory() -> Iterator[Callable[..., str]]:
    """Start a Plivo simulator with the given factory options; returns its base URL."""
    stack: list[Any] = []

    def start(**options: Any) -> str:
        options.setdefault("time_scale", 0.02)
        ctx = running(create_plivo_app(AUTH_ID, AUTH_TOKEN, **options))
        stack.append(ctx)
        return ctx.__enter__()

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="session")
def _shared_plivo() -> Iterator[str]:
    with running(create_plivo_app(AUTH_ID, AUTH_TOKEN, time_scale=0.02)) as base_url:
        yield base_url


@pytest.fixture
def plivo(_shared_plivo: str) -> str:
    """A Plivo simulator (time_scale 0.02) shared by the session and reset for this test."""
    httpx.post(f"{_shared_plivo}/_sim/reset").raise_for_status()
    return _shared_plivo


@pytest.fixture
def rest(plivo: str) -> Iterator[httpx.Client]:
    """An authenticated client on the account's REST base URL."""
    with httpx.Client(base_url=f"{plivo}/v1/Account/{AUTH_ID}/", auth=(AUTH_ID, AUTH_TOKEN)) as client:
        yield client


def wait_until(probe: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.01) -> T:
    """Poll `probe` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def until() -> Callable[..., Any]:
    return wait_until
