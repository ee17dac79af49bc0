"""Client of the voice agent: start a call, and ask what became of one (docs/contracts.md, "Agent").

Every answer to a start request is sorted by what it proves about the dial, because a blindly retried start
dials a person twice:
- accepted: the agent took it; we have Plivo's request uuid;
- retryable: the request certainly did not start a call (connection refused, 429, 503); safe to send again;
- rejected: the agent says the request is wrong (4xx); the call fails with that reason;
- unknown: the agent may have dialled (timeout, connection lost, 500/502/504): reconcile, never resend blindly;
- malformed: a 2xx whose body is not the documented JSON; the call fails with that reason.

A status lookup (`GET /calls/{call_id}`) is sorted the same way (`lookup`): `found`, `not_started` only when the
agent says so explicitly (404 with `{"status": "not_started"}`: an agent that implements the status contract), and
`no_word` for a bare 404 such as FastAPI's `{"detail": "Not Found"}` from pipecat's stock example, which has no
such route: that proves nothing about the dial (docs/contracts.md, "Proof before a dial is re-sent").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from callqueue.clients.auth import HeaderSource
from callqueue.ids import ATTEMPT_ID_RULE, is_attempt_id, shown

START_PATH = "/start"
STATUS_PATH = "/calls/{call_id}"
NOT_STARTED = "not_started"  # the status contract's explicit "no start with this id was ever received"
# An id the queue never hands out (call ids are uuid4 hex, whose version digit is 4): asking the agent about it
# tells which kind of agent it is without touching any real call.
PROBE_CALL_ID = "0" * 32
AgentKind = Literal["status_contract", "stock", "unreachable"]
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


@dataclass(frozen=True)
class StatusAnswer:
    """What a status lookup proves: the agent knows the call, says it never started it, or says nothing."""

    kind: Literal["found", "not_started", "no_word"]
    status: AgentCallStatus | None = None
    evidence: str = ""


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
    def __init__(self, base_url: str, http: httpx.AsyncClient, tokens: HeaderSource, timeout_s: float) -> None:
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
        """The agent's view of one dial attempt (`call_id` is its attempt id); None when it has none to give (any
        404: the tracker treats both kinds alike, as "not visible yet")."""
        return (await self.lookup(call_id)).status

    async def lookup(self, call_id: str) -> StatusAnswer:
        """The agent's view of one dial attempt, sorted by what it proves (module docstring)."""
        if not is_attempt_id(call_id):  # only our own ids become part of the agent's URL
            raise AgentProtocolError(f"{shown(call_id)} is not an attempt id ({ATTEMPT_ID_RULE}); not looked up")
        url = self.base_url + STATUS_PATH.format(call_id=call_id)
        response = await self._http.get(url, headers=await self._tokens.headers_for(url), timeout=self._timeout)
        if response.status_code == 404:
            return _not_found(response)
        if response.status_code != 200:
            raise AgentProtocolError(f"agent status answered {response.status_code}: {_snippet(response)}")
        try:
            data = response.json()
            status = str(data["status"])
        except (ValueError, KeyError, TypeError):
            raise AgentProtocolError(f"agent status is not the documented JSON: {_snippet(response)!r}") from None
        if status == NOT_STARTED:
            return StatusAnswer("not_started", None, f"200 {_snippet(response)}")

        def opt(name: str) -> str | None:
            value = data.get(name)
            return str(value) if value not in (None, "") else None

        duration = data.get("duration")
        known = AgentCallStatus(
            call_id=call_id,
            request_uuid=opt("request_uuid"),
            call_uuid=opt("call_uuid"),
            status=status,
            duration=int(duration) if isinstance(duration, int | float) else None,
            hangup_cause=opt("hangup_cause"),
            recording_url=opt("recording_url"),
        )
        return StatusAnswer("found", known, f"200 status={status}")

    async def kind(self) -> tuple[AgentKind, str]:
        """Which kind of agent this is, by asking about an id that was never started: (kind, evidence)."""
        try:
            answer = await self.lookup(PROBE_CALL_ID)
        except (httpx.HTTPError, AgentProtocolError) as exc:
            return "unreachable", f"GET {STATUS_PATH} failed: {type(exc).__name__}: {exc}"
        if answer.kind == "not_started":
            return "status_contract", f"GET /calls/<never-started id> answered {answer.evidence}"
        return "stock", f"GET /calls/<never-started id> answered {answer.evidence or answer.kind}: no status contract"


def _not_found(response: httpx.Response) -> StatusAnswer:
    """A 404 proves "never started" only when the agent says so in the contract's words."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("status") == NOT_STARTED:
        return StatusAnswer("not_started", None, f"404 {_snippet(response)}")
    return StatusAnswer("no_word", None, f"404 {_snippet(response)}")
