"""Campaigns: calling hours, redial by outcome, fair sharing, pause/resume/cancel, a circuit breaker, suppression,
bulk enqueue and campaign status, all kept in Redis beside the calls (docs/campaigns.md)."""
