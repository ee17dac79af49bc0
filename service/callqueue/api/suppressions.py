"""/api/suppressions: numbers never dialled (opt-outs). Checked at dispatch, atomically with the claim."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from callqueue.api.deps import RuntimeDep
from callqueue.campaigns.store import CampaignStore
from callqueue.phones import InvalidPhone, normalize
from callqueue.store.records import iso

log = logging.getLogger("callqueue.campaigns")
router = APIRouter(prefix="/api/suppressions", tags=["suppressions"])
MAX_NUMBERS = 10_000


class SuppressRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    numbers: list[str] = Field(min_length=1, max_length=MAX_NUMBERS, examples=[["+14155550100"]])
    reason: str | None = Field(default=None, max_length=500, examples=["opted out by SMS STOP"])


def _number(raw: str) -> str:
    try:
        return normalize(raw)
    except InvalidPhone as exc:
        raise HTTPException(422, f"phone number {raw!r} {exc}") from None


@router.post("")
async def suppress(body: SuppressRequest, runtime: RuntimeDep) -> JSONResponse:
    """Add numbers (E.164); all are checked first and none is added if one is invalid. Queued calls to them end
    `suppressed` when their turn comes; calls already dialling are not stopped (cancel them if needed)."""
    numbers: list[str] = []
    errors = []
    for index, raw in enumerate(body.numbers):
        try:
            numbers.append(normalize(raw))
        except InvalidPhone as exc:
            errors.append({"field": f"numbers[{index}]", "rule": str(exc)})
    if errors:
        message = f"{len(errors)} of {len(body.numbers)} numbers are invalid; nothing was added"
        return JSONResponse({"error": "validation_error", "message": message, "errors": errors}, 422)
    added = await CampaignStore(runtime.store).suppress(numbers, body.reason)
    log.info("suppression list: %d numbers added (%d new): %s", len(numbers), added, body.reason or "no reason")
    return JSONResponse({"numbers": numbers, "added": added}, 200)


@router.get("/{phone_number}")
async def get_suppression(phone_number: Annotated[str, Path()], runtime: RuntimeDep) -> dict[str, Any]:
    number = _number(phone_number)
    info = await CampaignStore(runtime.store).suppression(number)
    if info is None:
        raise HTTPException(404, f"{number} is not on the suppression list")
    added = info.get("added_at")
    return {"phone_number": number, "reason": info.get("reason"), "added_at": iso(added) if added else None}


@router.delete("/{phone_number}")
async def unsuppress(phone_number: Annotated[str, Path()], runtime: RuntimeDep) -> dict[str, Any]:
    """Remove a number: calls to it queued from now on are dialled again."""
    number = _number(phone_number)
    if not await CampaignStore(runtime.store).unsuppress(number):
        raise HTTPException(404, f"{number} is not on the suppression list")
    log.info("suppression list: %s removed", number)
    return {"phone_number": number, "removed": True}
