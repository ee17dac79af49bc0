"""The agent and backend clients, measured: the same requests, plus what their answers meant.

Subclasses rather than edits of clients/, so dispatch and delivery code stays as it is; the runtime builds these
when metrics are on.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from callqueue.clients.agent import AgentClient, StartOutcome
from callqueue.clients.auth import IdTokens
from callqueue.clients.backend import BackendClient, DeliveryOutcome
from callqueue.metrics.process import ProcessMetrics


class MeasuredAgentClient(AgentClient):
    def __init__(
        self, base_url: str, http: httpx.AsyncClient, tokens: IdTokens, timeout_s: float, metrics: ProcessMetrics
    ) -> None:
        super().__init__(base_url, http, tokens, timeout_s)
        self.metrics = metrics

    async def start(self, call_id: str, body: dict[str, Any]) -> StartOutcome:
        started = time.perf_counter()
        outcome = await super().start(call_id, body)
        campaign = body.get("campaign_id")
        self.metrics.agent_started(outcome.kind, time.perf_counter() - started, str(campaign) if campaign else None)
        return outcome


class MeasuredBackendClient(BackendClient):
    def __init__(
        self, url: str, http: httpx.AsyncClient, tokens: IdTokens, timeout_s: float, metrics: ProcessMetrics
    ) -> None:
        super().__init__(url, http, tokens, timeout_s)
        self.metrics = metrics

    async def post_result(self, body: dict[str, Any], idempotency_key: str) -> DeliveryOutcome:
        outcome = await super().post_result(body, idempotency_key)
        self.metrics.result_delivery(outcome.kind)
        return outcome
