"""Request media types: a route that reads a JSON body answers 415 to anything else, before reading it."""

from __future__ import annotations

from fastapi import HTTPException, Request

from callqueue.ids import shown

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")


def media_type(request: Request) -> str:
    return _kind(request.headers.get("content-type", ""))


def _kind(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def require_media(request: Request, allowed: tuple[str, ...] = JSON_TYPES) -> str:
    """The request's media type if it is one of `allowed`; 415 naming what was sent otherwise."""
    return check_media(request.headers.get("content-type", ""), allowed)


def check_media(content_type: str, allowed: tuple[str, ...] = JSON_TYPES) -> str:
    """`require_media` for a Content-Type header already read (the enqueue reads its headers in one pass)."""
    kind = _kind(content_type)
    if kind not in allowed:
        got = f"got {shown(kind)}" if kind else "none was sent"
        expected = " or ".join(allowed)
        raise HTTPException(415, f"Content-Type must be {expected} ({got}): send the body as {_noun(allowed)}")
    return kind


def _noun(allowed: tuple[str, ...]) -> str:
    return "JSON" if allowed == JSON_TYPES else "JSON or CSV"
