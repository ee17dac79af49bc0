"""The start-up rule that the service never runs against a Redis that can evict its keys.

Checked once when the process starts: a Redis that answers with an evicting policy stops the start-up with the
reason and the fix. A Redis that does not answer yet (a failover, a maintenance restart) does not stop it: the
process serves, `/api/health` answers 503 (so Cloud Run's startup probe holds traffic back), and the policy is
checked as soon as Redis answers; background work starts only once it passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callqueue.store.connection import NOEVICTION_FIX, eviction_policy, policy_problem

log = logging.getLogger("callqueue.redis")
Verdict = Literal["unknown", "ok", "refused"]


class RedisPolicyError(RuntimeError):
    """Redis answered with an eviction policy that can drop the queue's keys."""


class PolicyGuard:
    def __init__(self, redis: Redis, allow_eviction: bool) -> None:
        self._redis = redis
        self._allow = allow_eviction
        self.verdict: Verdict = "unknown"
        self.policy: str | None = None
        self.refusal: str | None = None
        self.last_error: str | None = None

    async def check(self) -> Verdict:
        """Read the policy once if it is not decided yet; 'unknown' while Redis does not answer."""
        if self.verdict != "unknown":
            return self.verdict
        try:
            policy = await eviction_policy(self._redis)
        except (RedisError, OSError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return "unknown"
        self.policy = policy
        problem = policy_problem(policy)
        if problem and self._allow:
            log.warning("%s; starting anyway because REDIS_ALLOW_EVICTION=true (never do this on Cloud Run)", problem)
        elif problem:
            self.refusal = f"{problem}. The service does not run against it. Fix: {NOEVICTION_FIX}"
            self.verdict = "refused"
            log.critical(self.refusal)
            return self.verdict
        self.verdict = "ok"
        return self.verdict

    async def wait(self, stop: asyncio.Event, interval_s: float = 1.0) -> Verdict:
        """Check until decided or until `stop` is set."""
        while not stop.is_set():
            if await self.check() != "unknown":
                return self.verdict
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
        return self.verdict
