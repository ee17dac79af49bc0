"""Every Redis key the service uses, in one place, so an operator can find any call with redis-cli.

Values are JSON or plain strings, never pickles. All keys share REDIS_KEY_PREFIX so deployments can share a Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

RECENT_CALLS_KEPT = 200


@dataclass(frozen=True)
class Keys:
    prefix: str

    def call(self, call_id: str) -> str:
        """Hash: the call record (see CallRecord)."""
        return f"{self.prefix}:call:{call_id}"

    def history(self, call_id: str) -> str:
        """List of JSON transitions {at, status, source, detail}, oldest first."""
        return f"{self.prefix}:call:{call_id}:history"

    def idempotency(self, key: str) -> str:
        """String: the call id first accepted under an Idempotency-Key (24 h)."""
        return f"{self.prefix}:idem:{key}"

    def by_request_uuid(self, request_uuid: str) -> str:
        return f"{self.prefix}:req:{request_uuid}"

    def by_call_uuid(self, call_uuid: str) -> str:
        return f"{self.prefix}:cuid:{call_uuid}"

    @property
    def queued(self) -> str:
        """Sorted set: queued call ids scored by acceptance order."""
        return f"{self.prefix}:queued"

    @property
    def sequence(self) -> str:
        return f"{self.prefix}:seq"

    @property
    def dispatching(self) -> str:
        """Sorted set: calls a worker is starting, scored by the lease deadline (ms); expired = reconcile."""
        return f"{self.prefix}:dispatching"

    @property
    def in_flight(self) -> str:
        """Sorted set: calls holding a concurrency slot, scored by when they took it (ms)."""
        return f"{self.prefix}:inflight"

    @property
    def pace(self) -> str:
        """Sorted set: call-start attempts of the last minute (ms), shared pacing across instances."""
        return f"{self.prefix}:pace"

    @property
    def counts(self) -> str:
        """Hash: number of calls per status."""
        return f"{self.prefix}:counts"

    @property
    def tracking(self) -> str:
        """Sorted set: calls being tracked, scored by when their next check is due (ms)."""
        return f"{self.prefix}:tracking"

    @property
    def outbox(self) -> str:
        """Sorted set: results awaiting delivery to the backend, scored by next attempt (ms)."""
        return f"{self.prefix}:outbox"

    def result(self, delivery_id: str) -> str:
        """String: the JSON result body of one pending delivery."""
        return f"{self.prefix}:result:{delivery_id}"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}:outbox:dead"

    @property
    def instances(self) -> str:
        """Sorted set: service instances (processes) scored by their last heartbeat (ms)."""
        return f"{self.prefix}:instances"

    @property
    def workers(self) -> str:
        """Sorted set: dispatch workers ("instance/wN") scored by their last heartbeat (ms)."""
        return f"{self.prefix}:workers"

    @property
    def agent_events(self) -> str:
        """Stream the agent writes call events to (see docs/contracts.md)."""
        return f"{self.prefix}:agent-events"

    @property
    def plivo_budget(self) -> str:
        """Sorted set: Plivo REST requests of the current window, shared by every instance."""
        return f"{self.prefix}:plivo-budget"

    @property
    def webhook_nonces(self) -> str:
        """Prefix of one string per seen callback nonce (`{prefix}:nonces:{nonce}`, 24 h TTL): replays are refused."""
        return f"{self.prefix}:nonces"

    @property
    def rejected_events(self) -> str:
        """List (capped, newest first) of JSON {at, source, call_id, reason}: callbacks and events refused."""
        return f"{self.prefix}:rejected-events"

    @property
    def recent(self) -> str:
        """List (capped at RECENT_CALLS_KEPT, newest first) of call ids as they were queued: the operator page."""
        return f"{self.prefix}:recent"

    @property
    def metrics_finished(self) -> str:
        """Hash `{status}|{campaign}` → entries into that final status (metrics/tally.py; campaigns bounded)."""
        return f"{self.prefix}:metrics:finished"

    @property
    def metrics_campaigns(self) -> str:
        """Sorted set: the campaigns with their own label in queue-wide metrics, scored by first outcome (ms)."""
        return f"{self.prefix}:metrics:campaigns"

    @property
    def metrics_dial_to_outcome(self) -> str:
        """Hash: time-from-dial-to-outcome bucket (upper bound, s) → count, plus `sum` (s)."""
        return f"{self.prefix}:metrics:dial-to-outcome"

    @property
    def metrics_callbacks(self) -> str:
        """Hash `{event}|{result}` → Plivo callbacks answered, accepted or refused (metrics/callbacks.py)."""
        return f"{self.prefix}:metrics:callbacks"

    @property
    def metrics_history(self) -> str:
        """Sorted set of JSON samples (depth, in flight, pace, …) scored by sample time (ms), the last hour."""
        return f"{self.prefix}:metrics:history"
