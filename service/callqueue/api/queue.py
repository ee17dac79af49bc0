"""/api/queue/status: what the queue holds and how fast it moves, across all instances."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from callqueue.api.deps import RuntimeDep
from callqueue.api.errors import error_responses

router = APIRouter(prefix="/api/queue", tags=["queue"])


@router.get("/status", responses=error_responses(413, 503))
async def queue_status(runtime: RuntimeDep) -> dict[str, Any]:
    status = await runtime.store.queue_status()
    return {
        **asdict(status),
        "limits": {
            "dispatch_rate": runtime.settings.dispatch_rate,
            "max_concurrent_calls": runtime.settings.max_concurrent_calls,
        },
    }
