"""The admission limit's answer: 429 with Retry-After when MAX_QUEUED_CALLS calls wait to be dialled.

What the limit counts is what Redis holds for calls not dialled yet: `queued` (ready) and `scheduled` (waiting for
calling hours, a not_before, or a redial) together. Single enqueue and bulk enqueue are admitted by the same count,
atomically with their writes (store/scripts.py ENQUEUE, store/campaign_scripts.py ENQUEUE_BATCH).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi.responses import JSONResponse

from callqueue.api.errors import error_response
from callqueue.settings import Settings


def queue_full_retry_after_s(settings: Settings) -> int:
    """How long a refused producer should wait: the dispatcher's time to start 1% of MAX_QUEUED_CALLS, 1–60 s."""
    return int(min(60, max(1, math.ceil(settings.max_queued_calls / 100 / settings.dispatch_rate))))


def queue_full_response(settings: Settings, waiting: int, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    """429: nothing of the request was written; `errors` name the refused items of a bulk request."""
    retry_after = queue_full_retry_after_s(settings)
    message = (
        f"{waiting} calls wait to be dialled, queued or scheduled (MAX_QUEUED_CALLS={settings.max_queued_calls}):"
        f" nothing was written; retry after {retry_after} s"
    )
    return error_response(429, "queue_full", message, errors, headers={"Retry-After": str(retry_after)})
