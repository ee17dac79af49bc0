"""Network steps one at a time (DNS, TCP, TLS), each timed, so a failure names the layer that broke."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Resolved:
    ms: float
    addresses: list[str]


@dataclass(frozen=True)
class TlsInfo:
    ms: float
    version: str
    cert_days_left: float | None
    cert_subject: str | None


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


async def resolve(host: str, port: int, timeout_s: float) -> Resolved:
    started = time.perf_counter()
    infos = await asyncio.wait_for(
        asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s
    )
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return Resolved(elapsed_ms(started), addresses)


async def tcp_connect(address: str, port: int, timeout_s: float) -> float:
    started = time.perf_counter()
    _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout_s)
    ms = elapsed_ms(started)
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    return ms


def _days_left(not_after: str | None) -> float | None:
    if not not_after:
        return None
    expires = datetime.strptime(not_after, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
    return round((expires - datetime.now(UTC)).total_seconds() / 86400, 1)


async def tls_handshake(host: str, port: int, timeout_s: float) -> TlsInfo:
    """A full verified handshake with SNI, as httpx and redis-py do it."""
    context = ssl.create_default_context()
    started = time.perf_counter()
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=host), timeout_s
    )
    ms = elapsed_ms(started)
    ssl_object = writer.get_extra_info("ssl_object")
    version = ssl_object.version() if ssl_object else "unknown"
    cert = ssl_object.getpeercert() if ssl_object else None
    subject = None
    not_after = None
    if cert:
        not_after = str(cert.get("notAfter")) if cert.get("notAfter") else None
        subject = ", ".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)
    writer.close()
    with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    return TlsInfo(ms, str(version), _days_left(not_after), subject)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: with few samples it reports a real observation, not an interpolation."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return round(ordered[rank - 1], 1)
