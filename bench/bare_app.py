"""The floors the HTTP enqueue is measured against: the same validation and one Redis SET, on a bare FastAPI route
(issue 12's floor, POST /api/calls/queue) and on a plain Starlette route (POST /plain/calls/queue: the kind of route
the service serves its enqueue on, without FastAPI's per-request handler).

Same server (`callqueue.serving.serve`, as the service: its uvicorn configuration, its startup heap frozen for the
garbage collector; FastAPI without its native OTel, as the service), same request model and call_config rules, the
service's own Redis client; no middleware, no dependencies, no queue semantics. Run as
`python -m bench.bare_app PORT` with REDIS_URL set.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.routing import Route

from callqueue.api.app import NO_OTEL
from callqueue.api.models import QueueCallRequest
from callqueue.call_config import call_config_problems
from callqueue.serving import serve
from callqueue.settings import load_settings
from callqueue.store.connection import service_redis


def create_bare_app() -> FastAPI:
    settings = load_settings()
    redis = service_redis(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await redis.aclose()

    app = FastAPI(lifespan=lifespan, telemetry=NO_OTEL)  # as the service: no per-request OTel lookups

    @app.get("/api/health")
    async def health() -> Response:
        return Response(status_code=200)

    async def validate_and_set(raw: bytes) -> JSONResponse:
        try:
            body = QueueCallRequest.model_validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False), body=raw) from None
        if call_config_problems(body.call_config.model_dump()):
            return JSONResponse({"error": "validation"}, status_code=422)
        call_id = uuid.uuid4().hex
        await redis.set(f"bare:{call_id}", raw)
        return JSONResponse({"call_id": call_id, "status": "queued"}, status_code=202)

    @app.post("/api/calls/queue")
    async def queue_call(request: Request) -> JSONResponse:
        return await validate_and_set(await request.body())

    async def queue_call_plain(request: Request) -> JSONResponse:
        return await validate_and_set(await request.body())

    app.router.routes.insert(0, Route("/plain/calls/queue", queue_call_plain, methods=["POST"]))
    return app


def main() -> None:
    settings = load_settings()
    serve(create_bare_app(), settings, host="127.0.0.1", port=int(sys.argv[1]))


if __name__ == "__main__":
    main()
