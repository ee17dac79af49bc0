"""The FastAPI application factory: settings in, app out; no module-level state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline

from callqueue import __version__
from callqueue.api import calls, campaigns, health, queue, suppressions
from callqueue.api.body_limit import BodyLimitMiddleware
from callqueue.api.errors import install_error_handlers
from callqueue.clock import Clock
from callqueue.metrics import route as metrics_route
from callqueue.metrics.callbacks import CallbackTally
from callqueue.operator import api as operator
from callqueue.runtime import Runtime
from callqueue.settings import Settings
from callqueue.tracking import webhooks

log = logging.getLogger("callqueue")
DOCS_ASSETS_PATH = "/docs-assets"
NO_OTEL: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings, *, background: bool = True, clock: Clock | None = None) -> FastAPI:
    """Build the app; `background=False` serves the API without dispatch or tracking loops (API-only tests).
    `clock` is what calling hours and retry waits are read with (tests move it; default: the system clock).

    With SERVICE_ROLE=webhooks only Plivo's callbacks and the health check are served and nothing runs in the
    background: that instance is the public face Plivo reaches, while the API stays private. It serves no API
    documentation (/docs, /redoc, /openapi.json) either.
    """
    webhooks_only = settings.service_role == "webhooks"
    background = background and not webhooks_only

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.create(settings, clock)
        app.state.runtime = runtime
        log.info(settings.timing.summary())
        try:
            await runtime.start(background)
        except Exception:
            await runtime.shutdown()
            raise
        try:
            yield
        finally:
            log.info("shutting down: no new calls are taken; in-flight work stays leased in Redis")
            await runtime.shutdown()

    title, description = "callqueue", "Outbound voice-AI call queue: durable, paced, truthfully tracked."
    # FastAPI's native OpenTelemetry stays off: the service traces with traceparent (tracing.py) and counts with
    # Prometheus (metrics/); left on, it looks for OTel providers in os.environ on every request (~10 % of the CPU
    # of an enqueue).
    if webhooks_only:
        app = FastAPI(
            title=title, version=__version__, description=description, lifespan=lifespan, telemetry=NO_OTEL,
            docs_url=None, redoc_url=None, openapi_url=None,
        )  # fmt: skip
    else:  # /docs and /redoc load Swagger UI and ReDoc from a package (at DOCS_ASSETS_PATH), not a CDN: offline too
        app = FastAPIOffline(
            title=title, version=__version__, description=description, lifespan=lifespan, telemetry=NO_OTEL,
            static_url=DOCS_ASSETS_PATH,
        )  # fmt: skip
    install_error_handlers(app)
    docs_routes = list(app.router.routes)  # what the constructor added: the OpenAPI document and the docs pages
    for module in (health,) if webhooks_only else (calls, campaigns, suppressions, queue, health):
        app.include_router(module.router)
    app.include_router(webhooks.router)
    if not webhooks_only:  # the API role is private; the webhooks role is public and shows nothing of the queue
        app.include_router(operator.router)
        app.mount(operator.PAGE_PATH + "static", operator.static_files, name="operator-static")
        if settings.metrics_enabled:
            app.include_router(metrics_route.router)
    # The API's routes are tried first (a request goes down the list until one matches): the docs' five routes in
    # front of them cost every enqueue a few µs of failed matches. No API path overlaps a docs path.
    app.router.routes[:] = [r for r in app.router.routes if all(r is not d for d in docs_routes)] + docs_routes
    if not webhooks_only:
        calls.serve_queue_first(app)
    app.add_middleware(CallbackTally)
    # Bulk enqueue and suppression lists take up to 10,000 entries: MAX_BULK_BODY_BYTES.
    larger = {
        campaigns.BULK_PATH: (settings.max_bulk_body_bytes, "split the calls into smaller requests"),
        suppressions.BULK_PATH: (settings.max_bulk_body_bytes, "split the numbers into smaller requests"),
    }
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        read_timeout_s=settings.client_body_timeout,
        larger=larger,
    )
    return app
