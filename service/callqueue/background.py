"""Extension points beyond dispatch: background loops and HTTP routers of tracking and result delivery.

Registered here so the runtime starts and drains every loop alike, and the app mounts every router alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from callqueue.runtime import Loop, Runtime


def extra_loops(runtime: Runtime) -> dict[str, Loop]:
    from callqueue.clients.backend import BackendClient
    from callqueue.delivery.outbox import ResultDelivery
    from callqueue.tracking.agent_stream import AgentEventConsumer
    from callqueue.tracking.cadence import Cadence
    from callqueue.tracking.checker import Checker
    from callqueue.tracking.scheduler import TrackingScheduler
    from callqueue.tracking.sources import Sources

    settings = runtime.settings
    cadence = Cadence(settings.timing)
    plivo = runtime.plivo
    checker = Checker(runtime.store, Sources(plivo, runtime.agent), plivo, cadence)
    scheduler = TrackingScheduler(runtime.store, checker, settings.tracker_concurrency, cadence.check_lease_ms)
    consumer = AgentEventConsumer(runtime.store, cadence, runtime.instance_id, runtime.rejections)
    backend = BackendClient(
        settings.backend_url + settings.backend_results_path,
        runtime.http,
        runtime.tokens,
        settings.timing.request_timeout,
    )
    delivery = ResultDelivery(runtime.store, backend, plivo, settings.timing)
    return {"tracker": scheduler.run, "agent-events": consumer.run, "result-delivery": delivery.run}


def extra_routers() -> list[APIRouter]:
    from callqueue.tracking.webhooks import router

    return [router]
