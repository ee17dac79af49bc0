"""Fixtures for dispatch tests: the simulators over real HTTP, service settings, and service processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from local.redis_server import free_port
from local.simulators.agent import create_agent_app
from local.simulators.backend import create_backend_app
from local.simulators.plivo import create_plivo_app
from local.simulators.server import running
from local.simulators.wiring import simulator_env

AUTH_ID, AUTH_TOKEN = "MATEST", "test-token"
FINAL = {"completed", "busy", "no_answer", "canceled", "failed", "missed", "unknown"}


@dataclass
class Sims:
    plivo: str
    agent: str
    backend: str

    def starts(self) -> list[dict[str, Any]]:
        starts: list[dict[str, Any]] = httpx.get(f"{self.agent}/_sim/starts").json()["starts"]
        return starts

    def agent_fault(self, **rule: Any) -> None:
        httpx.post(f"{self.agent}/_sim/faults", json=rule).raise_for_status()


@pytest.fixture
def sims() -> Iterator[Sims]:
    with ExitStack() as stack:
        plivo = stack.enter_context(running(create_plivo_app(AUTH_ID, AUTH_TOKEN, cps=50, time_scale=0.2)))
        agent = stack.enter_context(running(create_agent_app(plivo, AUTH_ID, AUTH_TOKEN)))
        backend = stack.enter_context(running(create_backend_app()))
        yield Sims(plivo, agent, backend)


@pytest.fixture
def service_env(redis_url: str, key_prefix: str, sims: Sims) -> dict[str, str]:
    """Settings of a service wired to the simulators, with short timings so tests stay quick."""
    return {
        **simulator_env(
            plivo=sims.plivo, agent=sims.agent, backend=sims.backend, auth_id=AUTH_ID, auth_token=AUTH_TOKEN
        ),
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "PUBLIC_BASE_URL": "http://127.0.0.1:9",  # callbacks are not what these tests observe
        "REQUEST_TIMEOUT": "2",
        "INITIAL_STATUS_DELAY": "1",
        "STATUS_CHECK_INTERVAL": "1",
        "DISPATCH_RATE": "50",
        "MAX_CONCURRENT_CALLS": "1000",
    }


class ServiceProcess:
    """`python -m callqueue` as a child process: the way an instance runs, and can be killed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {**os.environ, **env, "PORT": str(self.port), "LOG_LEVEL": env.get("LOG_LEVEL", "WARNING")}
        self.proc = subprocess.Popen([sys.executable, "-m", "callqueue"], env=full)

    def wait_healthy(self, timeout: float = 90) -> None:  # generous: a start-up on a loaded 2-core machine is slow
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return  # died (a crash point may do that on purpose)
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"service on {self.url} did not become healthy")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def spawn() -> Iterator[Callable[[dict[str, str]], ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(env: dict[str, str]) -> ServiceProcess:
        service = ServiceProcess(env)
        started.append(service)
        service.wait_healthy()
        return service

    yield start
    for service in started:
        service.stop()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
