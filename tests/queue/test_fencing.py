"""Fenced leases: a worker whose lease ran out, and whose call was claimed again, can write nothing for that call.

The lease is made to run out by the store's own clock (a lease of 0 ms is due at once on Redis TIME), never by
sleeping: each step waits on states only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from redis.asyncio import Redis

from callqueue.clients.agent import StartOutcome
from callqueue.dispatch.worker import DispatchWorker
from callqueue.settings import load_settings
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore, StaleClaim

CALL = ("+14155550123", "fence", {"flow_name": "f"})
RATE, SLOTS, LEASE = 100_000, 100_000, 60_000


async def snapshot(store: CallStore, call_id: str) -> dict[str, Any]:
    """Everything a write for the call could touch: its record, history, and the queue's indexes and counts."""
    r, k = store.redis, store.keys
    return {
        "record": await r.hgetall(k.call(call_id)),  # type: ignore[misc]
        "history": await r.lrange(k.history(call_id), 0, -1),  # type: ignore[misc]
        "dispatching": await r.zrange(k.dispatching, 0, -1, withscores=True),
        "queued": await r.zrange(k.queued, 0, -1),
        "in_flight": await r.zrange(k.in_flight, 0, -1),
        "tracking": await r.zrange(k.tracking, 0, -1),
        "pace": await r.zrange(k.pace, 0, -1),
        "outbox": await r.zrange(k.outbox, 0, -1),
        "counts": await r.hgetall(k.counts),  # type: ignore[misc]
    }


async def reclaimed_by_another(store: CallStore) -> tuple[str, int, int]:
    """Worker A claims the call with a lease that runs out at once; the reconciler takes the lease over, finds the
    agent never got it and requeues it; worker B claims it. Returns (call id, A's token, B's token)."""
    call_id = (await store.enqueue(*CALL)).call_id
    a = await store.claim(RATE, SLOTS, 0, "worker-a")
    assert a.outcome == "claimed" and a.call_id == call_id
    taken = await store.take_over_dispatches(LEASE)
    assert [c for c, _ in taken] == [call_id]
    reconciler_token = taken[0][1]
    assert reconciler_token > a.token
    assert await store.requeue(call_id, {"reason": "agent has no record"}, fence=reconciler_token)
    b = await store.claim(RATE, SLOTS, LEASE, "worker-b")
    assert b.outcome == "claimed" and b.call_id == call_id and b.token > reconciler_token
    return call_id, a.token, b.token


def run(redis_url: str, prefix: str, body: Any) -> Any:
    async def main() -> Any:
        client = Redis.from_url(redis_url, decode_responses=True)
        try:
            return await body(CallStore(client, prefix))
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_a_stale_worker_can_neither_mark_requeue_fail_retry_nor_extend_the_call(
    redis_url: str, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(store: CallStore) -> None:
        call_id, stale, current = await reclaimed_by_another(store)
        before = await snapshot(store, call_id)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="callqueue.dispatch"):
            writes = [
                store.mark_dispatched(call_id, "req-stale", {}, 1_000, fence=stale),
                store.requeue(call_id, {"reason": "stale"}, fence=stale),
                store.transition(call_id, CallStatus.FAILED, "dispatcher", {"reason": "x"}, fence=stale),
                store.pace_retry(call_id, RATE, LEASE, fence=stale),
                store.extend_lease(call_id, LEASE, fence=stale, fields={"trk_dispatch_unknown": "x"}),
            ]
            for write in writes:
                with pytest.raises(StaleClaim) as refused:
                    await write
                assert (refused.value.mine, refused.value.current) == (stale, current)
        assert await snapshot(store, call_id) == before, "a refused write changed nothing"
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == len(writes), lines  # one line per refused write
        assert all(call_id in line and f"claim {stale} is stale" in line and f"claim is {current}" in line
                   for line in lines), lines  # fmt: skip
        # The current owner's writes go through.
        assert await store.mark_dispatched(call_id, "req-b", {}, 1_000, fence=current) is CallStatus.DISPATCHING
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.DISPATCHED and record.request_uuid == "req-b"
        assert record.claim_token == current

    run(redis_url, key_prefix, body)


def test_the_reconciler_taking_over_a_lease_fences_the_worker_that_held_it(redis_url: str, key_prefix: str) -> None:
    async def body(store: CallStore) -> None:
        call_id = (await store.enqueue(*CALL)).call_id
        a = await store.claim(RATE, SLOTS, 0, "worker-a")
        [(taken_id, token)] = await store.take_over_dispatches(LEASE)
        assert taken_id == call_id and (await store.get(call_id)).claim_token == token  # type: ignore[union-attr]
        before = await snapshot(store, call_id)
        with pytest.raises(StaleClaim):
            await store.transition(call_id, CallStatus.FAILED, "dispatcher", {"reason": "late"}, fence=a.token)
        assert await snapshot(store, call_id) == before
        # Writes without a claim (a callback, the tracker) are not fenced: they carry their own evidence.
        changed, _ = await store.transition(call_id, CallStatus.RINGING, "webhook", {}, {"call_uuid": "cu-1"})
        assert changed

    run(redis_url, key_prefix, body)


class HeldAgent:
    """An agent whose start answers only when the test lets it: the worker is stuck in its start meanwhile."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.answer = StartOutcome("accepted", "ok", request_uuid="req-from-stale-worker")

    async def start(self, attempt_id: str, body: dict[str, Any]) -> StartOutcome:
        self.started.set()
        await self.release.wait()
        return self.answer


@pytest.mark.parametrize(
    "answer",
    [
        StartOutcome("accepted", "ok", request_uuid="req-from-stale-worker"),
        StartOutcome("rejected", "agent said 400"),
        StartOutcome("unknown", "timed out"),
        StartOutcome("retryable", "503", retry_after_s=0.0),
    ],
    ids=lambda o: o.kind,
)
def test_a_worker_resuming_after_its_call_was_claimed_again_stops_without_writing(
    redis_url: str, key_prefix: str, caplog: pytest.LogCaptureFixture, answer: StartOutcome
) -> None:
    settings = load_settings({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "MAX_DISPATCH_ATTEMPTS": "1"})

    async def body(store: CallStore) -> None:
        call_id = (await store.enqueue(*CALL)).call_id
        agent = HeldAgent()
        agent.answer = answer
        worker = DispatchWorker(store, agent, settings, "worker-a")  # type: ignore[arg-type]
        a = await store.claim(RATE, SLOTS, 0, "worker-a")
        assert a.record is not None
        stuck = asyncio.create_task(worker.dispatch(a.record, a.token))
        await agent.started.wait()
        [(_, reconciler)] = await store.take_over_dispatches(LEASE)
        await store.requeue(call_id, {"reason": "agent has no record"}, fence=reconciler)
        b = await store.claim(RATE, SLOTS, LEASE, "worker-b")
        assert b.call_id == call_id
        before = await snapshot(store, call_id)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="callqueue.dispatch"):
            agent.release.set()
            await stuck
        assert await snapshot(store, call_id) == before
        refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refused) == 1 and call_id in refused[0], refused
        assert f"claim {a.token} is stale" in refused[0] and f"claim is {b.token}" in refused[0]
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.DISPATCHING and record.claim_token == b.token

    run(redis_url, key_prefix, body)
