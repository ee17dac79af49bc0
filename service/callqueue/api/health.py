"""/api/health: the version and effective timing profile; 503 naming the dependency that is down.

On the public webhooks role the answer names no host, instance or setting: only the status, version and role.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from callqueue import __version__
from callqueue.api.deps import RuntimeDep
from callqueue.api.errors import error_responses
from callqueue.store.availability import unavailable_reason

router = APIRouter(prefix="/api", tags=["health"])


def timing_json(runtime: RuntimeDep) -> dict[str, Any]:
    t = runtime.settings.timing
    return {
        "profile": t.name,
        "reason": t.reason,
        "values": {k: int(v) for k, v in t.as_env().items()},
        "sources": dict(t.sources),
    }


@router.get(
    "/health",
    responses={503: {"description": "a dependency is down: `failing` names it"}, **error_responses(413)},
)
async def health(runtime: RuntimeDep) -> JSONResponse:
    public = runtime.settings.service_role == "webhooks"
    body: dict[str, Any] = {"status": "ok", "version": __version__, "role": runtime.settings.service_role}
    if not public:
        body.update(instance=runtime.instance_id, timing=timing_json(runtime))
    body["draining"] = runtime.stop.is_set()
    started = time.perf_counter()
    try:
        await runtime.redis.ping()
        body["redis"] = {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    except (RedisError, OSError) as exc:
        body["status"] = "unavailable"
        error = unavailable_reason(exc) or type(exc).__name__
        body["redis"] = {"status": "unreachable", "error": error if public else f"{type(exc).__name__}: {exc}"}
        body["failing"] = ["redis"]
        return JSONResponse(body, 503)
    return JSONResponse(body, 200)
