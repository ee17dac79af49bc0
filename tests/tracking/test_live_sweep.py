"""The live-call sweep: a rung call whose hang-up callback was lost is found, not left to the 5-minute safety net;
a call known by its request uuid only (no callbacks: the stock agent) learns its call uuid from the live list.

One account-wide list of live calls per sweep, shared by every call and every instance; nothing is asked of Plivo
while no call needs it. Decisions are driven step by step (sweep, then check), never timed: time passing is stood
in for by moving the lock's and the record's timestamps back.
"""

from __future__ import annotations

from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from callqueue.tracking.apply import apply_pushed_event
from callqueue.tracking.cadence import Cadence
from callqueue.tracking.events import CallEvent
from callqueue.tracking.live_sweep import LiveSweep
from tests.call_log_lines import call_of_each_line
from tests.tracking.fakes import FakeAgent, FakePlivo
from tests.tracking.test_checker_decisions import CUID, REQ, TIMING, age, checker, dispatched_call, run

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
    return LiveSweep(store, plivo, TIMING)  # type: ignore[arg-type]


async def last_sweep_ago(store: CallStore, seconds: float) -> None:
    """Stand in for time passing since the last sweep: the lock's Redis time moves `seconds` into the past."""
    last = await store.redis.get(store.keys.live_sweep)
    assert last is not None
    await store.redis.set(store.keys.live_sweep, str(int(last) - int(seconds * 1000)), px=60_000)


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
        assert (await sweeper(store, plivo).sweep_once()).ended == [call_id]
        assert plivo.requests == [("live_call_uuids", "")]  # one request for the whole account
        assert await next_check_in_ms(store, call_id) <= 0  # due now
        await checker(store, plivo, agent).check(call_id)
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.COMPLETED and record.duration == 42

    run(redis_url, key_prefix, body)


def test_a_hang_up_callback_landing_during_the_sweep_leaves_the_call_settled_and_unreported(
    redis_url: str, key_prefix: str
) -> None:
    async def body(store: CallStore) -> None:
        plivo = FakePlivo()
        quiet, hung_up = await rung(store, "cuid-quiet"), await rung(store, CUID)
        sweep = sweeper(store, plivo)
        needs = await sweep.needs()  # read while both are rung and quiet
        assert set(needs.rung_quiet) == {quiet, hung_up}
        event = CallEvent(hung_up, CallStatus.COMPLETED, "webhook", {}, {"call_uuid": CUID, "duration": "42"})
        assert (await apply_pushed_event(store, Cadence(TIMING), event)).changed  # its callback lands now
        with call_of_each_line("callqueue.tracking") as lines:
            ended = await sweep._poll_ended(needs, set(), store.now_ms())  # neither is live at Plivo any more
        assert ended == [quiet]
        assert await store.redis.zscore(store.keys.tracking, hung_up) is None  # final: nothing to poll
        assert [(call, "no hang-up callback" in text) for text, call in lines.lines] == [(quiet, True)]

    run(redis_url, key_prefix, body)


def test_a_call_still_live_or_watched_by_polls_is_left_alone(redis_url: str, key_prefix: str) -> None:
    async def body(store: CallStore) -> None:
        plivo = FakePlivo()
        talking = await rung(store, "cuid-live")
        plivo.live["cuid-live"] = {"call_uuid": "cuid-live", "call_status": "in-progress"}
        polled = await dispatched_call(store, seconds_ago=5)  # no callbacks: the checker polls it every interval
        await store.transition(polled, CallStatus.RINGING, "plivo-api:live", {}, {"call_uuid": "cuid-polled"})
        due_before = await store.redis.zscore(store.keys.tracking, talking)
        assert (await sweeper(store, plivo).sweep_once()).ended == []
        assert await store.redis.zscore(store.keys.tracking, talking) == due_before

    run(redis_url, key_prefix, body)


def test_nothing_is_asked_of_plivo_without_rung_calls_and_instances_share_one_sweep(
    redis_url: str, key_prefix: str
) -> None:
    async def body(store: CallStore) -> None:
        plivo = FakePlivo()
        await dispatched_call(store, seconds_ago=1)  # dialled a moment ago: its ring callback is not due yet
        assert (await sweeper(store, plivo).sweep_once()).ended == []
        assert plivo.requests == []
        await rung(store, "cuid-a")
        await rung(store, "cuid-b")
        instances = [sweeper(store, plivo) for _ in range(3)]
        found = [(await sweep.sweep_once()).ended for sweep in instances]
        assert sorted(len(f) for f in found) == [0, 0, 2]
        assert plivo.requests == [("live_call_uuids", "")]  # one sweep this period, whichever instance ran it

    run(redis_url, key_prefix, body)


def test_a_call_known_by_its_request_uuid_only_learns_its_call_uuid_from_the_live_list(
    redis_url: str, key_prefix: str
) -> None:
    """No callback came INITIAL_STATUS_DELAY after the dial (the stock agent): the live calls no call of ours owns
    are looked up once each; ours gets its call uuid and Plivo's state; a stranger's is not looked up again."""

    async def body(store: CallStore) -> None:
        plivo = FakePlivo()
        call_id = await dispatched_call(store, seconds_ago=TIMING.initial_status_delay)
        plivo.live[CUID] = {"call_uuid": CUID, "request_uuid": REQ, "call_status": "in-progress"}
        plivo.live["cuid-other"] = {"call_uuid": "cuid-other", "request_uuid": "req-not-ours", "call_status": "ringing"}
        sweep = sweeper(store, plivo)
        assert (await sweep.sweep_once()).learned == [call_id]
        assert sorted(plivo.requests) == [("live_call", CUID), ("live_call", "cuid-other"), ("live_call_uuids", "")]
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.IN_PROGRESS and record.call_uuid == CUID
        # The next sweep: our call is owned by its call uuid now, the stranger was looked at: one list, no lookups.
        other = await dispatched_call(store, seconds_ago=TIMING.initial_status_delay)  # keeps the sweep needed
        assert other != call_id
        plivo.requests.clear()
        await last_sweep_ago(store, TIMING.status_check_interval)
        assert (await sweep.sweep_once()).learned == []
        assert plivo.requests == [("live_call_uuids", "")]

    run(redis_url, key_prefix, body)


def test_the_sweep_runs_every_poll_interval_for_uuids_and_every_two_for_lost_hang_ups_only(
    redis_url: str, key_prefix: str
) -> None:
    """One lock, two periods: rung calls alone cost one list per 2 intervals (the happy path's budget); a call that
    still lacks its call uuid makes it one list per interval (its uuid comes soon after its first poll)."""

    async def body(store: CallStore) -> None:
        plivo = FakePlivo()
        await rung(store, "cuid-a")
        plivo.live["cuid-a"] = {"call_uuid": "cuid-a", "call_status": "in-progress"}  # still talking
        sweep = sweeper(store, plivo)
        await sweep.sweep_once()
        await last_sweep_ago(store, TIMING.status_check_interval)
        await sweep.sweep_once()
        assert plivo.requests == [("live_call_uuids", "")]  # one interval later: not yet
        await last_sweep_ago(store, TIMING.status_check_interval)
        await sweep.sweep_once()
        assert plivo.requests == [("live_call_uuids", "")] * 2  # two intervals after the first: swept
        stock = await dispatched_call(store, seconds_ago=TIMING.initial_status_delay)
        await age(store, stock, "dispatched_at", TIMING.initial_status_delay)
        await last_sweep_ago(store, TIMING.status_check_interval)
        await sweep.sweep_once()
        assert plivo.requests == [("live_call_uuids", "")] * 3  # a call without its uuid: one interval is enough

    run(redis_url, key_prefix, body)
