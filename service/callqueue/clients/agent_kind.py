"""Which kind of agent the queue talks to, and what that means for retries and call outcomes, in words an operator
can act on: shown by `GET /api/health` and `callqueue-diagnose` (docs/contracts.md, "Proof before a dial is re-sent").

The kind is learned by asking the agent's status route about an id that was never started (`AgentClient.kind`):
an explicit `not_started` means it implements the status contract; a bare 404 (FastAPI's `{"detail": "Not
Found"}`, pipecat's stock example) means it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from callqueue.clients.agent import AgentClient, AgentKind
from callqueue.settings import Settings

KIND_TTL_S = 60.0  # a redeployed agent is noticed within a minute
PROBE_WAIT_S = 1.0  # the longest a health check waits for the agent (only before the first answer)

ADD_CALLBACKS = (
    "make the agent pass the `callbacks.ring_url` and `callbacks.hangup_url` of each POST /start body to Plivo's"
    ' create-call as `ring_url` and `hangup_url` (docs/contracts.md, "Agent"); outcomes then arrive within'
    " seconds instead of at the next poll"
)


def describe(kind: AgentKind | str, evidence: str, settings: Settings) -> dict[str, Any]:
    """The agent's kind with what it means for re-sent starts, callbacks and outcomes."""
    plivo = bool(settings.plivo_auth_id and settings.plivo_auth_token)
    settle, timeout = settings.dial_proof_settle, settings.dial_proof_timeout
    body: dict[str, Any] = {"url": settings.agent_server_url, "kind": kind, "evidence": evidence}
    if kind == "status_contract":
        body["retries"] = (
            "a start whose answer was lost is re-sent only when the agent answers not_started and Plivo shows no"
            " call to the number; a call the agent or Plivo knows is adopted, never dialled again"
            + ("" if plivo else " (no Plivo credentials: the agent's word alone decides)")
        )
        body["callbacks"] = "the status contract includes passing the queue's ring/hangup URLs to Plivo"
    elif kind == "stock":
        body["retries"] = (
            f"the agent's 404 proves nothing: a start whose answer was lost is re-sent only when Plivo shows no call"
            f" to the number in two searches {settle} s apart (DIAL_PROOF_SETTLE); otherwise it waits up to"
            f" {timeout} s (DIAL_PROOF_TIMEOUT) and becomes unknown, never re-dialled"
            if plivo
            else f"no Plivo credentials and no status contract: nothing can prove a lost start was never dialled, so"
            f" such a call becomes unknown after {timeout} s (DIAL_PROOF_TIMEOUT) and is never re-dialled; set"
            " PLIVO_AUTH_ID/PLIVO_AUTH_TOKEN"
        )
        body["callbacks"] = (
            "not configured: pipecat's stock example passes only answer_url to Plivo, so no ring or hang-up callback"
            " reaches the queue; outcomes come from Plivo polling (every STATUS_CHECK_INTERVAL)"
        )
        body["how_to_add_callbacks"] = ADD_CALLBACKS
    else:
        body["retries"] = "not known until the agent answers; no start is re-sent without proof in any case"
    return body


class AgentKindCache:
    """The last probe's answer, refreshed in the background at most every KIND_TTL_S: a health check waits at most
    PROBE_WAIT_S, once, for the very first probe, and never on a slow agent after that."""

    def __init__(self) -> None:
        self._known: tuple[str, str, float] | None = None
        self._task: asyncio.Task[None] | None = None

    async def get(self, agent: AgentClient) -> tuple[str, str]:
        stale = self._known is None or time.monotonic() - self._known[2] > KIND_TTL_S
        if stale and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._probe(agent))
        if self._known is None and self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), PROBE_WAIT_S)
        if self._known is None:
            return "probing", f"the agent's status route has not answered within {PROBE_WAIT_S:g} s yet"
        return self._known[0], self._known[1]

    async def _probe(self, agent: AgentClient) -> None:
        try:
            kind, evidence = await agent.kind()
            self._known = (kind, evidence, time.monotonic())
        finally:
            self._task = None
