"""Async client of Plivo's Voice REST API, for status lookups, reconciliation and cancelling.

Not the `plivo` SDK: it is synchronous, re-sends requests to fallback hosts on a 5xx and prints to stdout. Here
every request first takes a slot of the account-wide budget in Redis (Plivo allows 300 requests / 5 s per
account, shared by every instance), network errors and 5xx are retried with jittered exponential backoff, and
a 429 is reported as `PlivoRateLimited` (back off, not a failure of the call). A 404 is an answer ("not there"),
returned as None; whatever else is not the documented JSON raises `PlivoError` with the reason.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from redis.asyncio import Redis

# Sliding window over the last ARGV[2] ms: take a slot (returns 0) or return the ms until one frees.
BUDGET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window * 2)
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) + window - now)
"""
RETRY_BASE_S = 0.25
RETRY_CAP_S = 5.0
DEFAULT_RETRY_AFTER_S = 1.0


class PlivoError(Exception):
    """Plivo could not give an answer: network error, timeout, 5xx after retries, or an undocumented answer."""


class PlivoRateLimited(Exception):
    """Plivo said 429 or the shared budget is spent: try again after `retry_after_s`; not a failure of the call."""

    def __init__(self, retry_after_s: float, reason: str) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def plivo_time(moment: datetime) -> str:
    """Plivo's filter time format (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class PlivoBudget:
    """The account's REST budget, one sliding window in Redis shared by every instance."""

    def __init__(self, redis: Redis, key: str, limit: int, window_s: int) -> None:
        self._script = redis.register_script(BUDGET_LUA)
        self._key = key
        self._limit = limit
        self._window_ms = window_s * 1000

    async def take(self, max_wait_s: float) -> None:
        deadline = time.monotonic() + max_wait_s
        while True:
            wait_ms = int(await self._script(keys=[self._key], args=[self._limit, self._window_ms, uuid.uuid4().hex]))
            if wait_ms == 0:
                return
            if time.monotonic() + wait_ms / 1000 > deadline:
                raise PlivoRateLimited(wait_ms / 1000, "shared Plivo REST budget spent")
            await asyncio.sleep(wait_ms / 1000)


class PlivoClient:
    def __init__(
        self,
        *,
        base_url: str,
        auth_id: str,
        auth_token: str,
        http: httpx.AsyncClient,
        budget: PlivoBudget,
        timeout_s: float,
        max_retries: int,
    ) -> None:
        self._base = f"{base_url.rstrip('/')}/v1/Account/{auth_id}/"
        self._auth = (auth_id, auth_token)
        self._http = http
        self._budget = budget
        self._timeout = timeout_s
        self._max_retries = max_retries
        self._cooldown_until = 0.0  # after a 429, this process sends nothing until then

    # --- lookups ----------------------------------------------------------------------------------------------

    async def queued_call(self, request_uuid: str) -> dict[str, Any] | None:
        """The call while it waits in Plivo's CPS queue; None once it left the queue (or is not visible yet)."""
        return await self._get_object(f"Call/{request_uuid}/", {"status": "queued"})

    async def live_call(self, call_uuid: str) -> dict[str, Any] | None:
        """The call while ringing or answered; None when not live."""
        return await self._get_object(f"Call/{call_uuid}/", {"status": "live"})

    async def call_detail(self, call_uuid: str) -> dict[str, Any] | None:
        """The detail record of a finished call; None until Plivo has written it (seconds after hang-up)."""
        return await self._get_object(f"Call/{call_uuid}/", None)

    async def find_calls(self, to_number: str, since: datetime, limit: int = 20) -> list[dict[str, Any]]:
        """Finished calls to `to_number` that ended at or after `since`, newest first."""
        params = {"to_number": to_number.lstrip("+"), "end_time__gte": plivo_time(since), "limit": str(limit)}
        return await self._get_list("Call/", params)

    async def live_call_uuids(self) -> list[str]:
        """Uuids of every live call of the account (to find a call whose uuid we never learned)."""
        return await self._uuid_list("live")

    async def queued_request_uuids(self) -> list[str]:
        """Request uuids of every call of the account still waiting in Plivo's CPS queue."""
        return await self._uuid_list("queued")

    async def _uuid_list(self, status: str) -> list[str]:
        response = await self._request("GET", "Call/", {"status": status})
        calls = [] if response.status_code == 404 else _json_object(response, "Call/").get("calls")
        if not isinstance(calls, list):
            raise PlivoError(f"Plivo {status} call list has no 'calls' list: {_snippet(response)!r}")
        return [str(c) for c in calls]

    async def recordings(self, call_uuid: str) -> list[dict[str, Any]]:
        return await self._get_list("Recording/", {"call_uuid": call_uuid})

    # --- actions ----------------------------------------------------------------------------------------------

    async def cancel_request(self, request_uuid: str) -> bool:
        """Take a call out of Plivo's queue; False when it is not queued (any more)."""
        return (await self._request("DELETE", f"Request/{request_uuid}/", None)).status_code < 300

    async def hangup(self, call_uuid: str) -> bool:
        """Hang up a dialled call; False when it is not live."""
        return (await self._request("DELETE", f"Call/{call_uuid}/", None)).status_code < 300

    async def stop(self, *, call_uuid: str | None, request_uuid: str | None) -> bool | None:
        """Stop a call wherever it is at Plivo: hang it up once dialled, else take it out of the queue.

        True: stopped; False: Plivo had nothing live or queued under those ids; None: no id known yet.
        """
        if call_uuid:
            return await self.hangup(call_uuid)
        if request_uuid:
            return await self.cancel_request(request_uuid)
        return None

    # --- transport --------------------------------------------------------------------------------------------

    async def _get_object(self, path: str, params: dict[str, str] | None) -> dict[str, Any] | None:
        response = await self._request("GET", path, params)
        if response.status_code == 404:
            return None
        return _json_object(response, path)

    async def _get_list(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        response = await self._request("GET", path, params)
        if response.status_code == 404:
            return []
        objects = _json_object(response, path).get("objects")
        if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
            raise PlivoError(f"Plivo {path} answered without an 'objects' list: {_snippet(response)!r}")
        return objects

    async def _request(self, method: str, path: str, params: dict[str, str] | None) -> httpx.Response:
        """One request with budget, retries on network errors and 5xx; 429 raises PlivoRateLimited."""
        last = "no attempt"
        for attempt in range(self._max_retries + 1):
            if attempt:
                await asyncio.sleep(random.uniform(0, min(RETRY_CAP_S, RETRY_BASE_S * 2**attempt)))
            cooldown = self._cooldown_until - time.monotonic()
            if cooldown > 0:
                raise PlivoRateLimited(cooldown, "Plivo answered 429 recently; cooling down")
            await self._budget.take(max_wait_s=self._timeout)
            try:
                response = await self._http.request(
                    method, self._base + path, params=params, auth=self._auth, timeout=self._timeout
                )
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 429:
                retry_after = _retry_after(response)
                self._cooldown_until = max(self._cooldown_until, time.monotonic() + retry_after)
                raise PlivoRateLimited(retry_after, f"Plivo answered 429 to {method} {path}")
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}: {_snippet(response)}"
                continue
            if response.status_code >= 400 and response.status_code != 404:
                raise PlivoError(f"Plivo answered {response.status_code} to {method} {path}: {_snippet(response)}")
            return response
        raise PlivoError(f"Plivo {method} {path} failed {self._max_retries + 1} times; last: {last}")


def _json_object(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise PlivoError(f"Plivo {path} answered non-JSON: {_snippet(response)!r}") from None
    if not isinstance(data, dict):
        raise PlivoError(f"Plivo {path} answered JSON that is not an object: {_snippet(response)!r}")
    return data


def _snippet(response: httpx.Response) -> str:
    return response.text[:200].replace("\n", " ")


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.1, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
