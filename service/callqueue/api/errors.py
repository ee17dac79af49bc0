"""Uniform error answers: what is wrong, and how to fix it; Redis outages and a refused Redis become 503 naming the
dependency and why.

Every 4xx/5xx body is `{"error", "message", "errors"}` (models.ErrorBody); `error_responses` documents the codes a
route answers in the OpenAPI schema.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from callqueue.api.models import ErrorBody
from callqueue.store.availability import unavailable_reason
from callqueue.store.policy_guard import RedisPolicyError

log = logging.getLogger("callqueue.api")
REDIS_RETRY_AFTER_S = 5
ERROR_NAMES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "queue_full",
    500: "internal_error",
    502: "bad_gateway",
    503: "dependency_unavailable",
}
_DESCRIPTIONS = {
    400: "malformed callback",
    403: "callback signature missing, wrong, or replayed",
    404: "unknown call (or a call id that is not one of ours)",
    408: "request body not received within CLIENT_BODY_TIMEOUT",
    409: "conflict with the call's state or with an earlier Idempotency-Key",
    413: "request body larger than MAX_BODY_BYTES",
    415: "Content-Type is not application/json",
    422: "invalid input: `errors` names each field and its rule",
    429: "MAX_QUEUED_CALLS calls wait to be dialled (queued or scheduled): retry after Retry-After seconds",
    502: "Plivo did not take the request; nothing changed",
    503: "Redis is unreachable, full, or refused for its eviction policy: nothing was written; retry after"
    " Retry-After seconds",
}


def error_responses(
    *codes: int, json_route: bool = True, descriptions: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each code with the uniform error body. Errors are JSON even where the route
    answers text or HTML (`json_route=False`: FastAPI would otherwise document them in the route's media type; the
    reference is to the ErrorBody component that the JSON routes of the same app register). `descriptions` say
    what a code means on this route where the default (written for calls) does not fit."""
    said = {**_DESCRIPTIONS, **(descriptions or {})}
    if json_route:
        return {code: {"model": ErrorBody, "description": said[code]} for code in codes}
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {code: {"description": said[code], "content": content} for code in codes}


def error_response(
    status: int,
    error: str,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, "errors": errors or []}, status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        rule = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        errors.append({"field": _field(tuple(err.get("loc", ()))), "rule": rule})
    message = "; ".join(f"{e['field']}: {e['rule']}" for e in errors)
    return error_response(422, "validation_error", message, errors)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(
        exc.status_code,
        ERROR_NAMES.get(exc.status_code, "http_error"),
        detail,
        headers=getattr(exc, "headers", None),
    )


def redis_unavailable_response(reason: str) -> JSONResponse:
    return error_response(
        503,
        "dependency_unavailable",
        f"redis is {reason}; nothing was written. Retry after {REDIS_RETRY_AFTER_S} s; if it lasts, check REDIS_URL"
        " and the Redis instance's memory.",
        [{"dependency": "redis", "reason": reason}],
        headers={"Retry-After": str(REDIS_RETRY_AFTER_S)},
    )


async def _redis(_: Request, exc: Exception) -> JSONResponse:
    reason = unavailable_reason(exc)
    if reason is not None:
        return redis_unavailable_response(reason)
    log.error("request failed on an unexpected Redis error", exc_info=exc)
    return await _internal(_, exc)


async def _refused(_: Request, exc: Exception) -> JSONResponse:
    """Redis answers but may evict the queue's keys: the message carries the refusal and its fix."""
    assert isinstance(exc, RedisPolicyError)
    return error_response(
        503,
        "dependency_unavailable",
        f"{exc} Nothing was written; retry after {REDIS_RETRY_AFTER_S} s.",
        [{"dependency": "redis", "reason": exc.reason}],
        headers={"Retry-After": str(REDIS_RETRY_AFTER_S)},
    )


async def _internal(_: Request, exc: Exception) -> JSONResponse:
    """Last resort, so even a bug answers the documented body (the server logs the traceback)."""
    return error_response(500, "internal_error", "the service failed unexpectedly; the cause is in its log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RedisError, _redis)
    app.add_exception_handler(RedisPolicyError, _refused)
    app.add_exception_handler(Exception, _internal)
