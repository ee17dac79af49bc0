"""One way to connect to Redis (TLS with the instance's own CA when configured) and one rule for its eviction policy.

The service, `callqueue-diagnose` and `callqueue-connectivity` all connect through `redis_client`, so a rediss://
URL with REDIS_CA_CERT works everywhere or nowhere. `policy_problem` is the rule the service applies at start-up
and diagnose reports: only `noeviction` keeps every key the queue writes (queued calls, idempotency keys, callback
nonces, leases); any other policy drops some of them under memory pressure, silently.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from callqueue.settings import Settings
from callqueue.store.fastpath import FastPath
from callqueue.store.watchdog import watch_commands

COMMAND_TIMEOUT_S = 5.0  # the longest a request waits on a Redis that does not answer (plus a quarter of it)
SAFE_POLICY = "noeviction"
NOEVICTION_FIX = (
    "set maxmemory-policy to noeviction (Memorystore: redis_configs, which infra/redis.py sets; a local Redis:"
    " CONFIG SET maxmemory-policy noeviction), or set REDIS_ALLOW_EVICTION=true for a local Redis you cannot change"
)


def redis_client(settings: Settings, **options: Any) -> Redis:
    """A client for REDIS_URL. With rediss:// and REDIS_CA_CERT, the server's chain is verified against that CA.

    Hostname checking stays off (redis-py 5's default, made explicit so an upgrade cannot change it): Memorystore
    is dialled by private IP and its certificate is signed by a CA unique to the instance, so the chain alone
    says it is our instance.
    """
    if urlsplit(settings.redis_url).scheme == "rediss":
        options.setdefault("ssl_cert_reqs", "required")
        options.setdefault("ssl_check_hostname", False)
        if settings.redis_ca_cert:
            options.setdefault("ssl_ca_data", settings.redis_ca_cert)
    client: Redis = Redis.from_url(settings.redis_url, **options)
    return client


def service_redis(settings: Settings, command_timeout_s: float = COMMAND_TIMEOUT_S) -> Redis:
    """The queue service's own client (the runtime's, and the benchmark's, so both measure the same thing).

    Every command is bounded by `command_timeout_s` through a watchdog per connection (store/watchdog.py), not by
    redis-py's socket_timeout, which costs ~50 µs of client CPU on every command; and packed by hiredis
    (store/fastpath.py), with the pool's ready check made cheap."""
    client = redis_client(settings, decode_responses=True, socket_connect_timeout=3, health_check_interval=30)
    return watch_commands(client, command_timeout_s, FastPath)


async def eviction_policy(redis: Redis) -> str | None:
    """INFO works on Memorystore, where CONFIG is disabled; CONFIG GET is the fallback for older servers."""
    info = await redis.info("memory")
    if "maxmemory_policy" in info:
        return str(info["maxmemory_policy"])
    try:
        answer = await redis.config_get("maxmemory-policy")
    except ResponseError:
        return None
    value = answer.get("maxmemory-policy")
    return str(value) if value else None


def policy_problem(policy: str | None) -> str | None:
    """What an eviction policy would lose, or None when it loses nothing."""
    if policy == SAFE_POLICY:
        return None
    if policy is None:
        return "Redis does not report its maxmemory-policy, so the service cannot tell whether it evicts keys"
    if policy.startswith("volatile"):
        return (
            f"Redis runs with maxmemory-policy {policy}: under memory pressure it evicts keys that carry a TTL"
            " (idempotency keys, callback nonces, dispatch leases), so client retries create second calls"
        )
    return (
        f"Redis runs with maxmemory-policy {policy}: under memory pressure it evicts any key, queued calls and"
        " their state included"
    )
