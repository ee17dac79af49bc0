"""Where a benchmark's processes run, so that a rerun on a small machine gives the same figures.

On 2 cores the process being measured, its load generator and Redis share both cores as the scheduler pleases: the
measured process migrates between cores and waits behind Redis, and rates moved ±30 % from one run to the next.
HTTP: the server under test has the first CPU (one uvicorn worker: one thread does the work) and wrk and Redis share
the others. Core enqueue and claim: this process, the load generator that runs every side's client, has the first
CPU and Redis the others. Every side is placed the same way. With one CPU there is nothing to place: everything
shares it, and the benchmark's text says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis as sync_redis

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The switches (read by bench.common.switch_from_env; on unless 0): HTTP's, and the in-process benchmarks' (core
# enqueue, claim).
HTTP_SWITCH, CORE_SWITCH = "BENCH_HTTP_PLACE", "BENCH_CORE_PLACE"


@dataclass(frozen=True)
class Placement:
    first: frozenset[int]  # the CPU of what is measured: the HTTP server, or the in-process load generator
    others: frozenset[int]  # the rest: Redis's (and wrk's)

    def describe(self, first: str, others: str) -> str:
        return f"{first} on CPU {_cpus(self.first)}, {others} on CPU {_cpus(self.others)}"


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def placement() -> Placement | None:
    """The first CPU this process may use for what is measured, the rest for Redis (and wrk); None with a single
    CPU."""
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


@contextmanager
def generator_placed(url: str, on: bool) -> Iterator[str]:
    """For an in-process benchmark (core enqueue, claim): this process, which runs every side's client, on the first
    CPU and the Redis at `url` on the others while the block runs (their own affinity back after); yields the
    sentence that says where everything ran, for the benchmark's text."""
    where = placement() if on else None
    if where is None:
        why = f"{CORE_SWITCH}=0" if not on else "a single CPU"
        yield f"No placement ({why}): the load generator and Redis share the CPUs as the kernel pleases."
        return
    redis_pid = local_redis_pid(url)
    with ExitStack() as stack:
        stack.enter_context(pinned(os.getpid(), where.first))
        if redis_pid is not None:
            stack.enter_context(pinned(redis_pid, where.others))
        redis = "Redis" if redis_pid is not None else "Redis (not a process of this machine: not placed)"
        generator = "the load generator (this process: every side's client)"
        yield f"Placement (sched_setaffinity; {CORE_SWITCH}=0 turns it off): {where.describe(generator, redis)}."
