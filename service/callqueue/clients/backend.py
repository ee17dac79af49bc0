"""Client of the backend's results endpoint (docs/contracts.md, "Call results").

Each answer is sorted by what to do next: `delivered` (2xx), `rejected` (400/413/422: this body will never be
accepted; dead-letter it now), or `retry` (network errors, timeouts, 401/403 while IAM is being fixed, 404 while
the backend is deployed, 408, 409, 429, 5xx), with the server's Retry-After when it gave one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from callqueue.clients.auth import IdTokens

REJECTED_STATUS = frozenset({400, 413, 422})


@dataclass(frozen=True)
class DeliveryOutcome:
    kind: Literal["delivered", "retry", "rejected"]
    reason: str
    retry_after_s: float | None = None


class BackendClient:
    def __init__(self, url: str, http: httpx.AsyncClient, tokens: IdTokens, timeout_s: float) -> None:
        self.url = url
        self._http = http
        self._tokens = tokens
        self._timeout = timeout_s

    async def post_result(self, body: dict[str, Any], idempotency_key: str) -> DeliveryOutcome:
        try:
            headers = {"Idempotency-Key": idempotency_key, **await self._tokens.headers_for(self.url)}
        except httpx.HTTPError as exc:
            return DeliveryOutcome("retry", f"could not get an ID token for the backend: {exc!r}")
        try:
            response = await self._http.post(self.url, json=body, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            return DeliveryOutcome("retry", f"backend unreachable ({type(exc).__name__}: {exc})")
        code = response.status_code
        snippet = response.text[:200].replace("\n", " ")
        if 200 <= code < 300:
            return DeliveryOutcome("delivered", f"backend answered {code}")
        if code in REJECTED_STATUS:
            return DeliveryOutcome("rejected", f"backend rejected the result with {code}: {snippet}")
        retry_after = None
        with contextlib.suppress(ValueError):
            retry_after = float(response.headers.get("Retry-After", ""))
        return DeliveryOutcome("retry", f"backend answered {code}: {snippet}", retry_after)
