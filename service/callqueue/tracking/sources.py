"""Ask the polled sources about one call, cheapest truthful answer first: Plivo's REST API, then the agent.

The result is an `Observation`: an event to apply (if a source knew something), what the sources showed about
the call still being queued or live (the `missed` rule needs it), and the error if no source could answer.
"Not found" is never an error: before the call rang it means `initiated` (only the request uuid exists yet).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import httpx

from callqueue.clients.agent import AgentClient, AgentProtocolError
from callqueue.clients.plivo import PlivoClient, PlivoError
from callqueue.states import SETTLED, CallStatus
from callqueue.store.records import CallRecord
from callqueue.tracking.events import BadEvent, CallEvent, from_agent_status, from_cdr, from_live

log = logging.getLogger("callqueue.tracking")


@dataclass
class Observation:
    event: CallEvent | None = None
    queued: bool = False  # a source shows the call waiting in Plivo's CPS queue
    live: bool = False  # a source shows the call ringing or answered
    answered: bool = False  # at least one source gave a valid answer
    error: str | None = None  # why no source could answer (counts toward MAX_CONSECUTIVE_ERRORS)
    problems: list[str] = field(default_factory=list)  # every source error, even when another source answered


class Sources:
    def __init__(self, plivo: PlivoClient | None, agent: AgentClient) -> None:
        self.plivo = plivo
        self.agent = agent

    async def observe(self, record: CallRecord) -> Observation:
        obs = Observation()
        plivo_ok = False
        if self.plivo is not None:
            try:
                await self._plivo(record, obs)
                plivo_ok = True
            except (PlivoError, BadEvent) as exc:
                obs.error = f"Plivo: {exc}"
                obs.problems.append(obs.error)
            # PlivoRateLimited propagates: the caller backs off without counting an error.
        if obs.event is None or (obs.event.status is CallStatus.INITIATED and not obs.queued):
            # Plivo had nothing to say (no call uuid yet, or Plivo unreachable): the agent is the last fallback.
            await self._agent(record, obs)
            if plivo_ok and obs.event is not None and obs.event.source == "agent-status":
                await self._confirm_with_plivo(record, obs)
        return obs

    async def _confirm_with_plivo(self, record: CallRecord, obs: Observation) -> None:
        """The agent told us the call uuid: Plivo's own view of the call outranks the agent's summary of it."""
        assert obs.event is not None
        call_uuid = obs.event.fields.get("call_uuid")
        if record.call_uuid or not call_uuid:
            return
        agent_event, again = obs.event, Observation()
        try:
            await self._plivo(replace(record, call_uuid=str(call_uuid)), again)
        except (PlivoError, BadEvent) as exc:
            log.info("call %s: Plivo could not confirm the agent's status: %s", record.call_id, exc)
            return
        if again.event is not None:
            again.event = replace(again.event, fields={**agent_event.fields, **again.event.fields})
            obs.event, obs.live = again.event, again.live
        elif agent_event.status in SETTLED:
            # Plivo has no record yet: keep what the agent told (its call uuid), settle once Plivo confirms.
            detail = {"agent_status": agent_event.detail.get("status"), "awaiting": "Plivo detail record"}
            obs.event = CallEvent(record.attempt_id, CallStatus.INITIATED, "agent-status", detail, agent_event.fields)

    async def _plivo(self, record: CallRecord, obs: Observation) -> None:
        assert self.plivo is not None
        if record.call_uuid:
            live = await self.plivo.live_call(record.call_uuid)
            if live is not None:
                obs.event, obs.live, obs.answered = from_live(record.attempt_id, live), True, True
                return
            cdr = await self.plivo.call_detail(record.call_uuid)
            obs.answered = True
            if cdr is not None:
                obs.event = from_cdr(record.attempt_id, cdr, "plivo-api:detail-record")
            return
        if record.request_uuid:
            queued = await self.plivo.queued_call(record.request_uuid)
            obs.answered = True
            if queued is not None:
                if str(queued.get("call_status")) != "queued":
                    raise BadEvent(f"queued-call answer without call_status 'queued': {str(queued)[:200]}")
                obs.queued = True
                detail = {"observed": "queued at Plivo for a CPS slot"}
                obs.event = CallEvent(record.attempt_id, CallStatus.INITIATED, "plivo-api:queued", detail)
            else:
                detail = {"observed": "not in Plivo's queue and no call uuid yet: not visible yet, not an error"}
                obs.event = CallEvent(record.attempt_id, CallStatus.INITIATED, "plivo-api:queued", detail)

    async def _agent(self, record: CallRecord, obs: Observation) -> None:
        try:
            known = await self.agent.status(record.attempt_id)
        except (httpx.HTTPError, AgentProtocolError) as exc:
            reason = f"agent: {type(exc).__name__}: {exc}"
            obs.problems.append(reason)
            obs.error = f"{obs.error}; {reason}" if obs.error else reason
            return
        if known is None:
            # The agent has no record (yet): like Plivo's 404 before the call rang, a state, not an error.
            obs.answered = obs.answered or obs.error is None
            return
        try:
            event = from_agent_status(
                record.attempt_id,
                known.status,
                {
                    "request_uuid": known.request_uuid,
                    "call_uuid": known.call_uuid,
                    "duration": known.duration,
                    "hangup_cause": known.hangup_cause,
                    "recording_url": known.recording_url,
                },
            )
        except BadEvent as exc:
            reason = f"agent: {exc}"
            obs.problems.append(reason)
            obs.error = f"{obs.error}; {reason}" if obs.error else reason
            return
        obs.answered, obs.error = True, None
        obs.live = obs.live or event.status in (CallStatus.RINGING, CallStatus.IN_PROGRESS)
        # The agent says "queued" until the call rings; only without a call uuid can that mean Plivo's queue.
        dialled = bool(record.call_uuid or known.call_uuid)
        obs.queued = obs.queued or (known.status.strip().lower() == "queued" and not dialled)
        if obs.event is None or event.status is not CallStatus.INITIATED or event.fields:
            obs.event = event
