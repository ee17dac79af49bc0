"""Peers for the ops tools: the simulators (healthy), and tiny apps that are broken in one way each.

Every server runs in-process on a free loopback port for the whole session; Redis is the one the test run got
from `local.with_redis` (or a throwaway one), with a fresh key prefix per test.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from local.redis_server import ThrowawayRedis, free_port
from local.simulators.agent import create_agent_app
from local.simulators.backend import create_backend_app
from local.simulators.id_tokens import CallerPolicy
from local.simulators.plivo import create_plivo_app
from local.simulators.server import running
from local.simulators.wiring import simulator_env

AUTH_ID = "MAOPSTEST"
AUTH_TOKEN = "ops-token"
Run = Callable[..., tuple[int, dict[str, Any]]]
# --timeout for checks whose peers answer: generous, because a loaded 2-core machine can keep a local peer waiting
# for seconds; the timeout only costs time when a peer hangs, and the hung-peer tests set their own short one.
PATIENT = "20"
# The hung peer holds each request this long (unless the session ends first): a tool that returns well before it
# did not wait for the hung peer.
HUNG_FOR_S = 30


def _health_app(status: int = 200, body: Any = None, text: str | None = None) -> FastAPI:
    """Answers /health (and /v1/… for a fake Plivo) with a fixed status; /_sim/ping for `running`."""
    app = FastAPI()

    @app.get("/_sim/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/{path:path}", methods=["GET"])
    async def anything(path: str) -> Any:
        if text is not None:
            return PlainTextResponse(text, status)
        return JSONResponse(body if body is not None else {"detail": f"answer {status}"}, status)

    return app


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with ThrowawayRedis() as redis:
        yield redis.url


@pytest.fixture(scope="session")
def release() -> threading.Event:
    """Set at the end of the session so hung handlers return and their servers can stop."""
    return threading.Event()


@pytest.fixture(scope="session")
def peers(release: threading.Event) -> Iterator[dict[str, str]]:
    hung = FastAPI()

    @hung.get("/_sim/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @hung.get("/{path:path}")
    async def sleep_forever(path: str) -> dict[str, str]:
        for _ in range(HUNG_FOR_S * 20):  # longer than any timeout a test uses, until the session releases it
            if release.is_set():
                break
            await asyncio.sleep(0.05)
        return {"status": "too late"}

    metadata = FastAPI()

    @metadata.get("/_sim/ping")
    async def metadata_ping() -> dict[str, str]:
        return {"status": "ok"}

    @metadata.get("/computeMetadata/v1/instance/region")
    async def region(request: Request) -> PlainTextResponse:
        if request.headers.get("metadata-flavor") != "Google":
            return PlainTextResponse("missing Metadata-Flavor", 403)
        return PlainTextResponse("projects/123456789/regions/europe-west1")

    @metadata.get("/computeMetadata/v1/instance/service-accounts/default/identity")
    async def identity(audience: str) -> PlainTextResponse:
        return PlainTextResponse(f"token-for-{audience}")

    queue = FastAPI()

    @queue.get("/_sim/ping")
    async def queue_ping() -> dict[str, str]:
        return {"status": "ok"}

    @queue.get("/api/health")
    async def queue_health() -> dict[str, Any]:  # the shape of callqueue.api.health
        return {
            "status": "ok",
            "timing": {
                "profile": "local",
                "reason": "CLOUD_RUN_OPTIMIZED=false",
                "values": {"INITIAL_STATUS_DELAY": 5},
                "sources": {"INITIAL_STATUS_DELAY": "profile:local"},
            },
            "redis": {"status": "ok", "latency_ms": 0.4},
        }

    with running(create_plivo_app(AUTH_ID, AUTH_TOKEN)) as plivo:
        servers = {
            "agent": create_agent_app(plivo, AUTH_ID, AUTH_TOKEN),
            "agent_stock": create_agent_app(plivo, AUTH_ID, AUTH_TOKEN, mode="stock"),
            "agent_checking_tokens": create_agent_app(plivo, AUTH_ID, AUTH_TOKEN, caller_policy=CallerPolicy()),
            "backend": create_backend_app(),
            "forbidden": _health_app(403, {"detail": "Forbidden"}),
            "unauthorized": _health_app(401, {"detail": "Unauthorized"}),
            "not_json": _health_app(200, text="<html>welcome</html>"),
            "hung": hung,
            "metadata": metadata,
            "queue": queue,
        }
        contexts = {name: running(app) for name, app in servers.items()}
        urls = {"plivo": plivo, **{name: ctx.__enter__() for name, ctx in contexts.items()}}
        try:
            yield urls
        finally:
            release.set()
            for ctx in contexts.values():
                ctx.__exit__(None, None, None)


@pytest.fixture
def prefix() -> str:
    return f"opstest-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def env(redis_url: str, peers: dict[str, str], prefix: str) -> dict[str, str]:
    """A healthy local environment: simulators, real Redis, Plivo credentials, AUTH_MODE=none."""
    return {
        **simulator_env(
            plivo=peers["plivo"], agent=peers["agent"], backend=peers["backend"], auth_id=AUTH_ID, auth_token=AUTH_TOKEN
        ),
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "AUTH_MODE": "none",
        "DISPATCH_RATE": "2",
    }


@pytest.fixture
def closed_port_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def _runner(main: Callable[..., int], capsys: pytest.CaptureFixture[str]) -> Run:
    """In-process run with --json; returns the exit code and the report keyed by check name."""

    def run(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
        code = main(["--json", *args], env)
        report = json.loads(capsys.readouterr().out)
        assert report["exit_code"] == code
        return code, {c["name"]: c for c in report["checks"]}

    return run


@pytest.fixture
def diagnose(capsys: pytest.CaptureFixture[str]) -> Run:
    from callqueue.ops.diagnose import main

    return _runner(main, capsys)


@pytest.fixture
def connectivity(capsys: pytest.CaptureFixture[str]) -> Run:
    from callqueue.ops.connectivity import main

    return _runner(main, capsys)
