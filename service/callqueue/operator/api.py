"""The operator page (GET /operator/) and the one JSON document it polls (GET /api/operator/overview).

Read-only, served by the queue API role only (never SERVICE_ROLE=webhooks, which is public). No build step and
no CDN: the page is three static files in this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from callqueue.api.errors import error_responses
from callqueue.ids import is_call_id
from callqueue.operator.history import read_history
from callqueue.store.calls import CallStore
from callqueue.store.records import CallRecord, iso

STATIC_DIR = Path(__file__).with_name("static")
PAGE_PATH = "/operator/"
RECENT_SHOWN = 25
router = APIRouter(tags=["operator"])


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def mask_phone(number: str) -> str:
    """Enough of the number to recognise it, not enough to dial it: +1415•••0100."""
    return number if len(number) <= 8 else f"{number[:5]}•••{number[-4:]}"


async def recent_calls(store: CallStore, limit: int = RECENT_SHOWN) -> list[CallRecord]:
    """The latest calls still kept. `{prefix}:recent` holds bare ids (it keeps no call alive): an id whose call has
    expired after CALL_RETENTION reads as nothing and is left out, and only our ids ever become keys."""
    listed = [_s(i) for i in await store.redis.lrange(store.keys.recent, 0, limit - 1)]  # type: ignore[misc]
    ids = [call_id for call_id in listed if is_call_id(call_id)]
    async with store.redis.pipeline(transaction=False) as pipe:
        for call_id in ids:
            pipe.hgetall(store.keys.call(call_id))
            pipe.lrange(store.keys.history(call_id), 0, -1)
        replies = await pipe.execute()
    records = []
    for raw, history in zip(replies[::2], replies[1::2], strict=True):
        if raw:
            records.append(CallRecord.from_redis({_s(k): _s(v) for k, v in raw.items()}, [_s(h) for h in history]))
    return records


def call_view(record: CallRecord) -> dict[str, Any]:
    return {
        "call_id": record.call_id,
        "campaign_id": record.campaign_id,
        "phone": mask_phone(record.phone_number),
        "status": record.status.value,
        "created_at": iso(record.created_at_ms),
        "trace_id": record.trace_id,
        "reason": record.reason,
        "timeline": [{"at": iso(t.at_ms), "status": t.status.value, "source": t.source} for t in record.history],
    }


@router.get("/api/operator/overview", responses=error_responses(413, 503))
async def overview(request: Request) -> dict[str, Any]:
    """Everything the page shows, in one read: queue, pace, the last hour, latest calls (those not yet expired),
    outbox. API role only; Redis unavailable: 503."""
    runtime = request.app.state.runtime
    store: CallStore = runtime.store
    status = await store.queue_status()
    dead = await store.redis.zcard(store.keys.dead_letters)
    return {
        "now": iso(store.now_ms()),
        "instance": runtime.instance_id,
        "queue": {
            "queued": status.queued,
            "oldest_queued_age_s": status.oldest_queued_age_s,
            "in_flight": status.in_flight,
            "counts": status.counts,
            "pace_per_s": status.dispatch_rate_per_s,
            "live_instances": status.live_instances,
            "live_workers": status.live_workers,
        },
        "limits": {
            "dispatch_rate": runtime.settings.dispatch_rate,
            "max_concurrent_calls": runtime.settings.max_concurrent_calls,
        },
        "history": await read_history(store),
        "calls": [call_view(r) for r in await recent_calls(store)],
        "outbox": {"pending": status.pending_results, "dead_letters": int(dead)},
        # Filled by the dispatch breaker and by campaigns once they exist; the page shows "not in this version".
        "breaker": None,
        "campaigns": None,
    }


@router.get("/operator", include_in_schema=False)
async def operator_redirect() -> RedirectResponse:
    return RedirectResponse(PAGE_PATH)


@router.get(
    PAGE_PATH,
    response_class=HTMLResponse,
    responses={
        200: {"description": "the page (static: it loads without Redis)"},
        **error_responses(413, json_route=False),
    },
)
async def operator_page() -> FileResponse:
    """The operator page (API role only); it polls GET /api/operator/overview and says when that fails."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})


static_files = StaticFiles(directory=STATIC_DIR)
