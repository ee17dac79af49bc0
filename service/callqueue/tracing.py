"""One trace per call, from the enqueue request to the agent's /start and the backend's result POST.

The trace is taken from the enqueue request's W3C `traceparent`, else from Cloud Run's `X-Cloud-Trace-Context`,
else started there; it is stored with the call (`traceparent` on its record). Whatever works on a call binds it
(`bind_call`) for the rest of its task: log lines then carry the call id and the trace in the fields Cloud
Logging links (logs.py), and outbound requests to the agent and the backend carry a `traceparent` with the same
trace id and a fresh span id (metrics/transport.py).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?$")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


@dataclass(frozen=True)
class TraceContext:
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits: the span this context's holder is in
    sampled: bool

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def child(self) -> TraceContext:
        """The context to send on an outbound request: same trace, a new span."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.sampled)


def parse_traceparent(value: str | None) -> TraceContext | None:
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or match[1] == "ff" or match[2] == _ZERO_TRACE or match[3] == _ZERO_SPAN:
        return None
    return TraceContext(match[2], match[3], bool(int(match[4], 16) & 1))


def parse_cloud_trace(value: str | None) -> TraceContext | None:
    """`TRACE_ID/SPAN_ID;o=1`, the span id in decimal (Cloud Run's front end adds this header)."""
    if not value:
        return None
    match = _CLOUD_TRACE.match(value.strip())
    if not match or match[1].lower() == _ZERO_TRACE:
        return None
    span = int(match[2]) if match[2] else 0
    span_hex = f"{span % 2**64:016x}" if span else secrets.token_hex(8)
    return TraceContext(match[1].lower(), span_hex, match[3] == "1")


def from_headers(headers: Mapping[str, str]) -> TraceContext:
    """The request's trace (traceparent first, then X-Cloud-Trace-Context), or a new one started here."""
    return from_values(headers.get("traceparent"), headers.get("x-cloud-trace-context"))


def from_values(traceparent: str | None, cloud_trace: str | None) -> TraceContext:
    """`from_headers` for the two headers already read (the enqueue reads its headers in one pass)."""
    found = parse_traceparent(traceparent) or parse_cloud_trace(cloud_trace)
    if found is not None:
        return found
    ids = secrets.token_hex(24)  # one read of the system's randomness for both ids (the enqueue hot path)
    return TraceContext(ids[:32], ids[32:], False)


def request_traceparent(traceparent: str | None, cloud_trace: str | None) -> str:
    """The `traceparent` a new call is stored with: `from_values(...).traceparent`, and for a request carrying
    neither header (the usual enqueue) the new one written at once, without the parsing and the TraceContext."""
    if traceparent is None and cloud_trace is None:
        ids = os.urandom(24).hex()
        return f"00-{ids[:32]}-{ids[32:]}-00"
    return from_values(traceparent, cloud_trace).traceparent


current_call_id: ContextVar[str | None] = ContextVar("callqueue_call_id", default=None)
current_trace: ContextVar[TraceContext | None] = ContextVar("callqueue_trace", default=None)


def bind_call(call_id: str | None, traceparent: str | None = None) -> None:
    """From here on in this task, log lines and outbound requests belong to this call (None: to no call)."""
    current_call_id.set(call_id)
    current_trace.set(parse_traceparent(traceparent))


def outbound_traceparent() -> str | None:
    trace = current_trace.get()
    return trace.child().traceparent if trace is not None else None
