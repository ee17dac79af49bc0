"""Every Redis key the service uses, in one place, so an operator can find any call with redis-cli.

Values are JSON or plain strings, never pickles. All keys share REDIS_KEY_PREFIX so deployments can share a Redis.
Each docstring states the key's bound: nothing a client sends can grow Redis without limit. Calls are admitted up
to MAX_QUEUED_CALLS queued (POST answers 429 beyond), hold at most MAX_CONCURRENT_CALLS in-flight slots, and once
finished are kept CALL_RETENTION seconds (longer only while their result is still being delivered, or while an
`unknown` call is still reconciled, at most 48 h), then expire.
"""

from __future__ import annotations

from dataclasses import dataclass

DEAD_LETTERS_KEEP = 10_000  # newest dead-lettered results kept; older ones are trimmed
REJECTED_EVENTS_KEEP = 1_000  # newest samples of refused input kept
AGENT_EVENTS_KEEP = 10_000  # approximate length the agent event stream is trimmed to (XTRIM MAXLEN ~)
RECENT_CALLS_KEPT = 200  # newest call ids on the operator page's list (ids only: the calls expire on their own)


@dataclass(frozen=True)
class Keys:
    prefix: str

    def call(self, call_id: str) -> str:
        """Hash: the call record (see CallRecord). One per call: queued, in flight, or finished within retention."""
        return f"{self.prefix}:call:{call_id}"

    def history(self, call_id: str) -> str:
        """List of JSON transitions {at, status, source, detail}, oldest first; expires with its call. Short: the
        state machine only moves forward (a requeue, at most MAX_DISPATCH_ATTEMPTS times, adds two entries)."""
        return f"{self.prefix}:call:{call_id}:history"

    def callbacks(self, call_id: str) -> str:
        """Set: digests of the signed callbacks applied to the call (what was signed: URL, parameters and nonce), so
        an exact replay is refused as long as the call exists; expires with its call. One per callback Plivo sent."""
        return f"{self.prefix}:call:{call_id}:callbacks"

    def idempotency(self, key: str) -> str:
        """String: the call id first accepted under an Idempotency-Key; expires with its call."""
        return f"{self.prefix}:idem:{key}"

    def by_request_uuid(self, request_uuid: str) -> str:
        """String: call id by Plivo request uuid; expires with its call, and within 7 days at most."""
        return f"{self.prefix}:req:{request_uuid}"

    def by_call_uuid(self, call_uuid: str) -> str:
        """String: call id by Plivo call uuid; expires with its call, and within 7 days at most."""
        return f"{self.prefix}:cuid:{call_uuid}"

    @property
    def queued(self) -> str:
        """Sorted set: queued call ids scored by acceptance order. At most MAX_QUEUED_CALLS admitted (calls put
        back after a start that certainly failed can add up to MAX_CONCURRENT_CALLS more)."""
        return f"{self.prefix}:queued"

    @property
    def sequence(self) -> str:
        """String: a counter (acceptance order)."""
        return f"{self.prefix}:seq"

    @property
    def dispatching(self) -> str:
        """Sorted set: calls a worker is starting, scored by the lease deadline (ms); expired = reconcile.
        A subset of the in-flight calls: at most MAX_CONCURRENT_CALLS."""
        return f"{self.prefix}:dispatching"

    @property
    def in_flight(self) -> str:
        """Sorted set: calls holding a concurrency slot, scored by when they took it (ms); MAX_CONCURRENT_CALLS."""
        return f"{self.prefix}:inflight"

    @property
    def pace(self) -> str:
        """Sorted set: call-start attempts of the last minute (ms), shared pacing across instances; trimmed to the
        last minute on every claim: about 60 × DISPATCH_RATE members."""
        return f"{self.prefix}:pace"

    @property
    def counts(self) -> str:
        """Hash: number of calls per status, ever (one field per status)."""
        return f"{self.prefix}:counts"

    @property
    def tracking(self) -> str:
        """Sorted set: calls being tracked, scored by when their next check is due (ms). In-flight calls, plus
        `unknown` ones for at most 48 h of reconciliation."""
        return f"{self.prefix}:tracking"

    @property
    def outbox(self) -> str:
        """Sorted set: results awaiting delivery to the backend, scored by next attempt (ms). One per final status
        of a call, for at most 72 h (then dead-lettered)."""
        return f"{self.prefix}:outbox"

    @property
    def dead_letters(self) -> str:
        """Sorted set: results given up on (`{call_id}:{status}` → time, ms), the reason in the call's
        `trk_dead_letter`; the newest DEAD_LETTERS_KEEP are kept."""
        return f"{self.prefix}:outbox:dead"

    @property
    def instances(self) -> str:
        """Sorted set: service instances (processes) scored by their last heartbeat (ms); pruned after an hour."""
        return f"{self.prefix}:instances"

    @property
    def workers(self) -> str:
        """Sorted set: dispatch workers ("instance/wN") scored by their last heartbeat (ms); pruned after an hour."""
        return f"{self.prefix}:workers"

    @property
    def agent_events(self) -> str:
        """Stream the agent writes call events to (see docs/contracts.md); the service trims it to about
        AGENT_EVENTS_KEEP entries (XTRIM MAXLEN ~)."""
        return f"{self.prefix}:agent-events"

    @property
    def plivo_budget(self) -> str:
        """Sorted set: Plivo REST requests of the current window, shared by every instance; at most PLIVO_API_LIMIT
        members, and the key expires two windows after the last request."""
        return f"{self.prefix}:plivo-budget"

    @property
    def rejected_events(self) -> str:
        """List (newest first) of JSON {at, source, kind, call_id, reason}: samples of callbacks and events refused,
        at most a few per source and minute (tracking/rejections.py); the newest REJECTED_EVENTS_KEEP are kept."""
        return f"{self.prefix}:rejected-events"

    @property
    def recent(self) -> str:
        """List (newest first) of call ids as they were queued, for the operator page; trimmed to RECENT_CALLS_KEPT
        on every enqueue. Bare ids: it keeps no call alive, and an id whose call expired is skipped when read."""
        return f"{self.prefix}:recent"

    @property
    def metrics_finished(self) -> str:
        """Hash `{status}|{campaign}` → entries into that final status (metrics/tally.py): at most the final
        statuses × (CAMPAIGN_LABELS + 1) fields (later campaigns count as `other`)."""
        return f"{self.prefix}:metrics:finished"

    @property
    def metrics_campaigns(self) -> str:
        """Sorted set: the campaigns with their own label in queue-wide metrics, scored by first outcome (ms); at
        most CAMPAIGN_LABELS members (campaign ids, not calls: nothing here refers to a call)."""
        return f"{self.prefix}:metrics:campaigns"

    @property
    def metrics_dial_to_outcome(self) -> str:
        """Hash: time-from-dial-to-outcome bucket (upper bound, s) → count, plus `sum` (s): one field per bucket of
        DIAL_TO_OUTCOME_BUCKETS, `+Inf` and `sum`."""
        return f"{self.prefix}:metrics:dial-to-outcome"

    @property
    def metrics_callbacks(self) -> str:
        """Hash `{event}|{result}` → Plivo callbacks answered, accepted or refused (metrics/callbacks.py): at most
        2 events × the CALLBACK_RESULTS and `other`. Refusals are added coalesced, one write per second per process
        at most, so forged callbacks cannot turn into a write each."""
        return f"{self.prefix}:metrics:callbacks"

    @property
    def metrics_history(self) -> str:
        """Sorted set of JSON samples (depth, in flight, pace, …) scored by sample time (ms): one per 10 s slot,
        the last hour (pruned on every sample: about 360 members)."""
        return f"{self.prefix}:metrics:history"
