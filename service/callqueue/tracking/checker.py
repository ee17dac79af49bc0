"""One status check of one tracked call: decide, apply, and schedule the next check. Stateless between checks.

Everything it needs is on the call record (status, uuids, `trk_*` bookkeeping), so any instance can run the
next check of any call. Rules, in order:
- settled: drop from tracking. `unknown`: reconcile from Plivo's records at a slow cadence.
- events arrived recently (callbacks or the agent stream): no poll; the next safety-net check moves out.
- otherwise poll (sources.py). Rate limited: back off as told, not an error. No source answered: count an
  error; at MAX_CONSECUTIVE_ERRORS the call becomes `unknown` with the reason and stays tracked slowly.
- `missed`: the call never rang within AUTO_MISS_TIMEOUT, counted from dispatch, from the last time Plivo
  showed it waiting in its CPS queue (a queued call is waiting its turn, not missed), or from the check that
  learned its call uuid (Plivo is dialling it: a later answer settles it); a source answered and none shows it
  queued or live, and Plivo has no detail record of it. Then it is stopped at Plivo: hung up by call uuid once
  one is known, else its request deleted.
- waiting in Plivo's queue longer than PLIVO_QUEUE_TIMEOUT (from the first check that saw it there): its request
  is deleted at Plivo and it ends `missed` with the reason, so it neither holds a slot nor rings later.

Every decision after the observation reads the record as the observation left it (re-read once it was applied),
never the one read before it: a call uuid learned in this very check is used at once.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from callqueue.clients.plivo import PlivoClient, PlivoError, PlivoRateLimited
from callqueue.states import SETTLED, CallStatus
from callqueue.store.calls import CallStore
from callqueue.store.records import CallRecord
from callqueue.tracing import bind_call
from callqueue.tracking.apply import apply_event
from callqueue.tracking.cadence import UNKNOWN_GIVE_UP_MS, Cadence
from callqueue.tracking.events import CallEvent
from callqueue.tracking.settle import find_live, outcome_from_records
from callqueue.tracking.sources import Sources

log = logging.getLogger("callqueue.tracking")
NEVER_RANG = frozenset({CallStatus.DISPATCHED, CallStatus.INITIATED})


NEWS_FIELDS = ("call_uuid", "request_uuid", "duration", "hangup_cause", "recording_url")


def is_news(record: CallRecord, event: CallEvent) -> bool:
    """Whether applying `event` could change the record (the steady-state poll of a talking call does not)."""
    if event.status is not record.status:
        return True
    return any(str(getattr(record, name)) != str(event.fields[name]) for name in NEWS_FIELDS if name in event.fields)


class Checker:
    def __init__(self, store: CallStore, sources: Sources, plivo: PlivoClient | None, cadence: Cadence) -> None:
        self.store = store
        self.sources = sources
        self.plivo = plivo
        self.cadence = cadence
        self.max_errors = cadence.timing.max_consecutive_errors

    async def check(self, call_id: str) -> None:
        record = await self.store.get(call_id)
        if record is None or record.status in SETTLED:
            await self.store.redis.zrem(self.store.keys.tracking, call_id)
            return
        bind_call(call_id, record.traceparent)  # each check runs in its own task: the binding ends with it
        if record.status is CallStatus.UNKNOWN:
            await self._reconcile_unknown(record)
            return
        if record.status is CallStatus.SCHEDULED:
            # Its attempt ended and the next one waits: nothing to track until that one is dialled.
            await self.store.redis.zrem(self.store.keys.tracking, call_id)
            return
        if record.status in (CallStatus.QUEUED, CallStatus.DISPATCHING):
            # A callback outran the dispatch record; the dispatcher (or its reconciler) finishes that first.
            await self.store.reschedule(call_id, self.cadence.poll_ms)
            return
        now = self.store.now_ms()
        last_event = int(record.tracking.get("last_event_ms", "0"))
        silent = int(record.tracking.get("silent_checks", "0"))
        if last_event and now - last_event < self.cadence.quiet_ms(silent) - self.cadence.poll_ms:
            await self.store.reschedule(call_id, last_event + self.cadence.quiet_ms(silent) - now)
            return
        try:
            obs = await self.sources.observe(record)
        except PlivoRateLimited as exc:
            log.info("call %s: Plivo rate limit (%s); next check in %.1fs", call_id, exc, exc.retry_after_s)
            await self.store.reschedule(call_id, self.cadence.rate_limited_ms(exc.retry_after_s))
            return
        if not obs.answered:
            await self._count_error(record, obs.error or "no source answered")
            return
        news = obs.event is not None and is_news(record, obs.event)
        applied = await apply_event(self.store, obs.event) if news and obs.event is not None else None
        # From here on, the record as the observation left it (a uuid learned now, a status moved on).
        current = (await self.store.get(call_id) or record) if applied is not None else record
        # A safety-net poll that finds news means events are not reaching us: back to polling every interval.
        events_flowing = bool(last_event) and not (applied and applied.changed)
        fields: dict[str, str | int] = {}
        if record.tracking.get("consecutive_errors", "0") != "0":
            fields["consecutive_errors"] = 0
        if obs.queued:
            fields["queued_seen_ms"] = now
            if "queued_since_ms" not in current.tracking:
                fields["queued_since_ms"] = now
        if current.call_uuid and not record.call_uuid:
            fields["uuid_seen_ms"] = now  # Plivo is dialling it: the miss deadline counts from here
        if obs.problems:
            fields["last_source_problem"] = "; ".join(obs.problems)[:500]
        if events_flowing:
            fields["silent_checks"] = silent + 1
        elif last_event:
            fields["last_event_ms"] = 0
        if fields:
            await self.store.set_tracking_fields(call_id, **fields)
            current = replace(current, tracking={**current.tracking, **{k: str(v) for k, v in fields.items()}})
        if current.status in SETTLED:
            return
        too_long = obs.queued and current.status in NEVER_RANG and self._queued_too_long(current, now)
        if too_long and await self._give_up_queued(current, now):
            return
        waiting = current.status in NEVER_RANG and not obs.queued and not obs.live
        if waiting and self._past_miss_deadline(current, now) and await self._settle_missed(current):
            return
        await self.store.reschedule(
            call_id, self.cadence.quiet_ms(silent + 1) if events_flowing else self.cadence.poll_ms
        )

    def _past_miss_deadline(self, record: CallRecord, now: int) -> bool:
        started = max(
            record.dispatched_at_ms or record.created_at_ms,
            int(record.tracking.get("queued_seen_ms", "0")),
            int(record.tracking.get("uuid_seen_ms", "0")),
        )
        return now - started >= self.cadence.auto_miss_ms

    def _queued_too_long(self, record: CallRecord, now: int) -> bool:
        since = int(record.tracking.get("queued_since_ms", str(now)))
        return now - since >= self.cadence.timing.plivo_queue_timeout * 1000

    async def _give_up_queued(self, record: CallRecord, now: int) -> bool:
        """Plivo kept it queued past PLIVO_QUEUE_TIMEOUT: delete the request, then `missed`. True when settled.

        Deleted first: a call is `missed` only once it can no longer ring. Plivo not finding the request means it
        left the queue meanwhile (it is dialling): the next check follows it. Without Plivo credentials or a
        request uuid nothing can be deleted, and it stays tracked (it may still ring)."""
        limit = self.cadence.timing.plivo_queue_timeout
        if self.plivo is None or not record.request_uuid:
            log.warning("call %s: queued at Plivo past PLIVO_QUEUE_TIMEOUT=%ds but no Plivo credentials or request"
                        " uuid to delete it with; still tracked", record.call_id, limit)  # fmt: skip
            return False
        waited = (now - int(record.tracking.get("queued_since_ms", str(now)))) // 1000
        try:
            deleted = await self.plivo.cancel_request(record.request_uuid)
        except (PlivoError, PlivoRateLimited) as exc:
            log.warning("call %s: queued at Plivo past PLIVO_QUEUE_TIMEOUT=%ds; deleting it failed (%s), retried at"
                        " the next check", record.call_id, limit, exc)  # fmt: skip
            return False
        if not deleted:
            log.info("call %s: queued past PLIVO_QUEUE_TIMEOUT, but Plivo no longer has it queued: following it",
                     record.call_id)  # fmt: skip
            return False
        reason = (
            f"waited {waited}s in Plivo's queue, past PLIVO_QUEUE_TIMEOUT={limit}s: request {record.request_uuid}"
            " deleted at Plivo, it will not ring"
        )
        await self._mark_missed(record, reason)
        return True

    async def _mark_missed(self, record: CallRecord, reason: str) -> bool:
        """The one `missed` transition of the tracker, logged the seed's way; True when this check made it."""
        changed, _ = await self.store.transition(
            record.attempt_id, CallStatus.MISSED, "tracker", {"reason": reason}, {"reason": reason}
        )
        if changed:
            log.warning("call %s: Call status changed: %s → missed (%s)", record.call_id, record.status, reason)
        return changed

    async def _settle_missed(self, record: CallRecord) -> bool:
        """Past the deadline and not queued or live: Plivo's records first, else `missed`. True when settled."""
        if self.plivo is not None:
            try:
                event = await outcome_from_records(self.store, self.plivo, record)
                event = event or await find_live(self.store, self.plivo, record)
            except (PlivoError, PlivoRateLimited) as exc:
                log.warning("call %s: past the miss deadline but Plivo records unavailable (%s)", record.call_id, exc)
                return False
            if event is not None:
                await apply_event(self.store, event)
                return event.status in SETTLED
        reason = (
            f"no ringing or answer within AUTO_MISS_TIMEOUT={self.cadence.timing.auto_miss_timeout}s"
            " and no source shows the call queued or live"
        )
        if await self._mark_missed(record, reason):
            await self._cancel_at_plivo(record)
        return True

    async def _cancel_at_plivo(self, record: CallRecord) -> None:
        """So a missed call does not ring someone later; it is recorded as missed either way."""
        if self.plivo is None:
            return
        try:
            done = await self.plivo.stop(call_uuid=record.call_uuid, request_uuid=record.request_uuid)
            if done is None:
                return
        except (PlivoError, PlivoRateLimited) as exc:
            log.warning("call %s: missed, but cancelling it at Plivo failed: %s", record.call_id, exc)
            return
        log.info("call %s: missed; cancel at Plivo %s", record.call_id, "done" if done else "found nothing live")

    async def _count_error(self, record: CallRecord, reason: str) -> None:
        errors = int(record.tracking.get("consecutive_errors", "0")) + 1
        await self.store.set_tracking_fields(record.call_id, consecutive_errors=errors, last_error=reason[:500])
        if errors < self.max_errors:
            log.warning("call %s: status check error %d/%d: %s", record.call_id, errors, self.max_errors, reason)
            await self.store.reschedule(record.call_id, self.cadence.poll_ms)
            return
        why = f"status unavailable in {errors} consecutive checks; last: {reason}"
        changed, before = await self.store.transition(
            record.attempt_id, CallStatus.UNKNOWN, "tracker", {"reason": why}, {"reason": why}
        )
        if changed:
            log.error("call %s: Call status changed: %s → unknown (%s)", record.call_id, before, why)
            await self.store.set_tracking_fields(record.call_id, unknown_since_ms=self.store.now_ms(), unknown_checks=0)
        await self.store.reschedule(record.call_id, self.cadence.unknown_ms(0))

    async def _reconcile_unknown(self, record: CallRecord) -> None:
        attempts = int(record.tracking.get("unknown_checks", "0")) + 1
        await self.store.set_tracking_fields(record.call_id, unknown_checks=attempts)
        event = None
        try:
            if self.plivo is not None:
                event = await outcome_from_records(self.store, self.plivo, record)
            if event is None:
                obs = await self.sources.observe(record)
                if obs.event is not None and obs.event.status in SETTLED:
                    event = obs.event
        except PlivoRateLimited as exc:
            await self.store.reschedule(record.call_id, self.cadence.rate_limited_ms(exc.retry_after_s))
            return
        except PlivoError as exc:
            log.warning("call %s: unknown; reconciliation attempt %d failed: %s", record.call_id, attempts, exc)
        if event is not None:
            await apply_event(self.store, event)
            return
        since = int(record.tracking.get("unknown_since_ms", str(record.updated_at_ms)))
        if self.store.now_ms() - since > UNKNOWN_GIVE_UP_MS:
            log.error("call %s: still unknown after %d attempts; reconciliation stops", record.call_id, attempts)
            await self.store.redis.zrem(self.store.keys.tracking, record.call_id)
            return
        await self.store.reschedule(record.call_id, self.cadence.unknown_ms(attempts))
