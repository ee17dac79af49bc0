"""The URLs Plivo calls back on, carrying our call id so an event finds its call even before its uuids are known."""

from __future__ import annotations

from urllib.parse import urlencode

WEBHOOK_PREFIX = "/api/webhooks/plivo"
RING_PATH = f"{WEBHOOK_PREFIX}/ring"
HANGUP_PATH = f"{WEBHOOK_PREFIX}/hangup"


def callback_urls(public_base_url: str, call_id: str) -> dict[str, str]:
    query = urlencode({"call_id": call_id})
    base = public_base_url.rstrip("/")
    return {
        "ring_url": f"{base}{RING_PATH}?{query}",
        "hangup_url": f"{base}{HANGUP_PATH}?{query}",
    }
