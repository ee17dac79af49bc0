"""/api/suppressions: numbers never dialled (opt-outs). Checked at dispatch, atomically with the claim."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from callqueue.api.content import require_media
from callqueue.api.deps import RuntimeDep
from callqueue.api.errors import error_responses
from callqueue.api.models import E164_PATTERN
from callqueue.campaigns.store import CampaignStore
from callqueue.phones import InvalidPhone, normalize
from callqueue.store.records import iso

log = logging.getLogger("callqueue.campaigns")
router = APIRouter(prefix="/api/suppressions", tags=["suppressions"])
MAX_NUMBERS = 10_000
BULK_PATH = r"^/api/suppressions$"  # MAX_BULK_BODY_BYTES applies here (api/body_limit.py): 10,000 numbers
NUMBER_MAX = 32  # characters of a number as sent (E.164 has at most 16; spaces and dashes are allowed)
_ERRORS = {
    404: "the number is not on the suppression list",
    422: "not a valid phone number (E.164): `errors` names the field and the rule",
}
_E164 = {"pattern": E164_PATTERN, "format": "e164"}
# A number in a path is checked in the route (normalised, like in bodies); the schema states the E.164 form.
PhonePath = Annotated[
    str,
    Path(
        description="the number in E.164 (URL-encode the '+' as %2B)",
        json_schema_extra={**_E164, "maxLength": NUMBER_MAX},
    ),
]


async def _json_body(request: Request) -> None:
    require_media(request)


class SuppressRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    numbers: list[Annotated[str, Field(max_length=NUMBER_MAX, json_schema_extra=_E164)]] = Field(
        min_length=1, max_length=MAX_NUMBERS, examples=[["+14155550100"]]
    )
    reason: str | None = Field(default=None, max_length=500, examples=["opted out by SMS STOP"])


def _number(raw: str) -> str:
    """The E.164 form of a number from a path, before it becomes part of anything stored or looked up."""
    try:
        if len(raw) > NUMBER_MAX:
            raise InvalidPhone(f"is longer than {NUMBER_MAX} characters; use E.164, e.g. +14155550100")
        return normalize(raw)
    except InvalidPhone as exc:
        raise RequestValidationError([{"loc": ("phone_number",), "msg": str(exc), "type": "value_error"}]) from None


@router.post(
    "",
    dependencies=[Depends(_json_body)],
    responses=error_responses(
        408, 413, 415, 422, 503, descriptions={422: "invalid numbers (each named, nothing added) or body"}
    ),
)
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


@router.get("/{phone_number}", responses=error_responses(404, 413, 422, 503, descriptions=_ERRORS))
async def get_suppression(phone_number: PhonePath, runtime: RuntimeDep) -> dict[str, Any]:
    number = _number(phone_number)
    info = await CampaignStore(runtime.store).suppression(number)
    if info is None:
        raise HTTPException(404, f"{number} is not on the suppression list")
    added = info.get("added_at")
    return {"phone_number": number, "reason": info.get("reason"), "added_at": iso(added) if added else None}


@router.delete("/{phone_number}", responses=error_responses(404, 413, 422, 503, descriptions=_ERRORS))
async def unsuppress(phone_number: PhonePath, runtime: RuntimeDep) -> dict[str, Any]:
    """Remove a number: calls to it queued from now on are dialled again."""
    number = _number(phone_number)
    if not await CampaignStore(runtime.store).unsuppress(number):
        raise HTTPException(404, f"{number} is not on the suppression list")
    log.info("suppression list: %s removed", number)
    return {"phone_number": number, "removed": True}
