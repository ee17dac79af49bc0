"""One status check's decisions, against a Plivo and an agent whose answers the test sets, on a real Redis store.

- The stale-record window: a check that learns the call uuid (from the agent) as the miss deadline passes decides
  on the record *after* that observation: it does not mark the call `missed` in that window (Plivo is dialling it,
  and its answer settles it); if it is later missed, Plivo's record is fetched by uuid and the call is hung up by
  uuid, never searched by destination or cancelled with DELETE Request.
- PLIVO_QUEUE_TIMEOUT: a call Plivo keeps queued past it is deleted at Plivo and ends `missed` with the reason.

Time passing is stood in for by moving the record's own timestamps back (dispatched_at, trk_*), never by sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from callqueue.clients.agent import AgentCallStatus
from callqueue.settings import load_timing
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from callqueue.tracking.cadence import Cadence
from callqueue.tracking.checker import Checker
from callqueue.tracking.sources import Sources
from tests.tracking.fakes import FakeAgent, FakePlivo

PHONE = "+14155550142"
REQ = "req-0001"
CUID = "cuid-0001"
TIMING = load_timing({"AUTO_MISS_TIMEOUT": "60", "STATUS_CHECK_INTERVAL": "5", "PLIVO_QUEUE_TIMEOUT": "120"})


def run(redis_url: str, prefix: str, body: Callable[[CallStore], Awaitable[None]]) -> None:
    async def main() -> None:
        client = Redis.from_url(redis_url, decode_responses=True)
        try:
            await body(CallStore(client, prefix))
        finally:
            await client.aclose()

    asyncio.run(main())


async def dispatched_call(store: CallStore, seconds_ago: int) -> str:
    """A call the agent accepted `seconds_ago` (Plivo's request uuid known, no call uuid yet)."""
    call_id = (await store.enqueue(PHONE, "checker", {"flow_name": "f"})).call_id
    claim = await store.claim(1000, 1000, 60_000, "w")
    assert claim.call_id == call_id
    assert await store.mark_dispatched(call_id, REQ, {}, 60_000, fence=claim.token) is CallStatus.DISPATCHING
    await age(store, call_id, "dispatched_at", seconds_ago)
    return call_id


async def age(store: CallStore, call_id: str, field: str, seconds: int) -> None:
    """Stand in for time passing: the record's timestamp `field` moves `seconds` into the past."""
    key = store.keys.call(call_id)
    await store.redis.hset(key, field, str(store.now_ms() - seconds * 1000))  # type: ignore[misc]


def checker(store: CallStore, plivo: FakePlivo, agent: FakeAgent) -> Checker:
    return Checker(store, Sources(plivo, agent), plivo, Cadence(TIMING))  # type: ignore[arg-type]


def test_a_call_uuid_learned_as_the_miss_deadline_passes_is_decided_on_the_fresh_record(
    redis_url: str, key_prefix: str
) -> None:
    async def body(store: CallStore) -> None:
        plivo, agent = FakePlivo(), FakeAgent()
        call_id = await dispatched_call(store, seconds_ago=61)  # past AUTO_MISS_TIMEOUT=60
        # The window: the agent has the call uuid (Plivo is dialling), Plivo lists it neither live nor ended yet.
        agent.known = AgentCallStatus(call_id, REQ, CUID, "initiated", None, None, None)
        check = checker(store, plivo, agent)
        await check.check(call_id)
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.INITIATED and record.call_uuid == CUID
        assert "DELETE Request" not in plivo.methods() and "find_calls" not in plivo.methods(), plivo.requests
        # Then the person answers and hangs up: the next checks follow the call by uuid to its real outcome.
        plivo.live[CUID] = {"call_uuid": CUID, "call_status": "in-progress"}
        await check.check(call_id)
        assert (await store.get(call_id)).status is CallStatus.IN_PROGRESS  # type: ignore[union-attr]
        del plivo.live[CUID]
        plivo.cdrs[CUID] = {"call_uuid": CUID, "call_status": "completed", "call_duration": 31,
                            "hangup_cause_name": "Normal Hangup", "end_time": "2026-01-01 00:00:31+00:00"}  # fmt: skip
        await check.check(call_id)
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.COMPLETED and record.duration == 31
        assert [m for m in plivo.methods() if m.startswith("DELETE") or m == "find_calls"] == []

    run(redis_url, key_prefix, body)


def test_a_call_missed_after_its_uuid_is_known_is_fetched_and_hung_up_by_uuid(redis_url: str, key_prefix: str) -> None:
    async def body(store: CallStore) -> None:
        plivo, agent = FakePlivo(), FakeAgent()
        call_id = await dispatched_call(store, seconds_ago=61)
        agent.known = AgentCallStatus(call_id, REQ, CUID, "initiated", None, None, None)
        check = checker(store, plivo, agent)
        await check.check(call_id)  # learns the uuid: the miss deadline counts from here
        await age(store, call_id, "trk_uuid_seen_ms", 61)  # a minute on, Plivo still shows it neither live nor ended
        plivo.requests.clear()
        await check.check(call_id)
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.MISSED, record
        assert "AUTO_MISS_TIMEOUT=60s" in (record.reason or "")
        assert ("call_detail", CUID) in plivo.requests  # Plivo's record fetched by uuid
        assert plivo.requests[-1] == ("DELETE Call", CUID)  # hung up by uuid, so the phone stops ringing
        assert "find_calls" not in plivo.methods() and "DELETE Request" not in plivo.methods(), plivo.requests

    run(redis_url, key_prefix, body)


def test_a_call_kept_queued_at_plivo_past_plivo_queue_timeout_is_deleted_there_and_missed(
    redis_url: str, key_prefix: str
) -> None:
    async def body(store: CallStore) -> None:
        plivo, agent = FakePlivo(), FakeAgent()
        call_id = await dispatched_call(store, seconds_ago=0)
        plivo.queued[REQ] = {"request_uuid": REQ, "call_status": "queued"}
        check = checker(store, plivo, agent)
        await check.check(call_id)  # first seen queued: the clock of PLIVO_QUEUE_TIMEOUT starts
        for _ in range(3):  # still queued, within the bound: waits its turn, never missed
            await check.check(call_id)
        assert (await store.get(call_id)).status is CallStatus.INITIATED  # type: ignore[union-attr]
        assert "DELETE Request" not in plivo.methods()
        await age(store, call_id, "trk_queued_since_ms", 121)  # PLIVO_QUEUE_TIMEOUT=120 passed, still queued
        await check.check(call_id)
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.MISSED
        assert plivo.requests[-1] == ("DELETE Request", REQ) and REQ not in plivo.queued
        assert "PLIVO_QUEUE_TIMEOUT=120s" in (record.reason or "") and "deleted at Plivo" in (record.reason or "")
        in_flight = await store.redis.zrange(store.keys.in_flight, 0, -1)
        tracked = await store.redis.zrange(store.keys.tracking, 0, -1)
        assert call_id not in in_flight and call_id not in tracked  # its slot is free, no more polling

    run(redis_url, key_prefix, body)


def test_a_queued_call_that_left_the_queue_as_it_was_deleted_is_followed_not_missed(
    redis_url: str, key_prefix: str
) -> None:
    async def body(store: CallStore) -> None:
        plivo, agent = FakePlivo(), FakeAgent()
        call_id = await dispatched_call(store, seconds_ago=0)
        plivo.queued[REQ] = {"request_uuid": REQ, "call_status": "queued"}
        check = checker(store, plivo, agent)
        await check.check(call_id)
        await age(store, call_id, "trk_queued_since_ms", 121)
        real_cancel = plivo.cancel_request

        async def left_the_queue_just_now(request_uuid: str) -> bool:
            plivo.queued.pop(request_uuid)  # Plivo started dialling it an instant before the DELETE
            return await real_cancel(request_uuid)

        plivo.cancel_request = left_the_queue_just_now  # type: ignore[method-assign]
        await check.check(call_id)
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.INITIATED  # may ring: not declared missed
        assert call_id in await store.redis.zrange(store.keys.tracking, 0, -1)

    run(redis_url, key_prefix, body)
