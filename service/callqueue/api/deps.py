"""FastAPI dependencies: the process's Runtime and its store, taken from the app state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from callqueue.runtime import Runtime
from callqueue.store.calls import CallStore


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_store(request: Request) -> CallStore:
    runtime: Runtime = request.app.state.runtime
    return runtime.store


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
StoreDep = Annotated[CallStore, Depends(get_store)]
