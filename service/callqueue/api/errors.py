"""Uniform error answers: what is wrong, and how to fix it; Redis outages become 503 naming the dependency."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException


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
    names = {404: "not_found", 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large"}
    return error_response(
        exc.status_code,
        names.get(exc.status_code, "http_error"),
        detail,
        headers=getattr(exc, "headers", None),
    )


async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
    return error_response(
        503,
        "dependency_unavailable",
        f"redis is unreachable ({type(exc).__name__}); nothing was written. Retry later; check REDIS_URL.",
        [{"dependency": "redis"}],
        headers={"Retry-After": "5"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RedisConnectionError, _redis_down)
    app.add_exception_handler(RedisTimeoutError, _redis_down)
