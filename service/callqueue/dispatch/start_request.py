"""The body of the agent's POST /start: pipecat's shape plus our ids, config and callback URLs."""

from __future__ import annotations

from typing import Any

from callqueue.callback_urls import callback_urls
from callqueue.store.records import CallRecord


def start_body(record: CallRecord, public_base_url: str) -> dict[str, Any]:
    return {
        "dialout_settings": {"phone_number": record.phone_number},
        "call_id": record.call_id,
        "campaign_id": record.campaign_id,
        "call_config": record.call_config,
        "callbacks": callback_urls(public_base_url, record.call_id),
    }
