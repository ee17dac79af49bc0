"""What this process did: counters and histograms in a registry of its own (one per runtime, never global, so
several apps in one test process do not share counts). Disabled (METRICS_ENABLED=false), every call is a no-op."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector

from callqueue.metrics import catalog
from callqueue.metrics.campaigns import CampaignLabels

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ProcessMetrics:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry(auto_describe=False)
        self.campaigns = CampaignLabels()
        r = self.registry
        self._enqueued = Counter(catalog.ENQUEUED, "calls accepted by this process's API", ["campaign"], registry=r)
        self._dispatched = Counter(
            catalog.DISPATCHED, "calls this process's dispatch workers handed to the agent", ["campaign"], registry=r
        )
        self._starts = Counter(
            catalog.AGENT_STARTS,
            "agent start requests by what the answer proves about the dial",
            ["outcome"],
            registry=r,
        )
        self._start_seconds = Histogram(
            catalog.AGENT_START_SECONDS, "time for the agent to answer POST /start", buckets=LATENCY_BUCKETS, registry=r
        )
        self._outbound = Counter(
            catalog.OUTBOUND_REQUESTS,
            "outbound HTTP requests by peer, method and status code ('error': no answer)",
            ["peer", "method", "code"],
            registry=r,
        )
        self._outbound_seconds = Histogram(
            catalog.OUTBOUND_SECONDS,
            "time to the response headers of outbound HTTP requests",
            ["peer", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._results = Counter(
            catalog.RESULT_DELIVERIES, "result POSTs to the backend by outcome", ["outcome"], registry=r
        )
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self._enqueued_by_label: dict[str, Counter] = {}

    def call_enqueued(self, campaign_id: str) -> None:
        """On the enqueue hot path: one set lookup and one increment of a cached child."""
        if not self.enabled:
            return
        label = self.campaigns.label(campaign_id)
        child = self._enqueued_by_label.get(label)
        if child is None:
            child = self._enqueued_by_label[label] = self._enqueued.labels(label)
        child.inc()

    def agent_started(self, outcome: str, seconds: float, campaign_id: str | None) -> None:
        if not self.enabled:
            return
        self._starts.labels(outcome).inc()
        self._start_seconds.observe(seconds)
        if outcome == "accepted":
            self._dispatched.labels(self.campaigns.label(campaign_id or "")).inc()

    def outbound(self, peer: str, method: str, code: str, seconds: float) -> None:
        if not self.enabled:
            return
        self._outbound.labels(peer, method, code).inc()
        self._outbound_seconds.labels(peer, method).observe(seconds)

    def result_delivery(self, outcome: str) -> None:
        if self.enabled:
            self._results.labels(outcome).inc()
