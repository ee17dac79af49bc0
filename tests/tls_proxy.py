"""A TLS-terminating TCP proxy in front of a plain Redis: what a rediss:// Memorystore looks like to the client.

The certificates in tests/fixtures/tls/ are test-only (a CA valid for 100 years, a server certificate for
127.0.0.1 signed by it, and an unrelated CA); they protect nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

from local.redis_server import free_port

TLS_DIR = Path(__file__).resolve().parent / "fixtures" / "tls"
CA_PEM = (TLS_DIR / "ca.pem").read_text()
OTHER_CA_PEM = (TLS_DIR / "other-ca.pem").read_text()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.contextmanager
def tls_proxy(target_port: int) -> Iterator[int]:
    """Serve TLS on a free loopback port, forwarding to 127.0.0.1:`target_port`; yields the TLS port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS_DIR / "server.pem", TLS_DIR / "server.key")
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            redis_r, redis_w = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, redis_w), _pipe(redis_r, client_w))

    async def serve() -> asyncio.Server:
        return await asyncio.start_server(handle, "127.0.0.1", port, ssl=context)

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(serve())
        ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())

    thread = threading.Thread(target=run, name=f"tls-proxy-{port}", daemon=True)
    thread.start()
    assert ready.wait(10), "the TLS proxy did not start"
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
