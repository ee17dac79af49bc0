"""A dispatch worker: claims the next queued call under the global pace and concurrency limits, starts it.

Any number of workers run in any number of processes on one Redis: the claim is one atomic script, so a call goes
to exactly one worker, and a call whose worker dies stays leased in `dispatching` until the reconciler settles it.
Every write for the call names the claim's fencing token: a worker that resumes after its lease ran out (and the
call was claimed again) is refused and stops (StaleClaim), so it never acts on a call another now owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from callqueue.campaigns.rules import PERMANENT_FAILURE_KIND
from callqueue.clients.agent import AgentClient, StartOutcome
from callqueue.dispatch.backoff import backoff_delay
from callqueue.dispatch.crash_points import AFTER_CLAIM, AFTER_START, crash_point
from callqueue.dispatch.start_request import start_body
from callqueue.settings import Settings
from callqueue.states import CallStatus
from callqueue.store.availability import is_unavailable
from callqueue.store.calls import CallStore, StaleClaim
from callqueue.store.records import CallRecord
from callqueue.tracing import bind_call

log = logging.getLogger("callqueue.dispatch")
IDLE_POLL_S = 0.1
LEASE_MARGIN_MS = 5_000
HEARTBEAT_S = 1.0


def dispatch_lease_ms(settings: Settings) -> int:
    """How long a start attempt may take before another instance treats its outcome as unknown."""
    return settings.timing.request_timeout * 1000 + LEASE_MARGIN_MS


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))


class DispatchWorker:
    def __init__(self, store: CallStore, agent: AgentClient, settings: Settings, worker_id: str) -> None:
        self.store = store
        self.agent = agent
        self.settings = settings
        self.worker_id = worker_id
        self.lease_ms = dispatch_lease_ms(settings)

    async def run(self, stop: asyncio.Event) -> None:
        next_beat = 0.0
        while not stop.is_set():
            bind_call(None)  # dispatch() binds the call it starts; between calls, lines are about no call
            try:
                if time.monotonic() >= next_beat:  # at most once a second: `live_workers` in the queue status
                    await self.store.worker_heartbeat(self.worker_id)
                    next_beat = time.monotonic() + HEARTBEAT_S
                claim = await self.store.claim(
                    self.settings.dispatch_rate,
                    self.settings.max_concurrent_calls,
                    self.lease_ms,
                    self.worker_id,
                )
                if claim.outcome == "claimed" and claim.record:
                    await self.dispatch(claim.record, claim.token)
                elif claim.outcome == "suppressed":
                    log.warning("call %s: Call status changed: queued → suppressed (number on the suppression list)",
                                claim.call_id)  # fmt: skip
                elif claim.outcome == "wait":
                    await sleep_or_stop(stop, claim.wait_ms / 1000)
                elif claim.outcome in ("empty", "full", "blocked"):
                    await sleep_or_stop(stop, IDLE_POLL_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_unavailable(exc):
                    raise  # Redis down or full: the runtime's guard backs off and logs it once per step
                # A bug in one dispatch must not kill the worker; the lease protects the call.
                log.exception("dispatch worker %s: unexpected error; continuing", self.worker_id)
                await sleep_or_stop(stop, 1.0)

    async def dispatch(self, record: CallRecord, token: int) -> None:
        """Start the claimed call (`record`: as the claim returned it, no separate read); every write names `token`,
        the claim's fencing token."""
        try:
            await self._dispatch(record, token)
        except StaleClaim:
            return  # the store logged the refused write once, with both tokens; the call is another's now

    async def _dispatch(self, record: CallRecord, token: int) -> None:
        call_id = record.call_id
        bind_call(call_id, record.traceparent)  # log lines and the agent's /start carry the call's trace
        body = start_body(record, self.settings.public_base_url)
        attempt = record.attempts
        log.info("call %s: Call status changed: queued → dispatching (attempt %d)", call_id, attempt)
        crash_point(AFTER_CLAIM)
        while True:
            outcome = await self.agent.start(record.attempt_id, body)
            crash_point(AFTER_START)
            if outcome.kind != "retryable":
                await self._settle(record, outcome, attempt, token)
                return
            starts = attempt - record.starts_before  # start requests of this dial attempt
            if starts >= self.settings.max_dispatch_attempts:
                await self.store.transition(
                    record.attempt_id,
                    CallStatus.FAILED,
                    "dispatcher",
                    {"reason": f"agent start failed {starts} times; last: {outcome.reason}"},
                    {"reason": f"agent unavailable after {starts} attempts: {outcome.reason}"},
                    fence=token,
                )
                log.error("call %s: Call status changed: dispatching → failed (agent unavailable after %d attempts)",
                          call_id, starts)  # fmt: skip
                return
            delay = max(backoff_delay(starts), outcome.retry_after_s or 0.0)
            log.warning(
                "call %s: start attempt %d not delivered (%s); retrying in %.1fs",
                call_id,
                attempt,
                outcome.reason,
                delay,
            )
            await self.store.extend_lease(call_id, self.lease_ms + int(delay * 1000), fence=token)
            await asyncio.sleep(delay)
            while True:
                verdict, value = await self.store.pace_retry(
                    call_id, self.settings.dispatch_rate, self.lease_ms, fence=token
                )
                if verdict == "ok":
                    attempt = value
                    break
                if verdict == "lost":
                    log.warning("call %s: no longer dispatching (canceled or reconciled); stopping", call_id)
                    return
                await asyncio.sleep(value / 1000)

    async def _settle(self, record: CallRecord, outcome: StartOutcome, attempt: int, token: int) -> None:
        call_id = record.call_id
        if outcome.kind == "accepted" and outcome.request_uuid:
            before = await self.store.mark_dispatched(
                record.attempt_id,
                outcome.request_uuid,
                {"request_uuid": outcome.request_uuid, "attempt": attempt},
                self.settings.timing.initial_status_delay * 1000,
                fence=token,
            )
            if before is CallStatus.DISPATCHING:
                log.info(
                    "call %s: Call status changed: dispatching → dispatched (request_uuid=%s, attempt %d)",
                    call_id, outcome.request_uuid, attempt,
                )  # fmt: skip
            elif before is None:
                log.info("call %s: agent accepted attempt %s (request_uuid=%s) after it had already ended",
                         call_id, record.attempt_id, outcome.request_uuid)  # fmt: skip
            else:
                log.info("call %s: agent accepted it (request_uuid=%s); a callback had already moved it to %s",
                         call_id, outcome.request_uuid, before)  # fmt: skip
        elif outcome.kind in ("rejected", "malformed"):
            # The agent refused this start: redialling the same request would be refused again.
            await self.store.transition(
                record.attempt_id,
                CallStatus.FAILED,
                "dispatcher",
                {"reason": outcome.reason},
                {"reason": outcome.reason, "failure_kind": PERMANENT_FAILURE_KIND},
                fence=token,
            )
            log.error("call %s: Call status changed: dispatching → failed (%s)", call_id, outcome.reason)
        else:
            # Unknown: the agent may have dialled. Leave the lease to run out soon; the reconciler asks the agent
            # and Plivo what happened instead of dialling again.
            await self.store.extend_lease(
                call_id,
                self.settings.timing.request_timeout * 1000,
                fence=token,
                fields={"trk_dispatch_unknown": outcome.reason},
            )
            log.warning("call %s: start outcome unknown (%s); will reconcile, not redial", call_id, outcome.reason)
