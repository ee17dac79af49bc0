"""What a dispatch worker does to take the next call beside saq's `dequeue`, which returns the job.

Ours: `CallStore.claim`, which returns the claimed call's record (the fields the worker starts it with) from the
claim script itself: one EVALSHA per call in the plain case (store/claim_script.py). saq: `dequeue` (BLMOVE from
the queued list to the active one, then GET of the job, deserialized): 2 round trips. Both sides take calls one at
a time from a queue filled beforehand, on the same Redis, with the same payload, in interleaved rounds (the order
alternates; in a round, the sides take turns); median and range. Each side also reports its Redis CPU per call
(INFO cpu, used_cpu_user + sys over its turns, divided by the calls): it includes the server's event loop, not only
the commands. Ours also reports what Redis spent inside the script (INFO commandstats over its turns): the EVALSHA,
and the commands it called. This process (every side's client) and Redis are placed alike for both sides
(bench/placement.py), and each turn collects this process's garbage before its clock starts, so that neither
side's figure depends on the other's.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

import redis as sync_redis
from saq import Queue as SaqQueue

from bench.common import SLICES, per_round, redis_url, rounds_from_env, slice_sizes, switch_from_env
from bench.placement import CORE_SWITCH, GeneratorPlacement
from callqueue.settings import load_settings
from callqueue.store.calls import CallStore
from callqueue.store.connection import service_redis

CALLS = 3000  # per side per round, in turns of 600: at 1,500 the per-round ratios spread wider on a loaded machine
NO_LIMIT = 10**9
ROUNDS = rounds_from_env("BENCH_ROUNDS", 5)
PLACE = switch_from_env(CORE_SWITCH)
PHONE, CAMPAIGN, CONFIG = "+14155550100", "bench", {"flow_name": "demo"}  # bench.enqueue's payload
HARNESS = {"info", "flushdb", "script|load"}  # the benchmark's own commands, and a script loaded once per Redis


def _stats(values: list[float], digits: int = 0) -> str:
    fmt = f"{{:,.{digits}f}}"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def _commandstats(stats: sync_redis.Redis) -> Counter[str]:
    """Calls and µs per command so far, as `calls:NAME` and `usec:NAME`."""
    info = cast(dict[str, Any], stats.info("commandstats"))
    out: Counter[str] = Counter()
    for key, value in info.items():
        name = key.removeprefix("cmdstat_")
        if name not in HARNESS:
            out[f"calls:{name}"] += int(value["calls"])
            out[f"usec:{name}"] += int(value["usec"])
    return out


def _redis_cpu_s(stats: sync_redis.Redis) -> float:
    cpu = cast(dict[str, float], stats.info("cpu"))
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


@dataclass
class ClaimResults:
    ours: list[float]  # claims/s, one per round
    saq: list[float]  # dequeues/s, one per round
    ours_cpu: list[float]  # Redis CPU µs per call, one per round
    saq_cpu: list[float]
    ours_commands: Counter[str]  # commandstats over ours' runs
    where: str  # where the load generator and Redis ran


async def _placed() -> ClaimResults:
    url = redis_url()
    placed = GeneratorPlacement(url, PLACE)
    with placed.run(concurrent=False):
        return ClaimResults(*await _rounds(url), placed.describe(concurrent=False))


async def _rounds(url: str) -> tuple[list[float], list[float], list[float], list[float], Counter[str]]:
    """Rates (calls/s) of ours and saq per round, their Redis CPU (µs) per call per round, and the commandstats
    of ours' runs."""
    settings = load_settings({**os.environ, "REDIS_URL": url})
    ours = service_redis(settings)
    saq = SaqQueue.from_url(url, name="bench-saq-claim")
    stats = sync_redis.Redis.from_url(url)
    ours_rates: list[float] = []
    saq_rates: list[float] = []
    ours_cpu: list[float] = []
    saq_cpu: list[float] = []
    ours_commands: Counter[str] = Counter()
    for r in range(ROUNDS):
        stats.flushdb()
        store = CallStore(ours, f"bench-claim-{r}")
        for _ in range(CALLS):
            await store.enqueue(PHONE, CAMPAIGN, CONFIG, max_queued=NO_LIMIT)
            await saq.enqueue("place_call", phone_number=PHONE, campaign_id=CAMPAIGN, call_config=CONFIG)

        async def claim_ours(store: CallStore = store) -> None:
            claim = await store.claim(NO_LIMIT, NO_LIMIT, 60_000, "bench-worker")
            assert claim.outcome == "claimed" and claim.record is not None, claim

        async def claim_saq() -> None:
            assert await saq.dequeue() is not None

        sides = [(claim_ours, ours_rates, ours_cpu), (claim_saq, saq_rates, saq_cpu)]
        wall = {claim_ours: 0.0, claim_saq: 0.0}
        redis_cpu = {claim_ours: 0.0, claim_saq: 0.0}
        for share in slice_sizes(CALLS):  # each side's claims in turns, in turn with the other's
            for one, _, _ in sides if r % 2 == 0 else reversed(sides):
                gc.collect()  # the garbage of the filling and of the other side's turn is not collected on this clock
                commands_before = _commandstats(stats)
                cpu_before = _redis_cpu_s(stats)
                started = time.perf_counter()
                for _ in range(share):
                    await one()
                wall[one] += time.perf_counter() - started
                redis_cpu[one] += _redis_cpu_s(stats) - cpu_before
                if one is claim_ours:
                    ours_commands += _commandstats(stats) - commands_before
        for one, rates, cpu in sides:
            rates.append(CALLS / wall[one])
            cpu.append(redis_cpu[one] / CALLS * 1e6)
        did = f"ours {ours_rates[-1]:,.0f}/s, saq {saq_rates[-1]:,.0f}/s ({'ours' if r % 2 == 0 else 'saq'} first)"
        print(f"[bench] claim round {r + 1}/{ROUNDS}: {did}", file=sys.stderr, flush=True)
    stats.flushdb()
    stats.close()
    await ours.aclose()
    await saq.disconnect()
    return ours_rates, saq_rates, ours_cpu, saq_cpu, ours_commands


def _inside(commands: Counter[str], claims: int) -> str:
    """The EVALSHA's µs per claim, and the commands it called: per claim, µs per claim."""
    evalsha = commands["usec:evalsha"] / claims
    inner = sorted(
        (name.removeprefix("calls:"), calls / claims, commands[f"usec:{name.removeprefix('calls:')}"] / claims)
        for name, calls in commands.items()
        if name.startswith("calls:") and name != "calls:evalsha"
    )
    spent = sum(usec for _, _, usec in inner)
    listed = ", ".join(f"{name} {calls:.3g}" for name, calls, _ in inner)
    return (
        f"- Redis time per claim, ours (INFO commandstats): EVALSHA {evalsha:.1f} µs, of which the "
        f"{sum(calls for _, calls, _ in inner):.0f} commands it calls {spent:.1f} µs ({listed}); the rest is the "
        "script's own work (Lua, each call's arguments and reply)"
    )


def run() -> str:
    results = asyncio.run(_placed())
    ours, saq = results.ours, results.saq
    ratios = [o / s for o, s in zip(ours, saq, strict=True)]
    return "\n".join(
        [
            "## Claim and read vs saq dequeue",
            "",
            f"A worker's step, one at a time from {CALLS:,} queued calls per side, {ROUNDS} interleaved rounds (the "
            f"side that goes first alternates; in a round, each side's claims in {SLICES} turns taken in turn with "
            "the other's, so that both sample the same moments of the machine), median (min–max). Ours: "
            "`CallStore.claim`, one EVALSHA that applies the limits, the campaign turn and the "
            "lease and returns the call's record (the fields the worker starts it with): 1 round trip. saq: "
            "`dequeue` (BLMOVE, then GET of the job): 2 round trips. Redis CPU per call: INFO cpu over each "
            "side's turns (the server's event loop included). Each turn collects this process's garbage before its "
            f"clock starts. {results.where}",
            "",
            f"- ours {_stats(ours)} claims/s, saq {_stats(saq)} dequeues/s; ours/saq **{_stats(ratios, 2)}** "
            "(issue 12's goal ≥ 1.5)",
            f"- per round, in the order the rounds ran (ours first in odd rounds): ours {per_round(ours)} claims/s; "
            f"saq {per_round(saq)} dequeues/s; ours/saq {per_round(ratios, 2)}",
            f"- Redis CPU per call: ours {_stats(results.ours_cpu)} µs, saq {_stats(results.saq_cpu)} µs",
            _inside(results.ours_commands, CALLS * ROUNDS),
            "",
        ]
    )


if __name__ == "__main__":
    print(run())
