"""Extension points beyond dispatch: background loops and HTTP routers of tracking and result delivery.

Registered here so the runtime starts and drains every loop alike, and the app mounts every router alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from callqueue.runtime import Loop, Runtime


def extra_loops(runtime: Runtime) -> dict[str, Loop]:
    return {}


def extra_routers() -> list[APIRouter]:
    return []
