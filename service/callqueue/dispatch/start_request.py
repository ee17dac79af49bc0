"""The body of the agent's POST /start: pipecat's shape plus our ids, config and callback URLs."""

from __future__ import annotations

from typing import Any

from callqueue.callback_urls import callback_urls
from callqueue.store.records import CallRecord


def start_body(record: CallRecord, public_base_url: str) -> dict[str, Any]:
    """`call_id` is the attempt id: the call id for a first attempt, `{call_id}.{n}` for a redial (its own
    Idempotency-Key, status lookup and callback URLs, so a redial is a new dial for the agent)."""
    body: dict[str, Any] = {
        "dialout_settings": {"phone_number": record.phone_number},
        "call_id": record.attempt_id,
        "campaign_id": record.campaign_id,
        "call_config": record.call_config,
        "callbacks": callback_urls(public_base_url, record.attempt_id),
    }
    if record.attempt > 1:
        body["attempt"] = record.attempt
    return body
