"""What a dispatch worker does to take the next call (CLAIM, then read the record) beside saq's `dequeue`.

Measured only: the claim script is being changed (fencing) elsewhere. Both sides take calls one at a time from a
queue filled beforehand, on the same Redis, in interleaved rounds; median and range.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import redis as sync_redis
from saq import Queue as SaqQueue

from bench.common import redis_url
from bench.enqueue import CAMPAIGN, CONFIG, PHONE, ROUNDS, _stats
from callqueue.settings import load_settings
from callqueue.store.calls import CallStore
from callqueue.store.connection import service_redis

CALLS = 1500
NO_LIMIT = 10**9


async def _rounds() -> tuple[list[float], list[float]]:
    url = redis_url()
    settings = load_settings({**os.environ, "REDIS_URL": url})
    ours = service_redis(settings)
    saq = SaqQueue.from_url(url, name="bench-saq-claim")
    stats = sync_redis.Redis.from_url(url)
    ours_rates: list[float] = []
    saq_rates: list[float] = []
    for r in range(ROUNDS):
        stats.flushdb()
        store = CallStore(ours, f"bench-claim-{r}")
        for _ in range(CALLS):
            await store.enqueue(PHONE, CAMPAIGN, CONFIG, max_queued=NO_LIMIT)
            await saq.enqueue("place_call", phone_number=PHONE, campaign_id=CAMPAIGN, call_config=CONFIG)

        async def claim_ours(store: CallStore = store) -> None:
            claim = await store.claim(NO_LIMIT, NO_LIMIT, 60_000, "bench-worker")
            assert claim.outcome == "claimed" and claim.call_id, claim
            assert await store.get(claim.call_id) is not None

        async def claim_saq() -> None:
            assert await saq.dequeue() is not None

        sides = [(claim_ours, ours_rates), (claim_saq, saq_rates)]
        for one, rates in sides if r % 2 == 0 else reversed(sides):
            started = time.perf_counter()
            for _ in range(CALLS):
                await one()
            rates.append(CALLS / (time.perf_counter() - started))
        print(f"[bench] claim round {r + 1}/{ROUNDS}", file=sys.stderr, flush=True)
    stats.flushdb()
    stats.close()
    await ours.aclose()
    await saq.disconnect()
    return ours_rates, saq_rates


def run() -> str:
    ours, saq = asyncio.run(_rounds())
    ratios = [o / s for o, s in zip(ours, saq, strict=True)]
    return "\n".join(
        [
            "## Claim and read vs saq dequeue (measured only)",
            "",
            f"A worker's step, one at a time from {CALLS:,} queued calls, {ROUNDS} interleaved rounds, median "
            "(min–max). Ours: CLAIM (limits, campaign turn, lease) then the record's read (a MULTI of HGETALL and "
            "two LRANGE): 2 round trips. saq: `dequeue` (BLMOVE, then GET of the job): 2 round trips.",
            "",
            f"- ours {_stats(ours)} claims/s, saq {_stats(saq)} dequeues/s; ours/saq **{_stats(ratios, 2)}** "
            "(issue 12's goal ≥ 1.5, for the claim script's owner to follow up)",
            "",
        ]
    )


if __name__ == "__main__":
    print(run())
