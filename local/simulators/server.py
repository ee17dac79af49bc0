"""Run an ASGI app on a free loopback port in a background thread, for tests and the simulator CLIs."""

from __future__ import annotations

import argparse
import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from local.redis_server import free_port


@contextmanager
def running(app: Any, port: int | None = None, host: str = "127.0.0.1", timeout: float = 10.0) -> Iterator[str]:
    """Serve `app` with uvicorn in a daemon thread; yield its base URL once it answers HTTP; stop on exit."""
    port = port or free_port()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sim-{port}", daemon=True)
    thread.start()
    base_url = f"http://{host}:{port}"
    try:
        _wait_until_answering(base_url, server, thread, timeout)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout)


def _wait_until_answering(base_url: str, server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"server for {base_url} exited during startup")
        if server.started and _answers(base_url):
            return
        time.sleep(0.005)
    raise RuntimeError(f"server for {base_url} did not answer within {timeout} s")


def _answers(base_url: str) -> bool:
    """Any HTTP answer at all (stdlib client: an httpx client costs an SSL context per probe)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=1.0)
    try:
        connection.request("GET", "/_sim/ping")
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


def cli_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the --host/--port options every simulator CLI shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    return parser


def serve_forever(app: Any, host: str, port: int) -> None:
    """Run `app` in the foreground (the CLIs); prints the base URL first so scripts can pick it up."""
    port = port or free_port()
    print(f"listening on http://{host}:{port}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
