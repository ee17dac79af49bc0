"""/api/campaigns: settings, bulk enqueue, pause/resume/cancel, and status of a campaign (docs/campaigns.md)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from callqueue.api.deps import RuntimeDep
from callqueue.campaigns.bulk import MAX_ITEMS, BulkRequestError, Mode, enqueue_bulk, parse_csv, parse_json
from callqueue.campaigns.models import CampaignSettings
from callqueue.campaigns.status import campaign_status
from callqueue.campaigns.store import CampaignStore
from callqueue.store.calls import IDEMPOTENCY_TTL_S, CampaignCanceled
from callqueue.tracing import from_headers

log = logging.getLogger("callqueue.campaigns")
router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])
CAMPAIGN_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
CampaignId = Annotated[str, Path(min_length=1, max_length=128, pattern=CAMPAIGN_ID)]
BULK_PATH = r"^/api/campaigns/[^/]+/calls$"  # MAX_BULK_BODY_BYTES applies here (api/body_limit.py)


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500, description="shown in the campaign's status and logs")


def _campaigns(runtime: RuntimeDep) -> CampaignStore:
    return CampaignStore(runtime.store)


def _missing(campaign_id: str) -> HTTPException:
    return HTTPException(
        404, f"campaign {campaign_id!r} is unknown: PUT its settings or queue a call with this campaign_id first"
    )


@router.get("")
async def list_campaigns(runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """The most recently active campaigns (a new call or settings), newest first, with state and counts."""
    return {"campaigns": await _campaigns(runtime).summaries(limit)}


@router.put("/{campaign_id}")
async def put_campaign(campaign_id: CampaignId, settings: CampaignSettings, runtime: RuntimeDep) -> dict[str, Any]:
    """Create or replace a campaign's settings (fields left out take their defaults). Calls already waiting are
    planned again under new calling hours; a new retry policy applies to attempts that end from now on."""
    view = await _campaigns(runtime).put_settings(campaign_id, settings, runtime.settings.campaign_retention)
    log.info("campaign %s: settings replaced (%s)", campaign_id, settings.model_dump_json())
    return {"campaign_id": campaign_id, "state": view.state, "settings": view.settings.model_dump()}


@router.get("/{campaign_id}")
async def get_campaign(campaign_id: CampaignId, runtime: RuntimeDep) -> dict[str, Any]:
    """Counts per status and per attempt, progress, pace, ETA at that pace, next due call, breaker state."""
    campaigns = _campaigns(runtime)
    now = runtime.store.clock.now_ms()
    raw = await campaigns.raw_status(campaign_id, now)
    if raw is None:
        raise _missing(campaign_id)
    view = await campaigns.view(campaign_id)
    status = campaign_status(view, raw, now)
    status["limits"] = {
        "dispatch_rate": runtime.settings.dispatch_rate,
        "max_concurrent_calls": runtime.settings.max_concurrent_calls,
    }
    return status


_BULK_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["calls"],
                    "properties": {
                        "calls": {
                            "type": "array",
                            "maxItems": MAX_ITEMS,
                            "items": {
                                "type": "object",
                                "required": ["phone_number"],
                                "properties": {
                                    "phone_number": {"type": "string", "example": "+14155550100"},
                                    "call_config": {"type": "object", "description": "merged over the request's"},
                                    "key": {"type": "string", "description": "idempotency key of the item"},
                                    "time_zone": {"type": "string", "example": "America/Chicago"},
                                    "not_before": {"type": "string", "format": "date-time"},
                                    "retry": {"$ref": "#/components/schemas/RetryPolicy"},
                                },
                            },
                        },
                        "call_config": {"type": "object", "description": "defaults for every item's call_config"},
                    },
                }
            },
            "text/csv": {
                "schema": {"type": "string", "description": "header row: phone_number, key, time_zone, not_before, …"}
            },
        },
    }
}


@router.post(
    "/{campaign_id}/calls",
    openapi_extra=_BULK_OPENAPI,
    responses={
        200: {"description": "per item: call_id and status, a replay of its key, or its errors"},
        409: {"description": "the campaign was canceled"},
        413: {"description": "more than 10,000 calls, or MAX_BULK_BODY_BYTES exceeded"},
    },
)
async def bulk_enqueue(
    campaign_id: CampaignId,
    request: Request,
    runtime: RuntimeDep,
    mode: Annotated[Mode, Query(description="per_item (default) or all_or_nothing")] = "per_item",
    flow_name: Annotated[str | None, Query(description="CSV: call_config.flow_name of every row")] = None,
) -> JSONResponse:
    """Queue up to 10,000 calls of one campaign. Per item: a `key` makes it idempotent (a repeat returns the first
    call), errors name the item and the rule. mode=all_or_nothing writes nothing if any item is invalid."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    campaigns = _campaigns(runtime)
    try:
        if content_type in ("text/csv", "application/csv"):
            items, defaults = parse_csv(raw, flow_name)
        else:
            items, defaults = parse_json(raw)
        view = await campaigns.view(campaign_id)
        if view.state == "canceled":
            raise CampaignCanceled(campaign_id)
        outcome = await enqueue_bulk(
            campaigns,
            view,
            items,
            defaults,
            mode,
            now_ms=runtime.store.clock.now_ms(),
            retention_s=runtime.settings.campaign_retention,
            idempotency_ttl_s=IDEMPOTENCY_TTL_S,
            traceparent=from_headers(request.headers).traceparent,
        )
    except BulkRequestError as exc:
        error = {400: "bad_request", 413: "payload_too_large"}.get(exc.status, "validation_error")
        return JSONResponse({"error": error, "message": str(exc), "errors": exc.errors}, exc.status)
    except CampaignCanceled as exc:
        raise HTTPException(409, str(exc)) from None
    if outcome.accepted:
        runtime.metrics.call_enqueued(campaign_id, outcome.accepted)
    log.info("campaign %s: bulk enqueue of %d: %d accepted, %d replayed, %d rejected", campaign_id, len(items),
             outcome.accepted, outcome.replayed, outcome.rejected)  # fmt: skip
    return JSONResponse(outcome.as_json(), 200)


async def _control(
    campaign_id: str, runtime: RuntimeDep, action: Literal["pause", "resume", "cancel"], reason: str
) -> dict[str, Any]:
    campaigns = _campaigns(runtime)
    done = await campaigns.control(campaign_id, action, reason)
    if done.outcome == "missing":
        raise _missing(campaign_id)
    if done.outcome == "canceled" and action != "cancel":
        raise HTTPException(409, f"campaign {campaign_id!r} was canceled: it cannot be paused or resumed")
    ended = 0
    if action == "cancel":
        ended = await campaigns.cancel_waiting(campaign_id)
    if done.outcome == "changed":
        log.warning("campaign %s: %s by the API (%s)%s", campaign_id, action, reason,
                    f"; {ended} waiting calls ended canceled" if action == "cancel" else "")  # fmt: skip
    view = await campaigns.view(campaign_id)
    body: dict[str, Any] = {"campaign_id": campaign_id, "state": view.state, "changed": done.outcome == "changed"}
    if action == "cancel":
        body["canceled_calls"] = ended
    if action == "resume" and done.outcome == "changed":
        body["was_paused_by"] = done.paused_by
    return body


ControlBody = Annotated[ControlRequest | None, Body()]


@router.post("/{campaign_id}/pause")
async def pause(campaign_id: CampaignId, runtime: RuntimeDep, body: ControlBody = None) -> dict[str, Any]:
    """No call of the campaign is dialled from now on; calls in flight finish, waiting calls stay waiting."""
    return await _control(campaign_id, runtime, "pause", (body.reason if body else None) or "paused by the API")


@router.post("/{campaign_id}/resume")
async def resume(campaign_id: CampaignId, runtime: RuntimeDep, body: ControlBody = None) -> dict[str, Any]:
    """Dial again, after a pause by the API or by the circuit breaker (whose window starts afresh)."""
    return await _control(campaign_id, runtime, "resume", (body.reason if body else None) or "resumed")


@router.post("/{campaign_id}/cancel")
async def cancel(campaign_id: CampaignId, runtime: RuntimeDep, body: ControlBody = None) -> dict[str, Any]:
    """End every queued and scheduled call as `canceled` (results delivered); calls in flight finish; the campaign
    takes no new calls."""
    return await _control(campaign_id, runtime, "cancel", (body.reason if body else None) or "canceled by the API")
