"""The rule that the service never works against a Redis that can evict its keys, held for the process's life.

At start-up a Redis that answers with an evicting policy stops the process with the reason and the fix. A Redis
that does not answer yet (a failover, a maintenance restart) does not stop it: the process serves, `/api/health`
answers 503 (so Cloud Run's startup probe holds traffic back), and the policy is read as soon as Redis answers;
background work starts only once it passed. Later, a Redis that comes back from an outage is read again before
any loop resumes (it may be another instance). While refused, requests answer 503 naming the policy, loops wait,
and a Redis whose policy was fixed is taken again without a restart.

Refused is not unavailable (store/availability.py): Redis answers; the service declines, and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callqueue.store.availability import unavailable_reason
from callqueue.store.connection import NOEVICTION_FIX, eviction_policy, policy_problem

log = logging.getLogger("callqueue.redis")
Verdict = Literal["unknown", "ok", "refused"]


class RedisPolicyError(RuntimeError):
    """Redis answered with an eviction policy that can drop the queue's keys. str() is the refusal with its fix;
    `reason` is a few words naming the policy (no host: the public webhooks role may show it)."""

    def __init__(self, refusal: str, reason: str) -> None:
        super().__init__(refusal)
        self.reason = reason


class PolicyGuard:
    def __init__(self, redis: Redis, allow_eviction: bool) -> None:
        self._redis = redis
        self._allow = allow_eviction
        self.verdict: Verdict = "unknown"  # the last decision; unchanged while Redis does not answer
        self.refused = asyncio.Event()  # set while the verdict is "refused": running loops stop on it
        self.policy: str | None = None
        self.refusal: str | None = None  # why, and the fix (logs, the API role's health)
        self.reason: str | None = None  # why, in a few words (503 bodies, the webhooks role's health)
        self.last_error: str | None = None  # why the last read failed, host and all (logs, the API role's health)
        self.last_reason: str | None = None  # the same in a few words, naming no host
        self.last_exc: BaseException | None = None

    async def read(self) -> Verdict:
        """Read the policy now and decide. Raises what Redis raised when it does not answer (verdict unchanged)."""
        try:
            policy = await eviction_policy(self._redis)
        except (RedisError, OSError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.last_reason = unavailable_reason(exc) or type(exc).__name__
            self.last_exc = exc
            raise
        self.policy = policy
        problem = policy_problem(policy)
        if problem and not self._allow:
            if self.verdict != "refused":
                self.refusal = f"{problem}. The service does not run against it. Fix: {NOEVICTION_FIX}"
                self.reason = f"refused for its eviction policy (maxmemory-policy {policy or 'not reported'})"
                self.verdict = "refused"
                self.refused.set()
                log.critical(self.refusal)
            return self.verdict
        if problem and self.verdict != "ok":
            log.warning("%s; starting anyway because REDIS_ALLOW_EVICTION=true (never do this on Cloud Run)", problem)
        elif self.verdict == "refused":
            log.warning("Redis now runs with maxmemory-policy %s: accepted, work resumes", policy)
        self.verdict = "ok"
        self.refused.clear()
        return self.verdict

    async def check(self) -> Verdict:
        """An accepted policy stays accepted without a read; otherwise read it; 'unknown' while Redis is silent."""
        if self.verdict == "ok":
            return self.verdict
        try:
            return await self.read()
        except (RedisError, OSError):
            return "unknown"

    async def admit(self) -> None:
        """Before a request's work: return when the policy is accepted; raise RedisPolicyError while it is refused,
        or what Redis raised while it does not answer (the API answers 503 with the reason either way)."""
        if self.verdict == "ok" or await self.read() == "ok":
            return
        raise self.error()

    def error(self) -> RedisPolicyError:
        return RedisPolicyError(self.refusal or "Redis's eviction policy is refused", self.reason or "refused")

    async def wait(self, stop: asyncio.Event, interval_s: float = 1.0) -> Verdict:
        """Check until the policy is accepted or until `stop` is set."""
        while not stop.is_set():
            if await self.check() == "ok":
                return self.verdict
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
        return self.verdict
