"""Google-signed ID tokens for calling private Cloud Run services, fetched from the metadata server.

A private Cloud Run service answers 403 without a token whose audience is its URL; the caller's service account
also needs roles/run.invoker on it. Tokens are cached per audience until shortly before they expire.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol
from urllib.parse import urlsplit

import httpx

DEFAULT_METADATA_BASE = "http://metadata.google.internal"
IDENTITY_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"
METADATA_IDENTITY_URL = DEFAULT_METADATA_BASE + IDENTITY_PATH
TOKEN_LIFETIME_S = 3600
REFRESH_MARGIN_S = 300


def metadata_base_url(host: str | None) -> str:
    """GCE_METADATA_HOST as Google's libraries read it (host[:port], or a URL); the real server when unset."""
    host = (host or "").strip()
    if not host:
        return DEFAULT_METADATA_BASE
    return (host if "://" in host else f"http://{host}").rstrip("/")


def audience_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class HeaderSource(Protocol):
    """Anything that gives the Authorization headers for a URL (IdTokens, or the diagnose tool's token source)."""

    async def headers_for(self, url: str) -> dict[str, str]: ...


class IdTokens:
    def __init__(self, http: httpx.AsyncClient, enabled: bool, metadata_url: str = METADATA_IDENTITY_URL) -> None:
        self._http = http
        self.enabled = enabled
        self._metadata_url = metadata_url
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    async def headers_for(self, url: str) -> dict[str, str]:
        if not self.enabled:
            return {}
        audience = audience_of(url)
        cached = self._cache.get(audience)
        if cached and cached[1] > time.monotonic():
            return {"Authorization": f"Bearer {cached[0]}"}
        async with self._lock:
            response = await self._http.get(
                self._metadata_url, params={"audience": audience}, headers={"Metadata-Flavor": "Google"}
            )
            response.raise_for_status()
            token = response.text.strip()
            self._cache[audience] = (token, time.monotonic() + TOKEN_LIFETIME_S - REFRESH_MARGIN_S)
        return {"Authorization": f"Bearer {token}"}
