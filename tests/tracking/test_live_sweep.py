"""A rung call whose hang-up callback was lost is found by the live-call sweep, not left to the 5-minute safety net.

One account-wide list of live calls per sweep, shared by every rung call and every instance; nothing is asked of
Plivo while no rung call relies on callbacks. Decisions are driven step by step (sweep, then check), never timed.
"""

from __future__ import annotations

from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from callqueue.tracking.apply import apply_pushed_event
from callqueue.tracking.cadence import Cadence
from callqueue.tracking.events import CallEvent
from callqueue.tracking.live_sweep import LiveSweep
from tests.tracking.fakes import FakeAgent, FakePlivo
from tests.tracking.test_checker_decisions import CUID, TIMING, checker, dispatched_call, run

ENDED = {"call_uuid": CUID, "call_status": "completed", "call_duration": 42,
         "hangup_cause_name": "Normal Hangup", "end_time": "2026-01-01 00:00:42+00:00"}  # fmt: skip


async def rung(store: CallStore, call_uuid: str = CUID, answered: bool = True) -> str:
    """A dispatched call whose ring (and answer) callbacks arrived: events flow, so no poll watches it."""
    call_id = await dispatched_call(store, seconds_ago=5)
    status = CallStatus.IN_PROGRESS if answered else CallStatus.RINGING
    event = CallEvent(call_id, status, "webhook", {}, {"call_uuid": call_uuid})
    assert (await apply_pushed_event(store, Cadence(TIMING), event)).changed
    return call_id


def sweeper(store: CallStore, plivo: FakePlivo) -> LiveSweep:
    return LiveSweep(store, plivo, Cadence(TIMING))  # type: ignore[arg-type]


async def next_check_in_ms(store: CallStore, call_id: str) -> float:
    score = await store.redis.zscore(store.keys.tracking, call_id)
    assert score is not None
    return float(score) - store.now_ms()


def test_a_rung_call_no_longer_live_is_polled_at_once_and_settled_from_its_detail_record(
    redis_url: str, key_prefix: str
) -> None:
    async def body(store: CallStore) -> None:
        plivo, agent = FakePlivo(), FakeAgent()
        call_id = await rung(store)
        assert await next_check_in_ms(store, call_id) > Cadence(TIMING).poll_ms * 10  # the quiet safety net
        # The person hung up; Plivo's hang-up callback never reached us.
        plivo.cdrs[CUID] = ENDED
        assert await sweeper(store, plivo).sweep_once() == [call_id]
        assert plivo.requests == [("live_call_uuids", "")]  # one request for the whole account
        assert await next_check_in_ms(store, call_id) <= 0  # due now
        await checker(store, plivo, agent).check(call_id)
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.COMPLETED and record.duration == 42

    run(redis_url, key_prefix, body)


def test_a_call_still_live_or_watched_by_polls_is_left_alone(redis_url: str, key_prefix: str) -> None:
    async def body(store: CallStore) -> None:
        plivo = FakePlivo()
        talking = await rung(store, "cuid-live")
        plivo.live["cuid-live"] = {"call_uuid": "cuid-live", "call_status": "in-progress"}
        polled = await dispatched_call(store, seconds_ago=5)  # no callbacks: the checker polls it every interval
        await store.transition(polled, CallStatus.RINGING, "plivo-api:live", {}, {"call_uuid": "cuid-polled"})
        due_before = await store.redis.zscore(store.keys.tracking, talking)
        assert await sweeper(store, plivo).sweep_once() == []
        assert await store.redis.zscore(store.keys.tracking, talking) == due_before

    run(redis_url, key_prefix, body)


def test_nothing_is_asked_of_plivo_without_rung_calls_and_instances_share_one_sweep(
    redis_url: str, key_prefix: str
) -> None:
    async def body(store: CallStore) -> None:
        plivo = FakePlivo()
        await dispatched_call(store, seconds_ago=5)  # dialled, not rung yet
        assert await sweeper(store, plivo).sweep_once() == []
        assert plivo.requests == []
        await rung(store, "cuid-a")
        await rung(store, "cuid-b")
        instances = [sweeper(store, plivo) for _ in range(3)]
        found = [await sweep.sweep_once() for sweep in instances]
        assert sorted(len(f) for f in found) == [0, 0, 2]
        assert plivo.requests == [("live_call_uuids", "")]  # one sweep this period, whichever instance ran it

    run(redis_url, key_prefix, body)
