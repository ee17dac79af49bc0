"""Every Redis key the service uses, in one place, so an operator can find any call with redis-cli.

Values are JSON or plain strings, never pickles. All keys share REDIS_KEY_PREFIX so deployments can share a Redis.
Each docstring states the key's bound: nothing a client sends can grow Redis without limit. Calls are admitted up
to MAX_QUEUED_CALLS waiting to be dialled (queued or scheduled; POST answers 429 beyond, bulk enqueue per item or
for the whole request), hold at most MAX_CONCURRENT_CALLS in-flight slots, and once final (the last attempt ended
with no redial, or canceled, suppressed) are kept CALL_RETENTION seconds with all their keys (longer only while a
result is still being delivered, or while an `unknown` call is still reconciled, at most 48 h), then expire. A
call whose next attempt is scheduled is not final and does not expire. Campaigns are kept CAMPAIGN_RETENTION after
their last waiting or in-flight call (their counts outlive the calls they count).
"""

from __future__ import annotations

from dataclasses import dataclass

DEAD_LETTERS_KEEP = 10_000  # newest dead-lettered results kept; older ones are trimmed
REJECTED_EVENTS_KEEP = 1_000  # newest samples of refused input kept
AGENT_EVENTS_KEEP = 10_000  # approximate length the agent event stream is trimmed to (XTRIM MAXLEN ~)
RECENT_CALLS_KEPT = 200  # newest call ids on the operator page's list (ids only: the calls expire on their own)
# How far that list may grow past RECENT_CALLS_KEPT before ENQUEUE trims it back: one LTRIM per 64 calls, not one
# per call (its reader only reads its head).
RECENT_TRIM_SLACK = 64


@dataclass(frozen=True)
class Keys:
    prefix: str

    def call(self, call_id: str) -> str:
        """Hash: the call record (see CallRecord). One per call: queued, in flight, or finished within retention."""
        return f"{self.prefix}:call:{call_id}"

    def history(self, call_id: str) -> str:
        """List of JSON transitions {at, status, source, detail[, attempt]}, oldest first (attempt absent = 1);
        expires with its call. Short: the state machine only moves forward (a requeue, at most MAX_DISPATCH_ATTEMPTS
        times, adds two entries), and a call has at most MAX_ATTEMPTS (10) dial attempts."""
        return f"{self.prefix}:call:{call_id}:history"

    def attempts(self, call_id: str) -> str:
        """List of JSON snapshots of the call's ended attempts {attempt, attempt_id, outcome, ended_at, fields}.

        Only for calls that were redialled; at most MAX_ATTEMPTS - 1 entries; expires with its call."""
        return f"{self.prefix}:call:{call_id}:attempts"

    def callbacks(self, call_id: str) -> str:
        """Set: digests of the signed callbacks applied to the call, any of its attempts (what was signed: URL,
        parameters and nonce), so an exact replay is refused as long as the call exists; expires with its call.
        One per callback Plivo sent."""
        return f"{self.prefix}:call:{call_id}:callbacks"

    def idempotency(self, key: str) -> str:
        """String: the call id first accepted under an Idempotency-Key; expires with its call."""
        return f"{self.prefix}:idem:{key}"

    def item_idempotency(self, campaign_id: str, key: str) -> str:
        """String: the call id first accepted under a bulk item's key in that campaign; expires with its call."""
        return f"{self.prefix}:idem-item:{campaign_id}/{key}"

    def by_request_uuid(self, request_uuid: str) -> str:
        """String: the attempt id (store/attempts.py) by Plivo request uuid; expires with its call, and within 7
        days at most."""
        return f"{self.prefix}:req:{request_uuid}"

    def by_call_uuid(self, call_uuid: str) -> str:
        """String: the attempt id by Plivo call uuid; expires with its call, and within 7 days at most."""
        return f"{self.prefix}:cuid:{call_uuid}"

    @property
    def queued(self) -> str:
        """Sorted set: queued (ready) call ids scored by acceptance order, all campaigns. With `scheduled`, at most
        MAX_QUEUED_CALLS admitted (calls put back after a start that certainly failed can add up to
        MAX_CONCURRENT_CALLS more, and redials of calls already admitted wait in `scheduled` beyond it)."""
        return f"{self.prefix}:queued"

    @property
    def scheduled(self) -> str:
        """Sorted set: `scheduled` calls by when the planner looks at them next (ms, service clock); 0 = at once."""
        return f"{self.prefix}:scheduled"

    def campaign(self, campaign_id: str) -> str:
        """Hash: a campaign's settings (JSON and the flat fields scripts read), state, pause reason, and counts:
        `n:{status}` (calls per current status; their sum is its total), `o:{attempt}:{outcome}` (outcomes per
        attempt); `seen_s`, the second its score in `campaigns` was last set by a new call; `pace_trimmed_s`, the
        second a claim last trimmed its pace and the global one (scripts.add_starts). Expires `retention_s`
        after its last call ends (CAMPAIGN_RETENTION); a new call brings it back."""
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
        """Sorted set: the campaign's start requests by time (ms), read for the last minute: its rate share and
        current pace. Trimmed as `pace` is."""
        return f"{self.prefix}:campaign:{campaign_id}:pace"

    def campaign_recent(self, campaign_id: str) -> str:
        """List: the circuit breaker's window, '1' (failed) or '0' per dialled attempt, newest first, capped."""
        return f"{self.prefix}:campaign:{campaign_id}:recent"

    @property
    def campaigns(self) -> str:
        """Sorted set: campaign ids by their last new call or settings (ms; new calls move it at most once a
        second); the planner drops expired ones."""
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
        """Sorted set: call-start attempts by time (ms), shared pacing across instances; trimmed to the last minute
        when a start is added, at most once a second per campaign (not on every look: readers count a time range):
        once a start is added, none older than 61 s: about 61 × DISPATCH_RATE members at most (scripts.add_starts)."""
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
    def live_sweep(self) -> str:
        """String with an expiry: the Redis time (ms) of the last sweep of Plivo's live calls
        (tracking/live_sweep.py), so the instances share one sweep per period."""
        return f"{self.prefix}:live-sweep"

    @property
    def live_sweep_seen(self) -> str:
        """Sorted set: live call uuids the sweep has looked up, scored by when (ms); each is looked up again only
        after an hour (30 s when its request uuid was not ours yet)."""
        return f"{self.prefix}:live-sweep:seen"

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
        once it holds RECENT_TRIM_SLACK more. Bare ids: it keeps no call alive, and an id whose call expired is
        skipped when read."""
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
