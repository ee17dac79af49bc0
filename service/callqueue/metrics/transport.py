"""The one transport under the runtime's HTTP client: measures every outbound request by peer, and hands the
call's trace to the agent and the backend (`traceparent`, see tracing.py).

Peers are told apart by host and port (from the settings), so labels stay bounded and carry no ids.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from callqueue.clients.auth import metadata_base_url
from callqueue.metrics.catalog import OTHER
from callqueue.metrics.process import ProcessMetrics
from callqueue.settings import Settings
from callqueue.tracing import outbound_traceparent

TRACED_PEERS = frozenset({"agent", "backend"})


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def peers_of(settings: Settings) -> dict[str, str]:
    """host:port → peer name; on a shared host the first listed wins (agent, backend, plivo)."""
    peers: dict[str, str] = {}
    for name, url in (
        ("agent", settings.agent_server_url),
        ("backend", settings.backend_url),
        ("plivo", settings.plivo_api_base_url),
        ("metadata", metadata_base_url(settings.gce_metadata_host)),  # GCE_METADATA_HOST, as IdTokens uses it
    ):
        peers.setdefault(_netloc(url), name)
    return peers


class OutboundTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, metrics: ProcessMetrics, peers: dict[str, str]) -> None:
        self.inner = inner
        self.metrics = metrics
        self.peers = peers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        peer = self.peers.get(f"{request.url.host}:{port}", OTHER)
        if peer in TRACED_PEERS and "traceparent" not in request.headers:
            traceparent = outbound_traceparent()
            if traceparent:
                request.headers["traceparent"] = traceparent
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except Exception:
            self.metrics.outbound(peer, request.method, "error", time.perf_counter() - started)
            raise
        self.metrics.outbound(peer, request.method, str(response.status_code), time.perf_counter() - started)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def outbound_client(settings: Settings, metrics: ProcessMetrics) -> httpx.AsyncClient:
    """The runtime's shared HTTP client (connection limits live on the inner transport)."""
    inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
    return httpx.AsyncClient(
        timeout=settings.timing.request_timeout, transport=OutboundTransport(inner, metrics, peers_of(settings))
    )
