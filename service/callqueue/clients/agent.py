"""Client of the voice agent: start a call, and ask what became of one (docs/contracts.md, "Agent").

Every answer to a start request is sorted by what it proves about the dial, because a blindly retried start
dials a person twice:
- accepted: the agent took it; we have Plivo's request uuid;
- retryable: the request certainly did not start a call (connection refused, 429, 503); safe to send again;
- rejected: the agent says the request is wrong (4xx); the call fails with that reason;
- unknown: the agent may have dialled (timeout, connection lost, 500/502/504): reconcile, never resend blindly;
- malformed: a 2xx whose body is not the documented JSON; the call fails with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from callqueue.clients.auth import IdTokens
from callqueue.ids import ATTEMPT_ID_RULE, is_attempt_id, shown

START_PATH = "/start"
STATUS_PATH = "/calls/{call_id}"
RETRYABLE_STATUS = frozenset({429, 503})
UNKNOWN_STATUS = frozenset({408, 500, 502, 504})


@dataclass(frozen=True)
class StartOutcome:
    kind: Literal["accepted", "retryable", "rejected", "unknown", "malformed"]
    reason: str
    request_uuid: str | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class AgentCallStatus:
    call_id: str
    request_uuid: str | None
    call_uuid: str | None
    status: str
    duration: int | None
    hangup_cause: str | None
    recording_url: str | None


class AgentProtocolError(Exception):
    """The agent answered something that is not the documented contract."""


def _snippet(response: httpx.Response) -> str:
    return response.text[:200].replace("\n", " ")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class AgentClient:
    def __init__(self, base_url: str, http: httpx.AsyncClient, tokens: IdTokens, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._tokens = tokens
        self._timeout = timeout_s

    async def start(self, call_id: str, body: dict[str, Any]) -> StartOutcome:
        url = self.base_url + START_PATH
        try:
            headers = {"Idempotency-Key": call_id, **await self._tokens.headers_for(url)}
        except httpx.HTTPError as exc:
            return StartOutcome("retryable", f"could not get an ID token for the agent: {exc!r}")
        try:
            response = await self._http.post(url, json=body, headers=headers, timeout=self._timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return StartOutcome("retryable", f"agent unreachable ({type(exc).__name__}): request not delivered")
        except httpx.HTTPError as exc:
            return StartOutcome("unknown", f"agent did not answer ({type(exc).__name__}): the call may be placed")
        code = response.status_code
        if code in RETRYABLE_STATUS:
            return StartOutcome(
                "retryable", f"agent answered {code}: {_snippet(response)}", None, _retry_after(response)
            )
        if code in UNKNOWN_STATUS:
            return StartOutcome("unknown", f"agent answered {code}: the call may be placed: {_snippet(response)}")
        if 400 <= code < 500:
            hint = " (on Cloud Run: grant roles/run.invoker on the agent to the queue's service account)"
            return StartOutcome(
                "rejected",
                f"agent rejected the start with {code}: {_snippet(response)}" + (hint if code in (401, 403) else ""),
            )
        if code >= 300:
            return StartOutcome("unknown", f"agent answered {code}: {_snippet(response)}")
        try:
            data = response.json()
            request_uuid = data["call_uuid"]
        except (ValueError, KeyError, TypeError):
            return StartOutcome(
                "malformed",
                f"agent answered {code} without the documented JSON body {{'call_uuid': ...}}: {_snippet(response)!r}",
            )
        if isinstance(request_uuid, list):  # Plivo answers a list of request uuids; one destination → one
            request_uuid = request_uuid[0] if request_uuid else None
        if not isinstance(request_uuid, str) or not request_uuid:
            return StartOutcome("malformed", f"agent answered {code} with an empty call_uuid: {_snippet(response)!r}")
        return StartOutcome("accepted", "agent accepted the start", request_uuid)

    async def status(self, call_id: str) -> AgentCallStatus | None:
        """The agent's view of one dial attempt (`call_id` is its attempt id); None when the agent never accepted a
        start for it (404)."""
        if not is_attempt_id(call_id):  # only our own ids become part of the agent's URL
            raise AgentProtocolError(f"{shown(call_id)} is not an attempt id ({ATTEMPT_ID_RULE}); not looked up")
        url = self.base_url + STATUS_PATH.format(call_id=call_id)
        response = await self._http.get(url, headers=await self._tokens.headers_for(url), timeout=self._timeout)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AgentProtocolError(f"agent status answered {response.status_code}: {_snippet(response)}")
        try:
            data = response.json()
            status = str(data["status"])
        except (ValueError, KeyError, TypeError):
            raise AgentProtocolError(f"agent status is not the documented JSON: {_snippet(response)!r}") from None

        def opt(name: str) -> str | None:
            value = data.get(name)
            return str(value) if value not in (None, "") else None

        duration = data.get("duration")
        return AgentCallStatus(
            call_id=call_id,
            request_uuid=opt("request_uuid"),
            call_uuid=opt("call_uuid"),
            status=status,
            duration=int(duration) if isinstance(duration, int | float) else None,
            hangup_cause=opt("hangup_cause"),
            recording_url=opt("recording_url"),
        )
