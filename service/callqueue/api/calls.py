"""/api/calls: queue a call, read it with its history, cancel it."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from callqueue.api.admission import queue_full_response
from callqueue.api.content import check_media
from callqueue.api.deps import RuntimeDep, StoreDep, get_runtime
from callqueue.api.errors import error_responses
from callqueue.api.models import QueueCallRequest, QueuedCall
from callqueue.call_config import call_config_problems
from callqueue.clients.plivo import PlivoError, PlivoRateLimited
from callqueue.ids import CALL_ID_PATTERN, CALL_ID_RULE, is_call_id, shown
from callqueue.states import FINAL, CallStatus
from callqueue.store.calls import CampaignCanceled, QueueFull, same_call
from callqueue.tracing import bind_call, request_traceparent

log = logging.getLogger("callqueue.api")
router = APIRouter(prefix="/api/calls", tags=["calls"])
IDEMPOTENCY_KEY_MAX = 200
# The path parameter as documented; the id is checked in the route so that any other string is a 404, not a 422.
CallIdPath = Annotated[
    str, Path(description=f"the call's id: {CALL_ID_RULE}", json_schema_extra={"pattern": CALL_ID_PATTERN})
]


def _unknown(call_id: str) -> HTTPException:
    return HTTPException(404, f"call_id {shown(call_id)} is unknown: use the call_id returned by POST /api/calls/queue")


def _require_call_id(call_id: str) -> None:
    """A string that is not one of our ids names no call (and must never become part of a Redis key)."""
    if not is_call_id(call_id):
        raise _unknown(call_id)


# The hot path: no FastAPI dependencies or body field (their generic handling cost more than the Redis write); the
# body is validated straight from bytes by pydantic-core and the answer serialized once. OpenAPI is declared below.
def _inline_schema(model: type[QueueCallRequest]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` inlined, so it is valid anywhere in the OpenAPI document."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


_QUEUE_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _inline_schema(QueueCallRequest)}}},
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
            "description": "a retry with the same key returns the first call instead of queueing another",
        }
    ],
}


# The headers the enqueue reads, found in one pass over the request's raw headers (uvicorn gives the names in lower
# case; the first of a repeated header counts, as with Request.headers.get).
_HOT_HEADERS = {b"content-type": 0, b"idempotency-key": 1, b"traceparent": 2, b"x-cloud-trace-context": 3}


def _hot_headers(request: Request) -> list[str | None]:
    """Content-Type, Idempotency-Key, traceparent and X-Cloud-Trace-Context (None when absent)."""
    found: list[str | None] = [None, None, None, None]
    for name, value in request.scope["headers"]:
        at = _HOT_HEADERS.get(name)
        if at is not None and found[at] is None:
            found[at] = value.decode("latin-1")
    return found


async def _read_body(request: Request) -> bytes:
    """The body, as Request.body() reads it (ClientDisconnect if the client leaves first), without its async
    generator: a request body is one or a few messages."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect


class _Accepted(Response):
    """202 for a new call: the bytes and headers JSONResponse would make (content-length, then content-type),
    set directly rather than through Response's generic header building (the hot path). The id is hex and the
    status a state name, so there is nothing to escape."""

    media_type = "application/json"
    _CONTENT_TYPE = (b"content-type", b"application/json")

    def __init__(self, call_id: str, status: str) -> None:
        self.status_code = 202
        self.background = None
        self.body = f'{{"call_id":"{call_id}","status":"{status}","replayed":false}}'.encode()
        self.raw_headers = [(b"content-length", str(len(self.body)).encode()), self._CONTENT_TYPE]


QUEUE_PATH = "/queue"


@router.post(
    QUEUE_PATH,
    status_code=202,
    response_model=QueuedCall,
    responses={
        200: {"model": QueuedCall, "description": "replay of an earlier Idempotency-Key"},
        **error_responses(408, 409, 413, 415, 422, 429, 503),
    },
    openapi_extra=_QUEUE_OPENAPI,
)
async def queue_call(request: Request) -> Response:
    """Accept a call; answered only once it is persisted. Retrying with the same Idempotency-Key is safe.

    With MAX_QUEUED_CALLS calls waiting to be dialled (queued or scheduled), the answer is 429 with Retry-After
    and nothing is written."""
    runtime = await get_runtime(request)  # what RuntimeDep does, without FastAPI's dependency solving per request
    store, settings = runtime.store, runtime.settings
    content_type, idempotency_key, traceparent, cloud_trace = _hot_headers(request)
    check_media(content_type or "")
    raw = await _read_body(request)
    try:
        body = QueueCallRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False), body=raw) from None
    config = body.call_config.model_dump()
    problems = call_config_problems(config)
    if problems:
        errors = [{"loc": ("body", "call_config", *loc), "msg": rule, "type": "value_error"} for loc, rule in problems]
        raise RequestValidationError(errors, body=raw)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        raise HTTPException(422, f"Idempotency-Key header: must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    fields = body.own_options()
    try:
        result = await store.enqueue(
            body.phone_number,
            body.campaign_id,
            config,
            idempotency_key,
            max_queued=settings.max_queued_calls,
            retention_s=settings.call_retention,
            traceparent=request_traceparent(traceparent, cloud_trace),
            fields=fields,
            due_ms=int(fields.get("not_before", 0)),
            campaign_retention_s=settings.campaign_retention,
        )
    except QueueFull as full:
        return queue_full_response(settings, full.waiting)
    except CampaignCanceled as exc:
        raise HTTPException(409, str(exc)) from None
    if not result.replayed:
        runtime.metrics.call_enqueued(body.campaign_id)
        return _Accepted(result.call_id, result.status)
    record = await store.get(result.call_id)
    if record is None:  # the key expired with its call between two reads
        raise HTTPException(409, "Idempotency-Key refers to a call that no longer exists; use a new key")
    if record.fingerprint and not same_call(record.fingerprint, body.phone_number, body.campaign_id, config):
        raise HTTPException(409, "Idempotency-Key was already used for a different call; use a new key for a new call")
    replay = QueuedCall(call_id=record.call_id, status=record.status.value, replayed=True)
    return JSONResponse(replay.model_dump(), 200, headers={"Idempotent-Replayed": "true"})


def serve_queue_first(app: FastAPI) -> None:
    """POST /api/calls/queue answered by a plain Starlette route of the app's own, tried before any other.

    FastAPI dispatches a request through an included router, and through its own request handler (dependency
    solving, query parsing, two exit stacks), with more work per request than the Redis write: `queue_call` takes
    none of it (no dependencies, no parameters, it answers with a Response), so Starlette's route serves it as
    FastAPI would. Errors it raises go to the app's exception handlers all the same (they wrap every route). The
    router's route stays, for the OpenAPI document (which lists FastAPI routes only) and for anything mounting the
    router alone."""
    app.router.routes.insert(0, Route(router.prefix + QUEUE_PATH, queue_call, methods=["POST"]))


@router.get("/{call_id}", responses=error_responses(404, 413, 422, 503))
async def get_call(call_id: CallIdPath, store: StoreDep) -> dict[str, Any]:
    """The call record with its status history (time, status, source, detail). Finished calls are kept
    CALL_RETENTION seconds, then this answers 404."""
    _require_call_id(call_id)
    record = await store.get(call_id)
    if record is None:
        raise _unknown(call_id)
    return record.as_json()


@router.post(
    "/{call_id}/cancel",
    responses={
        202: {"description": "the call is with the agent: stop asked of Plivo"},
        **error_responses(404, 409, 413, 422, 502, 503),
    },
)
async def cancel_call(call_id: CallIdPath, runtime: RuntimeDep) -> JSONResponse:
    """Cancel a call. Queued: it is never dialled afterwards. With the agent: Plivo is asked to take it out of its
    queue or hang it up, and the outcome arrives like any other (usually `canceled`, or `completed` once answered)."""
    _require_call_id(call_id)
    store = runtime.store
    outcome, status = await store.cancel(call_id)
    if outcome == "missing":
        raise _unknown(call_id)
    if outcome == "canceled":
        return JSONResponse({"call_id": call_id, "status": "canceled"}, 200)
    if status is None or CallStatus(status) in FINAL:
        raise HTTPException(409, f"call {call_id} already ended as {status}: nothing to cancel")
    if CallStatus(status) is CallStatus.DISPATCHING:
        raise HTTPException(409, f"call {call_id} is being handed to the agent right now: retry in a few seconds")
    if runtime.plivo is None:
        raise HTTPException(409, f"call {call_id} is {status} and PLIVO_AUTH_ID/TOKEN are not set: cannot stop it")
    record = await store.get(call_id)
    if record is None:
        raise _unknown(call_id)
    bind_call(call_id, record.traceparent)
    try:
        stopped = await runtime.plivo.stop(call_uuid=record.call_uuid, request_uuid=record.request_uuid)
    except (PlivoError, PlivoRateLimited) as exc:
        raise HTTPException(502, f"Plivo did not take the cancel ({exc}); nothing changed, retry") from None
    await store.set_tracking_fields(call_id, cancel_requested=store.now_ms())
    await store.reschedule(call_id, 1000)  # look for the outcome soon, callbacks or not
    log.info("call %s: cancel requested while %s; stopped at Plivo: %s", call_id, record.status, stopped)
    body = {"call_id": call_id, "status": record.status.value, "cancel_requested": True, "stopped_at_plivo": stopped}
    return JSONResponse(body, 202)
