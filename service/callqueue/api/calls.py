"""/api/calls: queue a call, read it with its history, cancel it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Response

from callqueue.api.deps import StoreDep
from callqueue.api.models import QueueCallRequest, QueuedCall
from callqueue.store.calls import call_fingerprint

router = APIRouter(prefix="/api/calls", tags=["calls"])
IDEMPOTENCY_KEY_MAX = 200


@router.post(
    "/queue",
    status_code=202,
    response_model=QueuedCall,
    responses={200: {"model": QueuedCall, "description": "replay of an earlier Idempotency-Key"}},
)
async def queue_call(
    body: QueueCallRequest,
    store: StoreDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> QueuedCall:
    """Accept a call; answered only once it is persisted. Retrying with the same Idempotency-Key is safe."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        raise HTTPException(422, f"Idempotency-Key header: must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    config = body.call_config.model_dump()
    result = await store.enqueue(body.phone_number, body.campaign_id, config, idempotency_key)
    if not result.replayed:
        return QueuedCall(call_id=result.call_id, status="queued", replayed=False)
    record = await store.get(result.call_id)
    if record is None:  # the key outlived its call (should not happen: both live in the same Redis)
        raise HTTPException(409, "Idempotency-Key refers to a call that no longer exists; use a new key")
    if record.fingerprint and record.fingerprint != call_fingerprint(body.phone_number, body.campaign_id, config):
        raise HTTPException(409, "Idempotency-Key was already used for a different call; use a new key for a new call")
    response.status_code = 200
    response.headers["Idempotent-Replayed"] = "true"
    return QueuedCall(call_id=record.call_id, status=record.status.value, replayed=True)


@router.get("/{call_id}")
async def get_call(call_id: str, store: StoreDep) -> dict[str, Any]:
    """The call record with its status history (time, status, source, detail)."""
    record = await store.get(call_id)
    if record is None:
        raise HTTPException(404, f"call_id {call_id!r} is unknown: use the call_id returned by POST /api/calls/queue")
    return record.as_json()


@router.post("/{call_id}/cancel")
async def cancel_call(call_id: str, store: StoreDep) -> dict[str, Any]:
    """Cancel a queued call: it is never dialled afterwards. A call already handed to the agent is not cancelable."""
    outcome, status = await store.cancel(call_id)
    if outcome == "missing":
        raise HTTPException(404, f"call_id {call_id!r} is unknown: use the call_id returned by POST /api/calls/queue")
    if outcome == "not_cancelable":
        raise HTTPException(409, f"call {call_id} is {status}, not queued: only queued calls can be canceled")
    return {"call_id": call_id, "status": "canceled"}
