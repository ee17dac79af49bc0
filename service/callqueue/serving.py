"""How the service is served: uvicorn, plus the one slow-client limit uvicorn lacks.

uvicorn closes idle keep-alive connections, but it waits forever for a request's headers: a client that opens
connections and trickles header bytes (slowloris) could hold the public webhooks service. Here every request's
headers must arrive within CLIENT_HEADER_TIMEOUT of the connection opening (or of the previous response), else the
connection is closed. The body's own limit (CLIENT_BODY_TIMEOUT → 408) is api/body_limit.py.
"""

from __future__ import annotations

import asyncio
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
