"""FastAPI dependencies: the process's Runtime and its store, taken from the app state.

Routes that work on the queue take them admitted: while Redis's eviction policy is refused (or not yet read because
Redis does not answer), they answer 503 naming why, before touching Redis. The health check takes the runtime as it
is (`get_runtime_as_is`), since reporting that state is its job.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from callqueue.runtime import Runtime
from callqueue.store.calls import CallStore


def get_runtime_as_is(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    runtime = get_runtime_as_is(request)
    await runtime.guard.admit()
    return runtime


async def get_store(request: Request) -> CallStore:
    return (await get_runtime(request)).store


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
StoreDep = Annotated[CallStore, Depends(get_store)]
