"""Every metric name and its bounded labels, in one place: the service exposes them, the infra stacks chart and
alert on them (infra/monitoring.py imports this module), and a test pins the two together."""

from __future__ import annotations

PREFIX = "callqueue"
OTHER = "other"
# Campaign ids are caller-supplied: the first CAMPAIGN_LABELS distinct ones get their own label, later ones
# `other`. Per process for the per-process counters; queue-wide (the first seen by Redis) for outcomes.
CAMPAIGN_LABELS = 50

# Per-process counters and histograms (Prometheus appends `_total` to counters).
ENQUEUED = f"{PREFIX}_calls_enqueued"  # labels: campaign
DISPATCHED = f"{PREFIX}_calls_dispatched"  # labels: campaign
AGENT_STARTS = f"{PREFIX}_agent_starts"  # labels: outcome (accepted, retryable, rejected, unknown, malformed)
AGENT_START_SECONDS = f"{PREFIX}_agent_start_seconds"
OUTBOUND_REQUESTS = f"{PREFIX}_outbound_requests"  # labels: peer (agent, backend, plivo, metadata, other), method, code
OUTBOUND_SECONDS = f"{PREFIX}_outbound_request_seconds"  # labels: peer, method
RESULT_DELIVERIES = f"{PREFIX}_result_deliveries"  # labels: outcome (delivered, retry, rejected)

# Queue-wide, read from Redis at scrape time (the same value on every instance: aggregate with max, not sum).
QUEUE_DEPTH = f"{PREFIX}_queue_depth"
QUEUE_OLDEST_AGE = f"{PREFIX}_queue_oldest_age_seconds"
QUEUE_CALLS = f"{PREFIX}_queue_calls"  # labels: status (calls currently in each status)
IN_FLIGHT = f"{PREFIX}_in_flight"
IN_FLIGHT_LIMIT = f"{PREFIX}_in_flight_limit"
DISPATCH_PACE = f"{PREFIX}_dispatch_pace"  # starts/s over the last minute
DISPATCH_RATE_LIMIT = f"{PREFIX}_dispatch_rate_limit"  # DISPATCH_RATE
LIVE_INSTANCES = f"{PREFIX}_live_instances"
LIVE_WORKERS = f"{PREFIX}_live_dispatch_workers"
OUTBOX_DEPTH = f"{PREFIX}_outbox_depth"
DEAD_LETTERS = f"{PREFIX}_outbox_dead_letters"
PLIVO_BUDGET_USED = f"{PREFIX}_plivo_budget_used"  # requests in the current window, all instances
PLIVO_BUDGET_LIMIT = f"{PREFIX}_plivo_budget_limit"
STUCK_IN_FLIGHT = f"{PREFIX}_in_flight_oldest_age_seconds"  # how long the oldest in-flight call has held its slot
FINISHED = f"{PREFIX}_calls_finished"  # counter; labels: outcome, campaign
DIAL_TO_OUTCOME = f"{PREFIX}_dial_to_outcome_seconds"  # histogram (dispatch accepted → final status)
CALLBACKS = f"{PREFIX}_plivo_callbacks"  # counter; labels: event (ring, hangup), result (accepted or the refusal)
REDIS_PING = f"{PREFIX}_redis_ping_seconds"  # round trip of one PING, measured at scrape
REDIS_MEMORY_USED = f"{PREFIX}_redis_memory_used_bytes"
REDIS_MEMORY_MAX = f"{PREFIX}_redis_memory_max_bytes"  # 0 when Redis has no maxmemory

# Time from dial to outcome, seconds (the Lua tally in store/scripts.py keeps one count per bucket).
DIAL_TO_OUTCOME_BUCKETS: tuple[int, ...] = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)
# The refusals the webhook handler answers with (its `error` field); anything else is counted as `other`.
CALLBACK_RESULTS = frozenset(
    {
        "accepted",
        "signature_unverifiable",
        "signature_missing",
        "signature_invalid",
        "replayed",
        "malformed",
        "unknown_call",
    }
)
