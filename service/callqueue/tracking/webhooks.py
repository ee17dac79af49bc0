"""Plivo's ring and hang-up callbacks: verified, refused when replayed, then applied like any other event.

Order of checks, each answering before anything is written: signature (403: missing, wrong, or no auth token
configured), call id (400 when absent, 404 when not one of ours), replay (403), malformed (400), unknown call
(404; Plivo stops retrying on 4xx). The signature covers the public URL Plivo called — PUBLIC_BASE_URL + path +
query — because behind Cloud Run's proxy the URL the app sees has another scheme and host.

Replays are recognised by what was signed (URL, parameters and nonce: the digest of the signed string), not by the
nonce header alone: the signed string is a concatenation, so part of the parameters can be moved into the nonce
header with the signature still valid. The digest is remembered with the call for as long as the call is kept, so
an exact replay is refused for the call's whole life, and it is spent only once the event is applied: Plivo's retry
of a callback that got a 5xx (Redis unavailable) is applied, not refused.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from plivo.utils.signature_v3 import construct_get_url, construct_post_url, validate_v3_signature

from callqueue.api.deps import get_runtime
from callqueue.api.errors import error_responses
from callqueue.callback_urls import HANGUP_PATH, RING_PATH
from callqueue.ids import CALL_ID_PATTERN, is_call_id, shown
from callqueue.runtime import Runtime
from callqueue.tracking.apply import apply_pushed_event
from callqueue.tracking.cadence import Cadence
from callqueue.tracking.events import PLIVO_STATUS, BadEvent, from_plivo_callback

log = logging.getLogger("callqueue.webhooks")
router = APIRouter(tags=["webhooks"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SOURCE = "webhook"
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "applied (`changed` tells whether the status moved)"},
    **error_responses(400, 403, 404, 408, 413, 503),
}
# What Plivo sends, for clients and fuzzers: our call id in the URL, the signature headers, the form parameters.
_PARAMETERS = [
    {"name": "call_id", "in": "query", "required": True, "schema": {"type": "string", "pattern": CALL_ID_PATTERN}},
    *(
        {"name": header, "in": "header", "required": True, "schema": {"type": "string", "minLength": 1}}
        for header in ("X-Plivo-Signature-V3", "X-Plivo-Signature-V3-Nonce")
    ),
]
_FORM = {
    "type": "object",
    "properties": {
        "CallUUID": {"type": "string"},
        "RequestUUID": {"type": "string"},
        "CallStatus": {"type": "string", "enum": sorted(PLIVO_STATUS)},
        "Duration": {"type": "string"},
        "HangupCauseName": {"type": "string"},
    },
    "required": ["CallStatus"],
}
POST_OPENAPI = {
    "parameters": _PARAMETERS,
    "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": _FORM}}},
}
GET_OPENAPI = {"parameters": _PARAMETERS}


def _answer(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, "errors": []}, status_code=status)


def signature_valid(method: str, url: str, nonce: str, token: str, signature: str, params: dict[str, str]) -> bool:
    try:
        return bool(validate_v3_signature(method, url, nonce, token, signature, dict(params)))
    except Exception:  # the SDK's argument validators raise on odd input: that is a bad signature too
        return False


def signed_digest(method: str, url: str, nonce: str, params: dict[str, str]) -> str:
    """SHA-256 of exactly the string the signature covers (the SDK's construction): equal iff the same was signed."""
    base = construct_get_url(url, dict(params)) if method == "GET" else construct_post_url(url, dict(params))
    return hashlib.sha256(base + b"." + nonce.encode()).hexdigest()


async def _handle(request: Request, runtime: Runtime, event: Literal["ring", "hangup"]) -> JSONResponse:
    settings, store = runtime.settings, runtime.store
    raw = await request.body()
    query = request.url.query
    url = settings.public_base_url + request.url.path + (f"?{query}" if query else "")
    method = request.method.upper()
    try:
        body = dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False)) if raw else {}
    except UnicodeDecodeError:
        body = {}
    signed_params = body if method == "POST" else {}
    signature = request.headers.get("X-Plivo-Signature-V3", "")
    nonce = request.headers.get("X-Plivo-Signature-V3-Nonce", "")
    call_id = request.query_params.get("call_id", "")

    async def refuse(status: int, kind: str, reason: str, message: str) -> JSONResponse:
        await runtime.rejections.record(store, SOURCE, kind, call_id, reason)
        return _answer(status, kind, message)

    if not settings.plivo_auth_token:
        return await refuse(403, "signature_unverifiable", "PLIVO_AUTH_TOKEN not set: cannot verify",
                            "set PLIVO_AUTH_TOKEN so callbacks can be verified")  # fmt: skip
    if not signature or not nonce:
        return await refuse(403, "signature_missing", "missing X-Plivo-Signature-V3 or nonce",
                            "X-Plivo-Signature-V3 and X-Plivo-Signature-V3-Nonce are required")  # fmt: skip
    if not signature_valid(method, url, nonce, settings.plivo_auth_token, signature, signed_params):
        return await refuse(403, "signature_invalid", f"bad signature for {request.url.path}",
                            f"signature does not match {url} with PLIVO_AUTH_TOKEN")  # fmt: skip
    if not call_id:
        return await refuse(400, "malformed", "callback URL without call_id", "callback URL must carry ?call_id=")
    if not is_call_id(call_id):
        return await refuse(404, "unknown_call", "call_id is not one of ours", f"call_id {shown(call_id)} is unknown")
    params = body if method == "POST" else {k: v for k, v in request.query_params.items() if k != "call_id"}
    try:
        call_event = from_plivo_callback(call_id, event, params)
    except BadEvent as exc:
        return await refuse(400, "malformed", f"malformed {event} callback: {exc}", str(exc))
    digest = signed_digest(method, url, nonce, signed_params)
    if await store.callback_seen(call_id, digest):
        return await refuse(403, "replayed", f"{event} callback already applied",
                            "this signed request was already received")  # fmt: skip
    applied = await apply_pushed_event(store, Cadence(settings.timing), call_event)
    if not applied.found:
        return await refuse(404, "unknown_call", f"{event} callback for an unknown call",
                            f"call_id {shown(call_id)} is unknown")  # fmt: skip
    await store.spend_callback(call_id, digest)
    return JSONResponse({"call_id": call_id, "status": str(applied.status), "changed": applied.changed})


@router.post(RING_PATH, responses=RESPONSES, openapi_extra=POST_OPENAPI)
@router.get(RING_PATH, responses=RESPONSES, openapi_extra=GET_OPENAPI)
async def ring(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Plivo's ring_url: the destination is ringing."""
    return await _handle(request, runtime, "ring")


@router.post(HANGUP_PATH, responses=RESPONSES, openapi_extra=POST_OPENAPI)
@router.get(HANGUP_PATH, responses=RESPONSES, openapi_extra=GET_OPENAPI)
async def hangup(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Plivo's hangup_url: the call ended, however it ended (also calls that never connected)."""
    return await _handle(request, runtime, "hangup")
