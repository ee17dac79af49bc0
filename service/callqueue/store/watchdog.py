"""A bounded wait on every Redis command, paid once per connection instead of once per command.

redis-py's `socket_timeout` wraps every read in an asyncio timeout and every write in `wait_for`: about 50 µs of
client CPU per command, the largest single cost of an enqueue after the script itself. Here a connection only notes
when it starts waiting on Redis (one float), and one watchdog task per connection looks every quarter of the
timeout: a wait older than the timeout aborts the connection. The pending command then fails with redis-py's
TimeoutError (a RedisError: the API answers 503) and the pool opens a fresh connection for the next one. So a hung
Redis never holds a request longer than 1.25 × the timeout, and a healthy one costs nothing per command.

A read given its own timeout (pub/sub polling) is bounded by its caller and is not watched. Connecting stays bounded
by `socket_connect_timeout`.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

_WATCHED: dict[tuple[Any, ...], type[AbstractConnection]] = {}


class _Watched(AbstractConnection):
    """Mixed in front of redis-py's connection class (plain TCP, TLS or unix socket alike)."""

    command_timeout_s: float = 5.0
    _waiting_since: float | None = None
    _expired: bool = False
    _watchdog: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        if self.is_connected:
            return
        self._expired = False
        # Started first: the handshake after connecting (HELLO, CLIENT SETINFO, AUTH) is watched too.
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(_watch(weakref.ref(self), self.command_timeout_s))
        await super().connect()  # type: ignore[no-untyped-call]

    async def disconnect(self, nowait: bool = False) -> None:
        self._waiting_since = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        await super().disconnect(nowait)

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()
        try:
            await super().send_packed_command(command, check_health)
        except RedisConnectionError as exc:
            raise self._why(exc) from exc

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 (redis-py's signature)
        *,
        disconnect_on_error: bool = True,
        push_request: bool | None = False,
    ) -> Any:
        self._waiting_since = time.monotonic() if timeout is None else None
        try:
            return await super().read_response(
                disable_decoding, timeout, disconnect_on_error=disconnect_on_error, push_request=push_request
            )
        except RedisConnectionError as exc:
            raise self._why(exc) from exc
        finally:
            self._waiting_since = None

    def _why(self, exc: RedisConnectionError) -> RedisConnectionError | RedisTimeoutError:
        if not self._expired:
            return exc
        return RedisTimeoutError(
            f"Redis at {self._host_error()} did not answer within {self.command_timeout_s:g} s: the connection was"
            " closed; check that Redis is up and not blocked by a long command"
        )

    def _expire(self) -> None:
        """Called by the watchdog: the wait is over; the pending command fails at once."""
        self._expired = True
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.transport.abort()


async def _watch(ref: weakref.ReferenceType[_Watched], timeout_s: float) -> None:
    """Look every timeout/4 s until the connection is closed (disconnect cancels this) or dropped; abort it once
    a wait is older than the timeout."""
    while True:
        await asyncio.sleep(timeout_s / 4)
        conn = ref()
        if conn is None:
            return
        since = conn._waiting_since
        if since is not None and time.monotonic() - since > timeout_s:
            conn._expire()
        del conn


def watch_commands(client: Redis, timeout_s: float, *mixins: type) -> Redis:
    """Bound every command of `client`'s pool by `timeout_s` (its connections' class gains the watchdog, and
    `mixins` in front of it)."""
    pool = client.connection_pool
    base = pool.connection_class
    key = (base, timeout_s, mixins)
    if key not in _WATCHED:
        bases: tuple[type, ...] = (_Watched, *mixins, base)
        _WATCHED[key] = type(f"Watched{base.__name__}", bases, {"command_timeout_s": timeout_s})
    pool.connection_class = _WATCHED[key]
    return client
