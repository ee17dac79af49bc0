"""/api/campaigns: settings, bulk enqueue, pause/resume/cancel, and status of a campaign (docs/campaigns.md)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from callqueue.api.admission import queue_full_response, queue_full_retry_after_s
from callqueue.api.content import CSV_TYPES, JSON_TYPES, require_media
from callqueue.api.deps import RuntimeDep
from callqueue.api.errors import error_responses
from callqueue.api.models import E164_PATTERN, FLOW_NAME_PATTERN
from callqueue.campaigns.bulk import KEY_MAX, MAX_ITEMS, BulkRequestError, Mode, enqueue_bulk, parse_csv, parse_json
from callqueue.campaigns.models import TIME_ZONE_FORMAT, TIME_ZONE_MAX, CampaignSettings
from callqueue.campaigns.status import campaign_status
from callqueue.campaigns.store import CampaignStore
from callqueue.ids import CAMPAIGN_ID_MAX, CAMPAIGN_ID_PATTERN, CAMPAIGN_ID_RULE, is_campaign_id, shown
from callqueue.store.calls import CampaignCanceled, QueueFull
from callqueue.tracing import from_headers

log = logging.getLogger("callqueue.campaigns")
router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])
# The path parameter as documented; checked in the route: on a read or a control a string that is not a campaign id
# is an unknown campaign (404), on a write that would create the campaign it is invalid input (422).
CampaignId = Annotated[
    str,
    Path(
        description=f"the campaign's id: {CAMPAIGN_ID_RULE}",
        json_schema_extra={"pattern": CAMPAIGN_ID_PATTERN, "maxLength": CAMPAIGN_ID_MAX},
    ),
]
BULK_PATH = r"^/api/campaigns/[^/]+/calls$"  # MAX_BULK_BODY_BYTES applies here (api/body_limit.py)
_CAMPAIGN_ERRORS = {
    404: "unknown campaign (or a campaign id that is not one of ours)",
    409: "the campaign was canceled",
    422: "invalid input (a campaign id, settings, or query parameter): `errors` names each field and its rule",
    415: "Content-Type is not application/json",
}


async def _json_body(request: Request) -> None:
    """415 before the body is parsed: these routes take JSON only."""
    require_media(request)


async def _optional_json_body(request: Request) -> None:
    """The body is optional; if one is sent, it is JSON."""
    if request.headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in request.headers:
        require_media(request)


def _known(campaign_id: str) -> None:
    if not is_campaign_id(campaign_id):
        raise _missing(campaign_id)


def _valid(campaign_id: str) -> None:
    if not is_campaign_id(campaign_id):
        raise RequestValidationError([{"loc": ("campaign_id",), "msg": CAMPAIGN_ID_RULE, "type": "value_error"}])


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500, description="shown in the campaign's status and logs")


def _campaigns(runtime: RuntimeDep) -> CampaignStore:
    return CampaignStore(runtime.store)


def _missing(campaign_id: str) -> HTTPException:
    return HTTPException(
        404, f"campaign {shown(campaign_id)} is unknown: PUT its settings or queue a call with this campaign_id first"
    )


@router.get("", responses=error_responses(413, 422, 503))
async def list_campaigns(runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """The most recently active campaigns (a new call or settings), newest first, with state and counts."""
    return {"campaigns": await _campaigns(runtime).summaries(limit)}


@router.put(
    "/{campaign_id}",
    dependencies=[Depends(_json_body)],
    responses=error_responses(408, 413, 415, 422, 503, descriptions=_CAMPAIGN_ERRORS),
)
async def put_campaign(campaign_id: CampaignId, settings: CampaignSettings, runtime: RuntimeDep) -> dict[str, Any]:
    """Create or replace a campaign's settings (fields left out take their defaults). Calls already waiting are
    planned again under new calling hours; a new retry policy applies to attempts that end from now on."""
    _valid(campaign_id)
    view = await _campaigns(runtime).put_settings(campaign_id, settings, runtime.settings.campaign_retention)
    log.info("campaign %s: settings replaced (%s)", campaign_id, settings.model_dump_json())
    return {"campaign_id": campaign_id, "state": view.state, "settings": view.settings.model_dump()}


@router.get("/{campaign_id}", responses=error_responses(404, 413, 422, 503, descriptions=_CAMPAIGN_ERRORS))
async def get_campaign(campaign_id: CampaignId, runtime: RuntimeDep) -> dict[str, Any]:
    """Counts per status and per attempt, progress, pace, ETA at that pace, next due call, breaker state."""
    _known(campaign_id)
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


_CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "call_config fields (JSON; finite numbers, at most 8 levels); flow_name here or in every item",
    "properties": {"flow_name": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": FLOW_NAME_PATTERN}},
}
_BULK_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["calls"],
                    "additionalProperties": False,
                    "properties": {
                        "calls": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_ITEMS,
                            "items": {
                                "type": "object",
                                "required": ["phone_number"],
                                "additionalProperties": False,
                                "properties": {
                                    "phone_number": {
                                        "type": "string",
                                        "example": "+14155550100",
                                        "pattern": E164_PATTERN,
                                        "format": "e164",
                                    },
                                    "call_config": {**_CONFIG_SCHEMA, "description": "merged over the request's"},
                                    "key": {
                                        "type": "string",
                                        "minLength": 1,
                                        "maxLength": KEY_MAX,
                                        "description": "idempotency key of the item",
                                    },
                                    "time_zone": {
                                        "type": "string",
                                        "example": "America/Chicago",
                                        "format": TIME_ZONE_FORMAT,
                                        "maxLength": TIME_ZONE_MAX,
                                    },
                                    "not_before": {"type": "string", "format": "date-time"},
                                    "retry": {"$ref": "#/components/schemas/RetryPolicy"},
                                },
                            },
                        },
                        "call_config": {**_CONFIG_SCHEMA, "description": "defaults for every item's call_config"},
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
        **error_responses(
            400,
            408,
            409,
            413,
            415,
            422,
            429,
            503,
            descriptions={
                **_CAMPAIGN_ERRORS,
                400: "the body is not JSON, or the CSV not UTF-8",
                413: "more than 10,000 calls, or MAX_BULK_BODY_BYTES exceeded",
                415: "Content-Type is neither application/json nor text/csv",
                422: "invalid request or campaign id (all_or_nothing: any invalid item); `errors` name each",
                429: "MAX_QUEUED_CALLS calls wait to be dialled: the whole request (all_or_nothing), or every item"
                " (per_item) was refused; retry after Retry-After seconds",
            },
        ),
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
    call), errors name the item and the rule. mode=all_or_nothing writes nothing if any item is invalid, or if its
    new calls do not all fit under MAX_QUEUED_CALLS (429); per_item admits items in order while they fit and
    answers the rest with `queue_full` (Retry-After is set), 429 if none was admitted."""
    _valid(campaign_id)
    content_type = require_media(request, JSON_TYPES + CSV_TYPES)
    raw = await request.body()
    campaigns = _campaigns(runtime)
    settings = runtime.settings
    try:
        if content_type in CSV_TYPES:
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
            retention_s=settings.call_retention,
            campaign_retention_s=settings.campaign_retention,
            max_queued=settings.max_queued_calls,
            traceparent=from_headers(request.headers).traceparent,
        )
    except BulkRequestError as exc:
        error = {400: "bad_request", 413: "payload_too_large"}.get(exc.status, "validation_error")
        return JSONResponse({"error": error, "message": str(exc), "errors": exc.errors}, exc.status)
    except CampaignCanceled as exc:
        raise HTTPException(409, str(exc)) from None
    except QueueFull as full:
        return queue_full_response(settings, full.waiting)
    if outcome.accepted:
        runtime.metrics.call_enqueued(campaign_id, outcome.accepted)
    log.info("campaign %s: bulk enqueue of %d: %d accepted, %d replayed, %d rejected (%d for want of room)",
             campaign_id, len(items), outcome.accepted, outcome.replayed, outcome.rejected,
             outcome.full)  # fmt: skip
    if outcome.full:
        if not outcome.accepted and not outcome.replayed:
            errors = [e for item in outcome.as_json()["items"] for e in item.get("errors", [])]
            return queue_full_response(settings, outcome.waiting, errors)
        retry_after = str(queue_full_retry_after_s(settings))
        return JSONResponse(outcome.as_json(), 200, headers={"Retry-After": retry_after})
    return JSONResponse(outcome.as_json(), 200)


async def _control(
    campaign_id: str, runtime: RuntimeDep, action: Literal["pause", "resume", "cancel"], reason: str
) -> dict[str, Any]:
    _known(campaign_id)
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
_CONTROL: dict[str, Any] = {
    "dependencies": [Depends(_optional_json_body)],
    "responses": error_responses(404, 408, 409, 413, 415, 422, 503, descriptions=_CAMPAIGN_ERRORS),
}


@router.post("/{campaign_id}/pause", **_CONTROL)
async def pause(campaign_id: CampaignId, runtime: RuntimeDep, body: ControlBody = None) -> dict[str, Any]:
    """No call of the campaign is dialled from now on; calls in flight finish, waiting calls stay waiting."""
    return await _control(campaign_id, runtime, "pause", (body.reason if body else None) or "paused by the API")


@router.post("/{campaign_id}/resume", **_CONTROL)
async def resume(campaign_id: CampaignId, runtime: RuntimeDep, body: ControlBody = None) -> dict[str, Any]:
    """Dial again, after a pause by the API or by the circuit breaker (whose window starts afresh)."""
    return await _control(campaign_id, runtime, "resume", (body.reason if body else None) or "resumed")


@router.post("/{campaign_id}/cancel", **_CONTROL)
async def cancel(campaign_id: CampaignId, runtime: RuntimeDep, body: ControlBody = None) -> dict[str, Any]:
    """End every queued and scheduled call as `canceled` (results delivered); calls in flight finish; the campaign
    takes no new calls."""
    return await _control(campaign_id, runtime, "cancel", (body.reason if body else None) or "canceled by the API")
