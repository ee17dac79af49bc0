"""Two per-command costs of redis-py's asyncio client, cut (the service's client, store/connection.py).

- Packing: redis-py's synchronous client packs commands with hiredis (C) when it is installed; its asyncio client
  packs in Python. For an enqueue's EVALSHA (13 arguments): ~11 µs of client CPU against ~2 µs. The bytes are the
  same; a value hiredis cannot pack is refused with redis-py's DataError, as before.
- The pool's check that a connection it hands out holds no unread reply: redis-py waits one event-loop turn for
  the socket (a zero timeout around a read), ~13 µs per command. Here it looks at what the loop has already
  received (the parser's buffer, the stream's buffer, end of stream) without waiting. A reply is never left unread
  on a pooled connection (redis-py closes a connection whose command failed or was cancelled), so the check is a
  safeguard either way.

tests/queue/test_redis_fastpath.py holds both to redis-py's behaviour.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError


class FastPath(AbstractConnection):
    """Mixed in front of redis-py's connection class."""

    def pack_command(self, *args: Any) -> list[bytes]:
        # As redis-py does: a command name with a space ('CONFIG GET') goes as separate arguments.
        if isinstance(args[0], str):
            args = tuple(args[0].encode().split()) + args[1:]
        elif b" " in args[0]:
            args = tuple(args[0].split()) + args[1:]
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc

    async def can_read_destructive(self) -> bool:
        parser = self._parser
        reader = getattr(parser, "_reader", None)
        stream = getattr(parser, "_stream", None)
        if not isinstance(parser, _AsyncHiredisParser) or not parser._connected or reader is None or stream is None:
            return bool(await super().can_read_destructive())  # type: ignore[no-untyped-call]
        if reader.gets() is not NOT_ENOUGH_DATA:
            return True
        return bool(getattr(stream, "_buffer", b"")) or stream.at_eof()
