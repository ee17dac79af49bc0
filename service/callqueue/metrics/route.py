"""GET /metrics: this process's counters plus the queue-wide figures read from Redis now, in the Prometheus text
format, or OpenMetrics when the scraper asks for it (Accept: application/openmetrics-text)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import CollectorRegistry

from callqueue.api.errors import error_responses
from callqueue.metrics.queue import QueueSnapshot, queue_families, read_snapshot
from callqueue.settings import Settings

router = APIRouter(tags=["metrics"])
METRICS_PATH = "/metrics"


class _Scrape:
    """One scrape: the process registry, then the queue snapshot (duck-types a registry for generate_latest)."""

    def __init__(self, registry: CollectorRegistry, snapshot: QueueSnapshot, settings: Settings) -> None:
        self.registry, self.snapshot, self.settings = registry, snapshot, settings

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield from queue_families(self.snapshot, self.settings)


_TEXT = {"schema": {"type": "string"}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the metrics, as Prometheus text, or OpenMetrics when asked by Accept",
        "content": {"text/plain": _TEXT, "application/openmetrics-text": _TEXT},
    },
    **error_responses(413, 503, json_route=False),
}


@router.get(METRICS_PATH, response_class=PlainTextResponse, responses=RESPONSES)
async def metrics(request: Request) -> Response:
    """This process's counters and the queue-wide figures read from Redis now (API role only). Redis unavailable:
    503, like any other route, so the scrape fails visibly instead of reporting zeros."""
    runtime = request.app.state.runtime
    snapshot = await read_snapshot(runtime.store, runtime.settings)
    scrape = _Scrape(runtime.metrics.registry, snapshot, runtime.settings)
    if "application/openmetrics-text" in request.headers.get("accept", ""):
        return Response(generate_openmetrics(scrape), media_type=OPENMETRICS_TYPE)  # type: ignore[no-untyped-call]
    return Response(generate_latest(scrape), media_type=CONTENT_TYPE_LATEST)
