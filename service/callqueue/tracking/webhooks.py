"""Plivo's ring and hang-up callbacks: verified, de-duplicated by nonce, then applied like any other event.

Order of checks, each answering before anything changes: signature (403: missing, wrong, or no auth token
configured), replayed nonce (403), malformed (400), unknown call (404; Plivo stops retrying on 4xx). The
signature covers the public URL Plivo called — PUBLIC_BASE_URL + path + query — because behind Cloud Run's
proxy the URL the app sees has another scheme and host.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from plivo.utils.signature_v3 import validate_v3_signature

from callqueue.api.deps import get_runtime
from callqueue.callback_urls import HANGUP_PATH, RING_PATH
from callqueue.runtime import Runtime
from callqueue.tracking.apply import apply_pushed_event
from callqueue.tracking.cadence import Cadence
from callqueue.tracking.events import BadEvent, from_plivo_callback
from callqueue.tracking.rejections import record_rejection

log = logging.getLogger("callqueue.webhooks")
NONCE_TTL_S = 24 * 3600
router = APIRouter(tags=["webhooks"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _answer(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, "errors": []}, status_code=status)


def signature_valid(method: str, url: str, nonce: str, token: str, signature: str, params: dict[str, str]) -> bool:
    try:
        return bool(validate_v3_signature(method, url, nonce, token, signature, dict(params)))
    except Exception:  # the SDK's argument validators raise on odd input: that is a bad signature too
        return False


async def _handle(request: Request, runtime: Runtime, event: Literal["ring", "hangup"]) -> JSONResponse:
    settings = runtime.settings
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
    if not settings.plivo_auth_token:
        await record_rejection(runtime.store, "webhook", call_id, "PLIVO_AUTH_TOKEN not set: cannot verify")
        return _answer(403, "signature_unverifiable", "set PLIVO_AUTH_TOKEN so callbacks can be verified")
    if not signature or not nonce:
        await record_rejection(runtime.store, "webhook", call_id, "missing X-Plivo-Signature-V3 or nonce")
        return _answer(403, "signature_missing", "X-Plivo-Signature-V3 and X-Plivo-Signature-V3-Nonce are required")
    if not signature_valid(method, url, nonce, settings.plivo_auth_token, signature, signed_params):
        await record_rejection(runtime.store, "webhook", call_id, f"bad signature for {url}")
        return _answer(403, "signature_invalid", f"signature does not match {url} with PLIVO_AUTH_TOKEN")
    nonce_key = f"{runtime.store.keys.webhook_nonces}:{nonce}"
    if not await runtime.redis.set(nonce_key, "1", nx=True, ex=NONCE_TTL_S):
        await record_rejection(runtime.store, "webhook", call_id, f"replayed nonce {nonce}")
        return _answer(403, "nonce_replayed", "this signed request was already received")
    params = body if method == "POST" else {k: v for k, v in request.query_params.items() if k != "call_id"}
    if not call_id:
        await record_rejection(runtime.store, "webhook", "", "callback URL without call_id")
        return _answer(400, "malformed", "callback URL must carry ?call_id=")
    try:
        call_event = from_plivo_callback(call_id, event, params)
    except BadEvent as exc:
        await record_rejection(runtime.store, "webhook", call_id, f"malformed {event} callback: {exc}")
        return _answer(400, "malformed", str(exc))
    applied = await apply_pushed_event(runtime.store, Cadence(settings.timing), call_event)
    if not applied.found:
        await record_rejection(runtime.store, "webhook", call_id, f"{event} callback for an unknown call")
        return _answer(404, "unknown_call", f"call_id {call_id!r} is unknown")
    return JSONResponse({"call_id": call_id, "status": str(applied.status), "changed": applied.changed})


@router.post(RING_PATH)
@router.get(RING_PATH)
async def ring(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Plivo's ring_url: the destination is ringing."""
    return await _handle(request, runtime, "ring")


@router.post(HANGUP_PATH)
@router.get(HANGUP_PATH)
async def hangup(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Plivo's hangup_url: the call ended, however it ended (also calls that never connected)."""
    return await _handle(request, runtime, "hangup")
