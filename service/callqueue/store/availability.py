"""Which Redis errors mean "Redis cannot serve us right now" (answer 503, back off) rather than a bug (500, trace).

Unreachable, timed out, still loading, read-only after a failover, or full (maxmemory with noeviction: Redis
refuses the first write of a command or script, so nothing is half-written). Everything else, e.g. WRONGTYPE, is a
bug and is reported as one.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


def unavailable_reason(exc: BaseException) -> str | None:
    """Why Redis could not serve the command, in a few words; None when `exc` is not an availability problem."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):  # also BusyLoadingError, AuthenticationError
        return f"unreachable ({type(exc).__name__})"
    if isinstance(exc, OutOfMemoryError) or (isinstance(exc, ResponseError) and "OOM command not allowed" in str(exc)):
        return "full: maxmemory reached, writes refused"
    if isinstance(exc, ReadOnlyError) or (isinstance(exc, ResponseError) and "READONLY" in str(exc)):
        return "read-only (a replica, or a failover in progress)"
    return None


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, RedisError) and unavailable_reason(exc) is not None
