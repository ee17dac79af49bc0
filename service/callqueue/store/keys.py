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
        """List of JSON transitions {at, status, source, detail[, attempt]}, oldest first (attempt absent = 1).

        Bounded by the call: at most MAX_ATTEMPTS (10) attempts of a handful of transitions each."""
        return f"{self.prefix}:call:{call_id}:history"

    def attempts(self, call_id: str) -> str:
        """List of JSON snapshots of the call's ended attempts {attempt, attempt_id, outcome, ended_at, fields}.

        Only for calls that were redialled; at most MAX_ATTEMPTS - 1 entries."""
        return f"{self.prefix}:call:{call_id}:attempts"

    def idempotency(self, key: str) -> str:
        """String: the call id first accepted under an Idempotency-Key (24 h)."""
        return f"{self.prefix}:idem:{key}"

    def item_idempotency(self, campaign_id: str, key: str) -> str:
        """String: the call id first accepted under a bulk item's key in that campaign (24 h, like idempotency)."""
        return f"{self.prefix}:idem-item:{campaign_id}/{key}"

    def by_request_uuid(self, request_uuid: str) -> str:
        return f"{self.prefix}:req:{request_uuid}"

    def by_call_uuid(self, call_uuid: str) -> str:
        return f"{self.prefix}:cuid:{call_uuid}"

    @property
    def queued(self) -> str:
        """Sorted set: queued (ready) call ids scored by acceptance order, all campaigns."""
        return f"{self.prefix}:queued"

    @property
    def scheduled(self) -> str:
        """Sorted set: `scheduled` calls by when the planner looks at them next (ms, service clock); 0 = at once."""
        return f"{self.prefix}:scheduled"

    def campaign(self, campaign_id: str) -> str:
        """Hash: a campaign's settings (JSON and the flat fields scripts read), state, pause reason, and counts:
        `total`, `n:{status}` (calls per current status), `o:{attempt}:{outcome}` (outcomes per attempt).
        Expires `retention_s` after its last call ends (CAMPAIGN_RETENTION); a new call brings it back."""
        return f"{self.prefix}:campaign:{campaign_id}"

    def campaign_queued(self, campaign_id: str) -> str:
        """Sorted set: the campaign's ready calls by acceptance order (a subset of `queued`)."""
        return f"{self.prefix}:campaign:{campaign_id}:queued"

    def campaign_scheduled(self, campaign_id: str) -> str:
        """Sorted set: the campaign's `scheduled` calls by due time (0 while being planned)."""
        return f"{self.prefix}:campaign:{campaign_id}:scheduled"

    def campaign_in_flight(self, campaign_id: str) -> str:
        """Sorted set: the campaign's calls holding a concurrency slot (at most MAX_CONCURRENT_CALLS)."""
        return f"{self.prefix}:campaign:{campaign_id}:inflight"

    def campaign_pace(self, campaign_id: str) -> str:
        """Sorted set: the campaign's start requests of the last minute (ms): its rate share and current pace."""
        return f"{self.prefix}:campaign:{campaign_id}:pace"

    def campaign_recent(self, campaign_id: str) -> str:
        """List: the circuit breaker's window, '1' (failed) or '0' per dialled attempt, newest first, capped."""
        return f"{self.prefix}:campaign:{campaign_id}:recent"

    @property
    def campaigns(self) -> str:
        """Sorted set: campaign ids by their last new call or settings (ms); the planner drops expired ones."""
        return f"{self.prefix}:campaigns"

    @property
    def campaigns_ready(self) -> str:
        """Sorted set: campaigns with ready calls, scored by their turn (stride scheduling, see CHOOSE_NEXT)."""
        return f"{self.prefix}:campaigns:ready"

    @property
    def campaigns_vtime(self) -> str:
        """String: the turn of the last campaign served; a campaign joining the rotation starts there."""
        return f"{self.prefix}:campaigns:vtime"

    @property
    def campaigns_canceling(self) -> str:
        """Set: canceled campaigns whose queued or scheduled calls are still being ended (the planner finishes)."""
        return f"{self.prefix}:campaigns:canceling"

    @property
    def suppressed(self) -> str:
        """Hash: E.164 number → JSON {reason, added_at}: numbers never dialled (opt-outs). Operator-sized."""
        return f"{self.prefix}:suppressed"

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
