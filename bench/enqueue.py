"""Enqueue, side by side with saq and arq on the same Redis, and over HTTP beside a bare FastAPI floor.

Honest by construction: our side is built through the service's own Redis client factory with the service's real
settings; saq's `Queue.enqueue` and arq's `enqueue_job` run on the same Redis with the same payload; rounds are
interleaved (the order rotates each round) and repeated, and every figure is the median with its range. Beside the
rates: what Redis spent per enqueue (INFO commandstats deltas), the commands and round trips it took, the keys it
left, and the load generator's own CPU. Every side's run is placed alike (bench/placement.py), warmed up and starts
with this process's garbage collected, so that no side's figure depends on the order or on the run before it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as sync_redis
from arq.connections import ArqRedis
from saq import Queue as SaqQueue

from bench.common import (
    SLICES,
    cpu_seconds,
    per_round,
    redis_url,
    rounds_from_env,
    service_serving,
    serving,
    slice_sizes,
    switch_from_env,
)
from bench.placement import (
    CORE_SWITCH,
    HTTP_SWITCH,
    GeneratorPlacement,
    Placement,
    local_redis_pid,
    pin_self,
    pinned,
    placement,
)
from callqueue.settings import load_settings
from callqueue.store.calls import CallStore
from callqueue.store.connection import service_redis
from local.redis_server import free_port

ROUNDS = rounds_from_env("BENCH_ROUNDS", 5)
CORE_PLACE = switch_from_env(CORE_SWITCH)
PHONE, CAMPAIGN, CONFIG = "+14155550100", "bench", {"flow_name": "demo"}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"  # the API passes one for every call
BODY = json.dumps({"phone_number": PHONE, "campaign_id": CAMPAIGN, "call_config": CONFIG})
MODES = (("sequential", 1, 1500), ("100 concurrent", 100, 4000))  # name, concurrency, enqueues per side per round
# Commands that are the benchmark's own (reading the stats, flushing between runs), not an enqueue's.
HARNESS_COMMANDS = {"info", "flushdb", "dbsize", "script|load", "script", "ping", "client|setinfo", "hello", "select"}

# What each side does per enqueue, read from its code (the measured commands and keys are printed beside it).
WHAT = {
    "ours": "1 round trip (EVALSHA), 12 Redis calls (7 writes): admission (the campaign's hash, 2 queue sizes), "
    "clock, acceptance number, call hash (its first history entry included), latest-calls list, queue and campaign "
    "counts (the campaign's total is their sum), queue + campaign queue, the campaign's place in the rotation "
    "looked up; the campaign's index moved and its fields written only when they change (at most once a second); "
    "no expiry until the call is final",
    "ours + Idempotency-Key": "as ours, plus the key's lookup, its own key and the call's fingerprint",
    "saq": "1 round trip (EVALSHA): job string + incomplete zset + queued list; no expiry; saq caps itself at 20 "
    "concurrent ops (its default)",
    "arq": "3 round trips, 6 top-level commands (WATCH, EXISTS, MULTI/PSETEX/ZADD/EXEC): job string with a PX "
    "expiry + queue zset",
}


@dataclass
class Sample:
    rate: float  # enqueues per second
    redis_us: float  # Redis-side µs per enqueue
    commands: float  # Redis commands per enqueue (inside scripts included)
    round_trips: float  # top-level commands per enqueue (EVALSHA, or each command of a pipeline)
    keys: float  # keys left per enqueue
    client_us: float  # the load generator's CPU µs per enqueue


@dataclass
class Series:
    samples: list[Sample] = field(default_factory=list)

    def pick(self, name: str) -> list[float]:
        return [getattr(s, name) for s in self.samples]


def _stats(values: list[float], digits: int = 0) -> str:
    med = statistics.median(values)
    fmt = f"{{:,.{digits}f}}"
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def _commandstats(client: sync_redis.Redis) -> dict[str, tuple[int, float]]:
    info: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"]))
        for name, v in info.items()
        if name.removeprefix("cmdstat_") not in HARNESS_COMMANDS
    }


def _delta(before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]) -> dict[str, tuple[int, float]]:
    out = {}
    for name, (calls, usec) in after.items():
        c0, u0 = before.get(name, (0, 0.0))
        if calls - c0:
            out[name] = (calls - c0, usec - u0)
    return out


async def _run(concurrency: int, jobs: int, one: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Run `jobs` enqueues from `concurrency` tasks; returns (wall seconds, this process's CPU seconds)."""
    left = iter(range(jobs))

    async def worker() -> None:
        for _ in left:
            await one()

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu


@dataclass
class _Tally:
    """One side's slices of one round, added up."""

    wall: float = 0.0  # seconds
    cpu: float = 0.0  # this process's CPU seconds
    jobs: int = 0
    keys: int = 0  # keys the slices added
    delta: dict[str, tuple[int, float]] = field(default_factory=dict)  # commandstats: calls, µs

    def add(self, wall: float, cpu: float, jobs: int, keys: int, delta: dict[str, tuple[int, float]]) -> None:
        self.wall, self.cpu, self.jobs, self.keys = self.wall + wall, self.cpu + cpu, self.jobs + jobs, self.keys + keys
        for name, (calls, usec) in delta.items():
            c0, u0 = self.delta.get(name, (0, 0.0))
            self.delta[name] = (c0 + calls, u0 + usec)

    def sample(self) -> Sample:
        jobs, delta = self.jobs, self.delta
        scripted = {n: v for n, v in delta.items() if n in ("evalsha", "eval")}
        if scripted:  # a script's time includes the commands it calls: count it once
            redis_us = sum(u for _, u in scripted.values())
            round_trips = sum(c for c, _ in scripted.values())
            commands = sum(c for n, (c, _) in delta.items() if n not in scripted)
        else:
            redis_us = sum(u for _, u in delta.values())
            round_trips = commands = sum(c for c, _ in delta.values())
        return Sample(
            jobs / self.wall,
            redis_us / jobs,
            commands / jobs,
            round_trips / jobs,
            self.keys / jobs,
            self.cpu / jobs * 1e6,
        )


async def _mode_round(
    stats: sync_redis.Redis,
    concurrency: int,
    jobs: int,
    order: list[str],
    sides: dict[str, Callable[[], Awaitable[Any]]],
) -> dict[str, Sample]:
    """One round of one mode: every side's `jobs` enqueues, in SLICES turns taken in `order` (A B C D A B C D ...),
    so that every side samples the same moments of a machine whose load changes; each side's turns added up."""
    stats.flushdb()
    # Before the clock starts: the scripts loaded, and as many connections opened as the run will use (each of the
    # `concurrency` tasks takes a job at once), so that no side opens them on its first round's clock.
    for side in order:
        await _run(concurrency, max(50, 2 * concurrency), sides[side])
    stats.flushdb()
    tallies = {side: _Tally() for side in order}
    for share in slice_sizes(jobs):
        for side in order:
            gc.collect()  # the garbage of the turn before (another side's) is not collected on this side's clock
            keys, before = int(stats.dbsize()), _commandstats(stats)  # type: ignore[arg-type]
            wall, cpu = await _run(concurrency, share, sides[side])
            delta = _delta(before, _commandstats(stats))
            tallies[side].add(wall, cpu, share, int(stats.dbsize()) - keys, delta)  # type: ignore[arg-type]
    return {side: tally.sample() for side, tally in tallies.items()}


@dataclass
class CoreResults:
    series: dict[str, dict[str, Series]]  # mode → side → one sample per round
    where: str  # where the load generator and Redis ran


async def core_enqueue() -> CoreResults:
    url = redis_url()
    placed = GeneratorPlacement(url, CORE_PLACE)
    return CoreResults(await _core_rounds(url, placed), placed.describe(concurrent=True))


async def _core_rounds(url: str, placed: GeneratorPlacement) -> dict[str, dict[str, Series]]:
    settings = load_settings({**os.environ, "REDIS_URL": url})
    ours = service_redis(settings)
    store = CallStore(ours, "bench-ours")
    saq = SaqQueue.from_url(url, name="bench-saq")
    arq = ArqRedis.from_url(url)
    stats = sync_redis.Redis.from_url(url)
    counter = iter(range(10**12))

    # With the arguments POST /api/calls/queue passes for a call without options of its own (api/calls.py).
    async def enqueue_ours(key: str | None = None) -> None:
        await store.enqueue(
            PHONE,
            CAMPAIGN,
            CONFIG,
            key,
            max_queued=settings.max_queued_calls,
            retention_s=settings.call_retention,
            campaign_retention_s=settings.campaign_retention,
            traceparent=TRACEPARENT,
        )

    async def enqueue_ours_key() -> None:
        await enqueue_ours(f"bench-{next(counter)}")

    async def enqueue_saq() -> None:
        await saq.enqueue("place_call", phone_number=PHONE, campaign_id=CAMPAIGN, call_config=CONFIG)

    async def enqueue_arq() -> None:
        await arq.enqueue_job("place_call", PHONE, CAMPAIGN, CONFIG, _queue_name="bench-arq")

    sides: dict[str, Callable[[], Awaitable[Any]]] = {
        "ours": enqueue_ours,
        "ours + Idempotency-Key": enqueue_ours_key,
        "saq": enqueue_saq,
        "arq": enqueue_arq,
    }
    results: dict[str, dict[str, Series]] = {m: {s: Series() for s in sides} for m, _, _ in MODES}
    names = list(sides)
    for r in range(ROUNDS):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate: no side always runs first
        for mode, concurrency, jobs in MODES:
            with placed.run(concurrent=concurrency > 1):
                samples = await _mode_round(stats, concurrency, jobs, order, sides)
            for side, sample in samples.items():
                results[mode][side].samples.append(sample)
        did = "; ".join(
            f"{mode}: " + ", ".join(f"{side} {by_side[side].samples[-1].rate:,.0f}/s" for side in order)
            for mode, by_side in results.items()
        )
        print(f"[bench] enqueue core round {r + 1}/{ROUNDS}: {did}", file=sys.stderr, flush=True)
    stats.flushdb()
    stats.close()
    await ours.aclose()
    await saq.disconnect()
    await arq.aclose()
    return results


def _ratio(a: Series, b: Series) -> str:
    """Per-round ratios (the two ran in the same round, next to each other): median and range."""
    return _stats([x.rate / y.rate for x, y in zip(a.samples, b.samples, strict=True)], 2)


def core_section(core: CoreResults) -> list[str]:
    results = core.series
    jobs = ", ".join(f"{mode} {n:,}" for mode, _, n in MODES)
    lines = [
        "### Core enqueue (the store call alone, no HTTP)",
        "",
        f"{ROUNDS} interleaved rounds (the order rotates each round). In a round, per mode: Redis flushed, every "
        f"side warmed up, then every side's enqueues ({jobs}) in {SLICES} turns taken in turn with the other sides' "
        "(A B C D A B C D ...: the sides sample the same moments of the machine), this process's garbage collected "
        "before each turn's clock starts. "
        f"{core.where} "
        "Ours through `service_redis` (the service's client and its settings, the arguments the API passes); saq "
        "0.26 `Queue.enqueue` and arq 0.28 `enqueue_job` with their default clients and settings (saq's own cap of "
        "20 concurrent operations included: at 100 concurrent it runs 20 at a time); the same phone number, "
        "campaign and call_config. "
        "Median (min–max).",
        "",
        "| mode | side | enqueues/s | Redis µs/enqueue | commands/enqueue | top-level commands | keys left/enqueue "
        "| load generator CPU µs/enqueue |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, series in results.items():
        for side, s in series.items():
            lines.append(
                f"| {mode} | {side} | {_stats(s.pick('rate'))} | {_stats(s.pick('redis_us'), 1)} "
                f"| {_stats(s.pick('commands'), 1)} | {_stats(s.pick('round_trips'), 1)} "
                f"| {_stats(s.pick('keys'), 2)} | {_stats(s.pick('client_us'))} |"
            )
    lines += ["", "Ratios, per round (median, min–max):", ""]
    for mode, by_side in results.items():
        lines.append(
            f"- {mode}: ours/saq **{_ratio(by_side['ours'], by_side['saq'])}**, with an Idempotency-Key "
            f"**{_ratio(by_side['ours + Idempotency-Key'], by_side['saq'])}**; "
            f"ours/arq {_ratio(by_side['ours'], by_side['arq'])}"
        )
    lines += ["", "Per round, in the order the rounds ran (enqueues/s):", ""]
    for mode, by_side in results.items():
        lines += [f"- {mode}, {side}: {per_round(s.pick('rate'))}" for side, s in by_side.items()]
    lines += ["", "What each side does per enqueue:", ""]
    lines += [f"- {side}: {what}" for side, what in WHAT.items()]
    return [*lines, ""]


# --- HTTP ----------------------------------------------------------------------------------------------------------

HTTP_ROUNDS = rounds_from_env("BENCH_HTTP_ROUNDS", 6)
HTTP_PLACE = switch_from_env(HTTP_SWITCH)
HTTP_SECONDS = 5
HTTP_WARMUP_SECONDS = 1
HTTP_IDLE_SECONDS = 5
HTTP_CONNECTIONS = (16, 64)
# ours; issue 12's floor (a bare FastAPI route); the same floor on a plain Starlette route, the kind ours is served on.
HTTP_SIDES = ("ours", "bare", "plain")
WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""


@dataclass
class WrkRun:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    wrk_cpu: float  # wrk's CPU, in cores
    server_us: float = 0.0  # the server process's CPU µs per request


@dataclass
class HttpResults:
    runs: dict[int, dict[str, list[WrkRun]]]  # connections → side → one run per round
    idle_ms_per_s: dict[str, float]  # each server's CPU with no request (its background work), ms per second
    where: Placement | None
    redis_placed: bool  # False when Redis is not a process of this machine


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str, connections: int, seconds: float, script: str, server_pid: int, cpus: frozenset[int] | None
) -> WrkRun:
    """wrk (one thread, a second process, on `cpus`) against `url`; its CPU from the children's rusage, the
    server's from /proc (CPU per request holds up on a loaded machine better than requests per second)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = cpu_seconds(server_pid)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
        check=True,
        capture_output=True,
        text=True,
        preexec_fn=None if cpus is None else (lambda: pin_self(cpus)),
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = cpu_seconds(server_pid) - server_before
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / seconds
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        raise RuntimeError(f"wrk saw socket errors against {url}: {errors.group(0)}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkRun(rps, p50, p99, int(bad.group(1)) if bad else 0, cpu, server_cpu / requests * 1e6)


@contextmanager
def bare_serving(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    args = [sys.executable, "-m", "bench.bare_app", str(port)]
    with serving(args, port, "/api/health", {**os.environ, "LOG_LEVEL": "WARNING", **env}) as served:
        yield served


def _idle_ms_per_s(pids: dict[str, int]) -> dict[str, float]:
    """Each server's CPU while nobody sends it a request: what its background work costs, in ms per second."""
    before = {side: cpu_seconds(pid) for side, pid in pids.items()}
    time.sleep(HTTP_IDLE_SECONDS)
    return {side: (cpu_seconds(pid) - before[side]) / HTTP_IDLE_SECONDS * 1000 for side, pid in pids.items()}


def http_enqueue() -> HttpResults:
    if shutil.which("wrk") is None:
        raise SystemExit("the HTTP enqueue benchmark needs wrk on PATH: install Debian's wrk (apt-get install wrk)")
    url = redis_url()
    env = {"REDIS_URL": url, "DISPATCH_WORKERS": "0", "MAX_QUEUED_CALLS": "10000000"}
    runs: dict[int, dict[str, list[WrkRun]]] = {c: {side: [] for side in HTTP_SIDES} for c in HTTP_CONNECTIONS}
    where = placement() if HTTP_PLACE else None
    others = where.others if where else None
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        script = str(Path(tmp, "post.lua"))
        Path(script).write_text(WRK_SCRIPT.format(body=BODY))
        ours = stack.enter_context(service_serving({**env, "REDIS_KEY_PREFIX": "bench-http"}))
        bare = stack.enter_context(bare_serving(env))
        servers = {
            "ours": (f"{ours[0]}/api/calls/queue", ours[1]),
            "bare": (f"{bare[0]}/api/calls/queue", bare[1]),
            "plain": (f"{bare[0]}/plain/calls/queue", bare[1]),  # the same server as bare: another route
        }
        redis_pid = local_redis_pid(url)
        if where is not None:
            for pid in (ours[1], bare[1]):
                stack.enter_context(pinned(pid, where.first))
            if redis_pid is not None:
                stack.enter_context(pinned(redis_pid, where.others))
        idle = _idle_ms_per_s({"ours": ours[1], "bare": bare[1]})
        for r in range(HTTP_ROUNDS):
            for c in HTTP_CONNECTIONS:
                for side in HTTP_SIDES[r % 3 :] + HTTP_SIDES[: r % 3]:  # who goes first rotates
                    target, pid = servers[side]
                    wrk(target, c, HTTP_WARMUP_SECONDS, script, pid, others)
                    runs[c][side].append(wrk(target, c, HTTP_SECONDS, script, pid, others))
            print(f"[bench] enqueue HTTP round {r + 1}/{HTTP_ROUNDS}", file=sys.stderr, flush=True)
    return HttpResults(runs, idle, where, redis_pid is not None)


def _placement_text(results: HttpResults) -> str:
    where = results.where
    if where is None:
        return f"No placement (a single CPU, or {HTTP_SWITCH}=0): processes share the CPUs as the kernel pleases. "
    redis = "" if results.redis_placed else " (Redis is not a process of this machine: not placed)"
    return (
        f"Placement (sched_setaffinity; {HTTP_SWITCH}=0 turns it off): {where.describe('server', 'wrk and Redis')}"
        f"{redis}; the server not "
        "being measured idles beside it (its background work: the last line). "
    )


def http_section(results: HttpResults) -> list[str]:
    lines = [
        "### HTTP enqueue (`POST /api/calls/queue`, one uvicorn worker)",
        "",
        f"wrk 4.1 (one thread, its own process), {HTTP_ROUNDS} interleaved rounds (the side that goes first "
        f"rotates); each run is a {HTTP_WARMUP_SECONDS} s warm-up at its concurrency, then {HTTP_SECONDS} s "
        f"measured. {_placement_text(results)}"
        "Floor: bench/bare_app.py, a bare FastAPI route served exactly as the service is "
        "(`callqueue.serving.serve`: the service's uvicorn settings, its startup heap frozen for the garbage "
        "collector) doing the same validation (request model, call_config rules) and one Redis SET through the "
        "service's client. `bare` is that route on FastAPI (issue 12's floor); `plain` is the same work on a plain "
        "Starlette route in the same server process: the service serves its enqueue on such a route (no FastAPI "
        "request handler), so `plain` is the floor for the route kind ours uses. Median (min–max).",
        "",
        "| connections | side | requests/s | p50 ms | p99 ms | non-2xx | server CPU µs/request | wrk CPU (cores) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c, sides in results.runs.items():
        for side, runs in sides.items():
            lines.append(
                f"| {c} | {side} | {_stats([x.rps for x in runs])} | {_stats([x.p50_ms for x in runs], 2)} "
                f"| {_stats([x.p99_ms for x in runs], 2)} | {sum(x.non_2xx for x in runs)} "
                f"| {_stats([x.server_us for x in runs])} | {_stats([x.wrk_cpu for x in runs], 2)} |"
            )
    lines.append("")
    for c, sides in results.runs.items():
        for floor, name in (("bare", "bare FastAPI floor"), ("plain", "plain Starlette floor")):
            pairs = list(zip(sides["ours"], sides[floor], strict=True))
            ratios = [o.rps / b.rps for o, b in pairs]
            cpu = [b.server_us / o.server_us for o, b in pairs]
            lines.append(
                f"- c{c}: ours/{name} **{_stats(ratios, 2)}** in requests/s, {_stats(cpu, 2)} in server CPU per "
                "request (floor's CPU / ours; per round)"
            )
    idle = results.idle_ms_per_s
    lines.append(
        f"- with no request, over {HTTP_IDLE_SECONDS} s: ours used {idle['ours']:.1f} ms of CPU per second (its "
        f"background loops: dispatch reconciliation, tracking, planner, history...), the floor {idle['bare']:.1f}"
    )
    return [*lines, ""]


SECTIONS = ("core", "http")


def run(which: str = "all") -> str:
    """The enqueue section of bench/results.md; `which`: core, http or all (`make bench` runs all)."""
    if which not in (*SECTIONS, "all"):
        raise SystemExit(f"usage: python -m bench.enqueue [core|http|all] (got {which!r})")
    sync_redis.Redis.from_url(redis_url()).flushdb()
    lines = ["## Enqueue", ""]
    if which in ("core", "all"):
        lines += core_section(asyncio.run(core_enqueue()))
    if which in ("http", "all"):
        lines += http_section(http_enqueue())
    sync_redis.Redis.from_url(redis_url()).flushdb()
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 2:
        raise SystemExit("usage: python -m bench.enqueue [core|http|all]")
    print(run(sys.argv[1] if len(sys.argv) > 1 else "all"))
