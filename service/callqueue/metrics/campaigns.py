"""Bounded campaign labels for per-process counters: the first CAMPAIGN_LABELS campaigns this process sees keep
their id, every later one is counted as `other`, so a caller inventing campaign ids cannot grow the series."""

from __future__ import annotations

from callqueue.metrics.catalog import CAMPAIGN_LABELS, OTHER


class CampaignLabels:
    def __init__(self, limit: int = CAMPAIGN_LABELS) -> None:
        self.limit = limit
        self._named: set[str] = set()

    def label(self, campaign_id: str) -> str:
        if campaign_id in self._named:
            return campaign_id
        if len(self._named) < self.limit:
            self._named.add(campaign_id)
            return campaign_id
        return OTHER
