"""/api/live: the process serves (Cloud Run's liveness probe). /api/health: the version, the effective timing
profile, and Redis: 503 naming it when it is down or runs with an eviction policy the service refuses (the
startup probe). Liveness touches no dependency, so a Redis failover never restarts every instance at once."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from callqueue import __version__
from callqueue.api.deps import RuntimeDep

router = APIRouter(prefix="/api", tags=["health"])


def timing_json(runtime: RuntimeDep) -> dict[str, Any]:
    t = runtime.settings.timing
    return {
        "profile": t.name,
        "reason": t.reason,
        "values": {k: int(v) for k, v in t.as_env().items()},
        "sources": dict(t.sources),
    }


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/health")
async def health(runtime: RuntimeDep) -> JSONResponse:
    body: dict[str, Any] = {
        "status": "ok",
        "version": __version__,
        "role": runtime.settings.service_role,
        "instance": runtime.instance_id,
        "timing": timing_json(runtime),
        "draining": runtime.stop.is_set(),
    }
    started = time.perf_counter()
    try:
        await runtime.redis.ping()
        body["redis"] = {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    except (RedisError, OSError) as exc:
        body["status"] = "unavailable"
        body["redis"] = {"status": "unreachable", "error": f"{type(exc).__name__}: {exc}"}
        body["failing"] = ["redis"]
        return JSONResponse(body, 503)
    verdict = await runtime.guard.check()
    body["redis"]["maxmemory_policy"] = runtime.guard.policy
    if verdict != "ok":
        body["status"] = "unavailable"
        body["redis"]["status"] = "refused" if verdict == "refused" else "unchecked"
        body["redis"]["error"] = runtime.guard.refusal or runtime.guard.last_error
        body["failing"] = ["redis-policy"]
        return JSONResponse(body, 503)
    return JSONResponse(body, 200)
