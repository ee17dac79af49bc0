"""Slow clients cannot hold the service: headers within CLIENT_HEADER_TIMEOUT, the body within CLIENT_BODY_TIMEOUT.

Run as a real instance (`python -m callqueue`): the header limit lives in the server's protocol, not in the app.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import httpx

from tests.queue.conftest import ServiceProcess


def _connect(service: ServiceProcess) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", service.port), timeout=30)
    conn.settimeout(0.2)
    return conn


def _closed_by_server(conn: socket.socket, trickle: bytes, deadline_s: float = 30) -> bytes:
    """Trickle bytes until the server closes the connection; what it sent before closing. Fails at the deadline."""
    received = b""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if trickle:
                conn.sendall(trickle)
            chunk = conn.recv(4096)
            if not chunk:
                return received
            received += chunk
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return received
    raise AssertionError(f"the connection was still open after {deadline_s} s")


def test_slow_headers_and_bodies_are_cut_off_while_others_are_served(
    redis_url: str, key_prefix: str, spawn: Callable[[dict[str, str]], ServiceProcess]
) -> None:
    service = spawn({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "DISPATCH_WORKERS": "0",
                     "CLIENT_HEADER_TIMEOUT": "1", "CLIENT_BODY_TIMEOUT": "1"})  # fmt: skip
    idle = _connect(service)  # connects and never sends a byte
    slowloris = _connect(service)
    slowloris.sendall(b"GET /api/health HTTP/1.1\r\nHost: queue\r\n")
    assert _closed_by_server(slowloris, b"X-a: b\r\n") == b"", "headers never completed: closed without an answer"
    assert _closed_by_server(idle, b"") == b""

    slow_body = _connect(service)
    head = b"POST /api/calls/queue HTTP/1.1\r\nHost: queue\r\nContent-Type: application/json\r\nContent-Length: 500\r\n"
    slow_body.sendall(head + b"\r\n" + b'{"phone_number": ')
    answer = _closed_by_server(slow_body, b"")
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), answer
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"] == "request_timeout" and "CLIENT_BODY_TIMEOUT=1" in body["message"]

    # Meanwhile, and afterwards, a normal client is served.
    call = {"phone_number": "+14155550100", "campaign_id": "c", "call_config": {"flow_name": "f"}}
    assert httpx.post(f"{service.url}/api/calls/queue", json=call, timeout=10).status_code == 202
    with httpx.Client(base_url=service.url, timeout=10) as keep_alive:
        assert keep_alive.get("/api/health").status_code == 200
        assert keep_alive.get("/api/health").status_code == 200
