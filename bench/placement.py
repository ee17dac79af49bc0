"""Where a benchmark's processes run, so that a rerun on a small machine gives the same figures.

On 2 cores the process being measured, its load generator and Redis share both cores as the scheduler pleases: the
measured process migrates between cores and waits behind Redis, and rates moved ±30 % from one run to the next.
HTTP: the server under test has the first CPU (one uvicorn worker: one thread does the work) and wrk and Redis share
the others. Core enqueue and claim: this process, the load generator that runs every side's client, has the first
CPU; Redis shares it for runs of one call at a time and has the others for runs of many at once
(`GeneratorPlacement` says why). Every side is placed the same way. With one CPU there is nothing to place:
everything shares it, and the benchmark's text says so.
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
# The switches (read by bench.common.switch_from_env: 1 or 0, on when unset): HTTP's, and the in-process
# benchmarks' (core enqueue, claim).
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


class GeneratorPlacement:
    """Where an in-process benchmark (core enqueue, claim) runs this process, the load generator that runs every
    side's client, and the Redis at `url`: pinned for each run, every side alike.

    One call at a time, both share the first CPU: only one of them runs at any moment (a round trip at a time), and
    apart every round trip costs two wakeups across CPUs, which on this KVM guest cost more than the work (a
    sequential PING: ~90 µs on one CPU, ~260-430 µs across two) and change with the machine's load (a CPU kept busy
    by other work wakes at once; an idle one is halted first), so the figures changed with the load rather than the
    work. Many calls at once, both are busy together: the load generator keeps the first CPU and Redis gets the
    others. Without placement the kernel chooses, and chose differently under load: that was the wide range.

    A limit, measured: a busy loop on the first CPU (which the one-at-a-time runs share with it) moved the
    sequential ours/saq ratio up by ~0.15; a busy loop on the other CPU left it in its range."""

    def __init__(self, url: str, on: bool) -> None:
        self.on = on
        self.where = placement() if on else None
        self.redis_pid = local_redis_pid(url) if self.where is not None else None

    @contextmanager
    def run(self, concurrent: bool) -> Iterator[None]:
        """Pins for one run (each thread's own affinity back after it)."""
        if self.where is None:
            yield
            return
        with ExitStack() as stack:
            stack.enter_context(pinned(os.getpid(), self.where.first))
            if self.redis_pid is not None:
                stack.enter_context(pinned(self.redis_pid, self.where.others if concurrent else self.where.first))
            yield

    def describe(self, concurrent: bool) -> str:
        """The sentence for the benchmark's text: where everything ran (`concurrent`: it has runs of many calls at
        once too)."""
        if self.where is None:
            why = "a single CPU" if self.on else f"{CORE_SWITCH}=0"
            return f"No placement ({why}): the load generator and Redis share the CPUs as the kernel pleases."
        generator = "the load generator (this process: every side's client)"
        redis = "" if self.redis_pid is not None else " (Redis is not a process of this machine: it is not placed)"
        alone = f"one call at a time, {generator} and Redis both on CPU {_cpus(self.where.first)}"
        text = f"Placement (sched_setaffinity, every side alike; {CORE_SWITCH}=0 turns it off{redis}): {alone}"
        if concurrent:
            text += f"; many at once, {self.where.describe(generator, 'Redis')}"
        return (
            f"{text}. Apart, a round trip at a time costs two wakeups across CPUs, which on a VM cost more than the "
            "work and change with the machine's load (see bench/placement.py)."
        )
