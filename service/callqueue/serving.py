"""How the service is served: uvicorn, plus the one slow-client limit uvicorn lacks.

uvicorn closes idle keep-alive connections, but it waits forever for a request's headers: a client that opens
connections and trickles header bytes (slowloris) could hold the public webhooks service. Here every request's
headers must arrive within CLIENT_HEADER_TIMEOUT of the connection opening (or of the previous response), else the
connection is closed. The body's own limit (CLIENT_BODY_TIMEOUT → 408) is api/body_limit.py.

Once started, the process moves everything it holds into the garbage collector's permanent generation (gc.freeze):
the modules, FastAPI's routes and schemas, phonenumbers' metadata, the runtime's clients (~100,000 objects) are never
freed, yet every full collection walked them all again, ~60-90 ms each, about once a second under load: the p99 of
every request in flight then (bench/enqueue.py measured p99 55-80 ms at a p50 of 5 ms, 12-18 ms once frozen).
"""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from callqueue.settings import Settings


def header_timeout_protocol(timeout_s: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing a connection whose request headers take longer than `timeout_s`."""

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expire(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # The next request's headers may not start at once: uvicorn's keep-alive timeout covers that wait.
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


def uvicorn_config(app: Any, settings: Settings, host: str = "0.0.0.0", port: int | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=settings.port if port is None else port,
        http=header_timeout_protocol(settings.client_header_timeout),
        timeout_keep_alive=min(5, settings.client_header_timeout),
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the handlers configure_logging installed
        access_log=False,  # Cloud Run logs every request itself
        timeout_graceful_shutdown=8,
        proxy_headers=True,
        forwarded_allow_ips="*",
    )


class Server(uvicorn.Server):
    """uvicorn's server; once its startup (the lifespan's included) is done, what the process holds is frozen."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        freeze_startup_heap()


def freeze_startup_heap() -> None:
    """Collect once, then exempt every object alive now from later collections (a startup object that became
    garbage later is never freed: a bounded, one-time cost, against a 60-90 ms pause about once a second)."""
    gc.collect()
    gc.freeze()


def serve(app: Any, settings: Settings, host: str = "0.0.0.0", port: int | None = None) -> None:
    """Serve `app` with the service's uvicorn configuration until SIGTERM/SIGINT (the service, and the benchmark's
    floor: bench/bare_app.py)."""
    Server(uvicorn_config(app, settings, host, port)).run()
