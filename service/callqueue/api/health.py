"""/api/live: the process serves (Cloud Run's liveness probe). /api/health: the version, the effective timing
profile, the kind of agent (clients/agent_kind.py: what it means for retries and callbacks), and Redis: 503 naming
it when it is down or runs with an eviction policy the service refuses (the startup probe). Liveness touches no
dependency, so a Redis failover never restarts every instance at once.

On the public webhooks role the health answer names no host, instance or setting: only the status, version, role
and, when Redis fails, why in a few words (a refused policy is named, a host never).
"""

from __future__ import annotations

import time
import weakref
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import RedisError

from callqueue import __version__
from callqueue.api.deps import get_runtime_as_is
from callqueue.api.errors import error_responses
from callqueue.clients.agent import AgentClient
from callqueue.clients.agent_kind import AgentKindCache, describe
from callqueue.runtime import Runtime
from callqueue.store.availability import unavailable_reason

router = APIRouter(prefix="/api", tags=["health"])
RuntimeAsIs = Annotated[Runtime, Depends(get_runtime_as_is)]
_agent_kinds: weakref.WeakKeyDictionary[AgentClient, AgentKindCache] = weakref.WeakKeyDictionary()


class Liveness(BaseModel):
    status: Literal["alive"]


def timing_json(runtime: Runtime) -> dict[str, Any]:
    t = runtime.settings.timing
    return {
        "profile": t.name,
        "reason": t.reason,
        "values": {k: int(v) for k, v in t.as_env().items()},
        "sources": dict(t.sources),
    }


@router.get("/live", response_model=Liveness, responses=error_responses(413))
async def live() -> Liveness:
    """The process serves requests; nothing else is touched (Cloud Run's liveness probe)."""
    return Liveness(status="alive")


@router.get(
    "/health",
    responses={
        503: {"description": "Redis is down, or its eviction policy is refused: `failing` names it"},
        **error_responses(413),
    },
)
async def health(runtime: RuntimeAsIs) -> JSONResponse:
    public = runtime.settings.service_role == "webhooks"
    body: dict[str, Any] = {"status": "ok", "version": __version__, "role": runtime.settings.service_role}
    if not public:
        body.update(instance=runtime.instance_id, timing=timing_json(runtime))
        kind, evidence = await _agent_kinds.setdefault(runtime.agent, AgentKindCache()).get(runtime.agent)
        body["agent"] = describe(kind, evidence, runtime.settings)
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
    guard = runtime.guard
    verdict = await guard.check()
    if not public:
        body["redis"]["maxmemory_policy"] = guard.policy
    if verdict != "ok":
        body["status"] = "unavailable"
        body["redis"]["status"] = "refused" if verdict == "refused" else "unchecked"
        if verdict == "refused":
            body["redis"]["error"] = guard.reason if public else guard.refusal
        else:
            body["redis"]["error"] = guard.last_reason if public else guard.last_error
        body["failing"] = ["redis-policy"]
        return JSONResponse(body, 503)
    return JSONResponse(body, 200)
