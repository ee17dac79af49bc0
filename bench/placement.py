"""Where the HTTP benchmark's processes run, so that a rerun on a small machine gives the same figures.

On 2 cores the server under test, wrk and Redis share both cores as the scheduler pleases: the server migrates
between cores and waits behind Redis or wrk, and its rate moved ±30 % from one run to the next. Here the server under
test has the first CPU (one uvicorn worker: one thread does the work) and wrk and Redis share the others. Both sides
are placed the same way. With one CPU there is nothing to place: everything shares it, and the
benchmark's text says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis as sync_redis

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Placement:
    server: frozenset[int]  # the CPU of the server under test
    others: frozenset[int]  # wrk's and Redis's

    def describe(self) -> str:
        return f"server on CPU {_cpus(self.server)}, wrk and Redis on CPU {_cpus(self.others)}"


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def placement() -> Placement | None:
    """The first CPU this process may use for the server, the rest for wrk and Redis; None with a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return Placement(frozenset(cpus[:1]), frozenset(cpus[1:]))


def local_redis_pid(url: str) -> int | None:
    """The pid of the Redis at `url` when it runs on this machine (its INFO names it), else None."""
    if urlparse(url).hostname not in LOOPBACK:
        return None
    client = sync_redis.Redis.from_url(url)
    try:
        info: dict[str, object] = client.info("server")  # type: ignore[assignment]
        pid = int(str(info["process_id"]))
    finally:
        client.close()
    try:  # a Redis in a container answers with a pid of its own namespace: only a redis-server here is placed
        return pid if Path(f"/proc/{pid}/comm").read_text().startswith("redis") else None
    except OSError:
        return None


@contextmanager
def pinned(pid: int, cpus: frozenset[int]) -> Iterator[None]:
    """Every thread of `pid` on `cpus` (threads it starts later inherit it); their own affinity back on exit."""
    previous: dict[int, set[int]] = {}
    try:
        for tid in (int(t) for t in os.listdir(f"/proc/{pid}/task")):
            try:
                previous[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:  # the thread ended meanwhile
                continue
        yield
    finally:
        for tid, cpus_before in previous.items():
            try:
                os.sched_setaffinity(tid, cpus_before)
            except ProcessLookupError:
                continue


def pin_self(cpus: frozenset[int]) -> None:
    """For a child about to exec (subprocess's preexec_fn): run on `cpus`."""
    os.sched_setaffinity(0, cpus)
