"""Settles dispatches whose outcome is unknown: the worker died, or the agent did not answer in time.

The agent is asked what it knows of the call (GET /calls/{call_id}). Found: the call was placed, record it. Not
found: the agent never started it, so it goes back in line — the only case where a second start is safe. The
agent unreachable: try again later; past MAX_CONSECUTIVE_ERRORS the call becomes `unknown` and is tracked, so
Plivo's records (by destination and time) can still settle it. A call is never dialled twice on a guess.
"""

from __future__ import annotations

import logging

import httpx

from callqueue.clients.agent import AgentClient, AgentProtocolError
from callqueue.dispatch.worker import dispatch_lease_ms
from callqueue.settings import Settings
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from callqueue.tracing import bind_call

log = logging.getLogger("callqueue.reconcile")


class DispatchReconciler:
    def __init__(self, store: CallStore, agent: AgentClient, settings: Settings) -> None:
        self.store = store
        self.agent = agent
        self.settings = settings

    async def run_once(self) -> int:
        """Reconcile every dispatch whose lease ran out; returns how many were looked at."""
        ids = await self.store.expired_dispatches(dispatch_lease_ms(self.settings))
        for call_id in ids:
            try:
                await self.reconcile(call_id)
            except Exception:
                log.exception("reconciling call %s failed; it stays leased and is retried", call_id)
        return len(ids)

    async def reconcile(self, call_id: str) -> None:
        record = await self.store.get(call_id)
        if record is None:
            await self.store.redis.zrem(self.store.keys.dispatching, call_id)
            return
        bind_call(call_id, record.traceparent)
        first_check_ms = self.settings.timing.initial_status_delay * 1000
        if record.status is not CallStatus.DISPATCHING:
            # A callback moved it on before the dispatch was recorded: the call exists; track it.
            await self.store.mark_dispatched(call_id, record.request_uuid or "", {"via": "callback"}, first_check_ms)
            return
        try:
            known = await self.agent.status(call_id)
        except (httpx.HTTPError, AgentProtocolError) as exc:
            errors = int(record.tracking.get("reconcile_errors", "0")) + 1
            await self.store.set_tracking_fields(call_id, reconcile_errors=errors)
            if errors < self.settings.timing.max_consecutive_errors:
                log.warning("call %s: agent status unavailable (%r); retry %d later", call_id, exc, errors)
                return
            reason = f"dispatch outcome unknown: agent status unavailable {errors} times ({exc!r})"
            await self.store.transition(
                call_id, CallStatus.UNKNOWN, "reconciler", {"reason": reason}, {"reason": reason}
            )
            await self.store.redis.zadd(self.store.keys.tracking, {call_id: self.store.now_ms() + first_check_ms})
            log.error(
                "call %s: Call status changed: dispatching → unknown (%s); Plivo's records decide", call_id, reason
            )
            return
        if known is None:
            if record.attempts >= self.settings.max_dispatch_attempts:
                reason = f"agent never started the call in {record.attempts} attempts"
                await self.store.transition(
                    call_id, CallStatus.FAILED, "reconciler", {"reason": reason}, {"reason": reason}
                )
                log.error("call %s: Call status changed: dispatching → failed (%s)", call_id, reason)
                return
            await self.store.requeue(call_id, {"reason": "agent has no record of the start: safe to start again"})
            log.info("call %s: Call status changed: dispatching → queued (the agent never received it)", call_id)
            return
        await self.store.mark_dispatched(
            call_id,
            known.request_uuid or "",
            {"via": "agent status", "agent_status": known.status},
            first_check_ms,
        )
        log.info(
            "call %s: Call status changed: dispatching → dispatched (agent confirms it: %s)", call_id, known.status
        )
