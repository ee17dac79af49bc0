"""The front door of the Plivo simulator: counts every REST request, checks Basic auth, applies the account's
REST rate limit (Plivo: 300 requests per 5 s per account, across all clients) — before faults and routes.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections import Counter, deque
from typing import Any
from urllib.parse import parse_qs

from local.simulators.faults import ASGIApp, Message, Receive, Scope, Send, send_json
from local.simulators.plivo_engine import PlivoSim

ACCOUNT_PATH = re.compile(r"^/v1/Account/(?P<auth_id>[^/]+)/(?P<rest>.*)$")
UUID_PATH = re.compile(r"^(?P<resource>Call|Request|Recording)/(?P<id>[^/]+)/?$")


def plivo_error(message: str) -> dict[str, str]:
    return {"api_id": str(uuid.uuid4()), "error": message}


def classify(method: str, rest: str, query: dict[str, list[str]]) -> tuple[str, str | None]:
    """The kind of REST request (for stats) and the uuid it names, if any."""
    status = (query.get("status") or [""])[0]
    match = UUID_PATH.match(rest)
    if match is None:
        resource = rest.strip("/")
        if resource == "Call":
            if method == "POST":
                return "create_call", None
            return {"live": "list_live", "queued": "list_queued"}.get(status, "list_calls"), None
        if resource == "Recording":
            return "list_recordings", query.get("call_uuid", [""])[0] or None
        return "other", None
    resource, some_id = match["resource"], match["id"]
    if resource == "Request" and method == "DELETE":
        return "cancel_request", some_id
    if resource == "Call" and method == "DELETE":
        return "hangup_call", some_id
    if resource == "Call" and method == "GET":
        return {"live": "get_live", "queued": "get_queued"}.get(status, "get_call"), some_id
    return "other", some_id


class RestStats:
    """REST request counts: total, per kind, per answer status, per uuid, per call (keyed by request_uuid)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.by_kind: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.per_request_uuid: Counter[str] = Counter()
        self.per_call_uuid: Counter[str] = Counter()
        self.per_call: Counter[str] = Counter()
        self.recent: deque[float] = deque()  # admission times inside the rate-limit window

    def attribute(self, sim: PlivoSim, some_id: str) -> None:
        call = sim.find(some_id)
        if call is None:
            return
        if some_id == call.request_uuid:
            self.per_request_uuid[some_id] += 1
        else:
            self.per_call_uuid[some_id] += 1
        self.per_call[call.request_uuid] += 1

    def snapshot(self, sim: PlivoSim) -> dict[str, Any]:
        calls = len(sim.calls)
        return {
            "total": self.total,
            "by_kind": dict(self.by_kind),
            "by_status": dict(self.by_status),
            "per_request_uuid": dict(self.per_request_uuid),
            "per_call_uuid": dict(self.per_call_uuid),
            "per_call": dict(self.per_call),
            "calls": calls,
            "requests_per_call": round(self.total / calls, 3) if calls else None,
        }


class PlivoGate:
    """Pure ASGI: stats, then 401 on bad credentials, then 429 above the rate limit; `/_sim/` passes by."""

    def __init__(self, app: ASGIApp, sim: PlivoSim, stats: RestStats, rate_limit: int, rate_window: float) -> None:
        self.app = app
        self.sim = sim
        self.stats = stats
        self.rate_limit = rate_limit
        self.rate_window = rate_window

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = ACCOUNT_PATH.match(str(scope.get("path", ""))) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        method = str(scope["method"])
        query = parse_qs(bytes(scope.get("query_string", b"")).decode(), keep_blank_values=True)
        kind, some_id = classify(method, match["rest"], query)
        self.stats.total += 1
        self.stats.by_kind[kind] += 1
        if some_id:
            self.stats.attribute(self.sim, some_id)

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.stats.by_status[str(message["status"])] += 1
            await send(message)

        if not self._authorized(scope, match["auth_id"]):
            await send_json(counting_send, 401, plivo_error("authentication failed"))
            return
        if not self._admit():
            await send_json(counting_send, 429, plivo_error("too many requests"))
            return
        await self.app(scope, receive, counting_send)

    def _authorized(self, scope: Scope, auth_id: str) -> bool:
        expected = base64.b64encode(f"{self.sim.auth_id}:{self.sim.auth_token}".encode()).decode()
        headers = dict(scope.get("headers") or [])
        return auth_id == self.sim.auth_id and headers.get(b"authorization", b"").decode() == f"Basic {expected}"

    def _admit(self) -> bool:
        now = time.monotonic()
        recent = self.stats.recent
        while recent and recent[0] <= now - self.rate_window:
            recent.popleft()
        if len(recent) >= self.rate_limit:
            return False
        recent.append(now)
        return True
