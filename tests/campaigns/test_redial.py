"""Redial by outcome: which outcomes are redialled, when (waits and calling hours), each attempt kept with its own
history and result, late events of an earlier attempt ignored, and the circuit breaker."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from callqueue.campaigns.models import CampaignSettings
from callqueue.campaigns.planner import Planner
from callqueue.campaigns.store import CampaignStore
from callqueue.clock import OffsetClock
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from callqueue.store.records import CallRecord
from tests.campaigns.conftest import local_ms, new_number, run_store

CONFIG = {"flow_name": "f"}
RATE, SLOTS, LEASE = 100_000, 1_000_000, 60_000
NY = "America/New_York"
REDIAL = {"max_attempts": 3, "on": ["busy", "no_answer", "failed"], "waits_s": [600, 1800]}


async def configure(store: CallStore, campaign: str, **settings: Any) -> None:
    await CampaignStore(store).put_settings(campaign, CampaignSettings.model_validate(settings), 3600)


async def dial(store: CallStore, call_id: str) -> CallRecord:
    """Claim the call and have the agent accept it: the current attempt is `dispatched`."""
    claim = await store.claim(RATE, SLOTS, LEASE, "w")
    assert (claim.outcome, claim.call_id) == ("claimed", call_id)
    claimed = await store.get(call_id)
    assert claimed is not None
    assert await store.mark_dispatched(claimed.attempt_id, f"req-{uuid.uuid4().hex}", {}, 60_000) is not None
    record = await store.get(call_id)
    assert record is not None
    return record


async def end(store: CallStore, call_id: str, status: CallStatus, **fields: str) -> CallRecord:
    record = await dial(store, call_id)
    changed, _ = await store.transition(record.attempt_id, status, "test", {}, fields)
    assert changed
    after = await store.get(call_id)
    assert after is not None
    return after


async def plan(store: CallStore, clock: OffsetClock) -> None:
    await Planner(store, clock).run_once()


def test_busy_is_redialled_after_its_wait_each_attempt_keeps_its_own_history_and_result(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> dict[str, Any]:
        await configure(store, "redial", retry=REDIAL)
        call_id = (await store.enqueue(new_number(), "redial", CONFIG)).call_id
        after_first = await end(store, call_id, CallStatus.BUSY, hangup_cause="Busy Line")
        await plan(store, clock)
        planned = await store.get(call_id)
        not_yet = await store.claim(RATE, SLOTS, LEASE, "w")
        clock.advance(600_000)
        await plan(store, clock)
        after_second = await end(store, call_id, CallStatus.NO_ANSWER)
        await plan(store, clock)  # the wait before attempt 3 (1800 s) counts from here
        clock.advance(1_800_000)
        await plan(store, clock)
        final = await end(store, call_id, CallStatus.COMPLETED, duration="42")
        outbox = await store.redis.zrange(store.keys.outbox, 0, -1)
        status = await CampaignStore(store).raw_status("redial", clock.now_ms())
        return {
            "id": call_id, "after_first": after_first, "planned": planned, "not_yet": not_yet.outcome,
            "after_second": after_second, "final": final, "outbox": outbox, "status": status,
        }  # fmt: skip

    got = run_store(redis_url, key_prefix, clock, body)
    call_id = got["id"]
    first: CallRecord = got["after_first"]
    assert (first.status, first.attempt, first.attempt_id, first.waiting_for) == (
        CallStatus.SCHEDULED, 2, f"{call_id}.2", "retry",
    )  # fmt: skip
    assert first.request_uuid is None and first.hangup_cause is None  # attempt 2 starts clean
    planned: CallRecord = got["planned"]
    assert planned.due_at_ms is not None and abs(planned.due_at_ms - (first.updated_at_ms + 600_000)) < 5_000
    assert got["not_yet"] == "empty"  # not dialled before its wait
    final: CallRecord = got["final"]
    assert (final.status, final.attempt) == (CallStatus.COMPLETED, 3)
    attempts = final.dial_attempts()
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "busy"), (2, "no_answer"), (3, "completed")]
    assert attempts[0]["hangup_cause"] == "Busy Line" and attempts[0]["attempt_id"] == call_id
    assert [h["status"] for h in attempts[1]["history"]] == ["scheduled", "queued", "dispatching", "dispatched",
                                                              "no_answer"]  # fmt: skip
    assert attempts[0]["request_uuid"] != attempts[1]["request_uuid"]
    assert sorted(got["outbox"]) == sorted([f"{call_id}:busy", f"{call_id}.2:no_answer", f"{call_id}.3:completed"])
    fields = got["status"]["fields"]
    assert (fields["o:1:busy"], fields["o:2:no_answer"], fields["o:3:completed"]) == ("1", "1", "1")
    assert fields["n:completed"] == "1" and int(fields.get("n:busy", "0")) == 0


@pytest.mark.parametrize(
    ("outcome", "fields", "settings"),
    [
        (CallStatus.COMPLETED, {}, {"retry": REDIAL}),
        (CallStatus.CANCELED, {}, {"retry": REDIAL}),
        (CallStatus.FAILED, {"hangup_cause_code": "2000"}, {"retry": REDIAL}),  # invalid destination
        (CallStatus.FAILED, {"failure_kind": "permanent"}, {"retry": REDIAL}),  # the agent refused the start
        (CallStatus.MISSED, {}, {"retry": REDIAL}),  # not in `on`
        (CallStatus.UNKNOWN, {}, {"retry": {**REDIAL, "on": ["busy", "no_answer", "failed", "missed"]}}),
        (CallStatus.BUSY, {}, {"retry": {**REDIAL, "max_attempts": 1}}),
        (CallStatus.BUSY, {}, {}),  # a campaign nobody configured never redials
    ],
)
def test_outcomes_that_are_never_redialled(
    redis_url: str, key_prefix: str, clock: OffsetClock, outcome: CallStatus, fields: dict[str, str],
    settings: dict[str, Any],
) -> None:  # fmt: skip
    async def body(store: CallStore) -> CallRecord:
        if settings:
            await configure(store, "strict", **settings)
        call_id = (await store.enqueue(new_number(), "strict", CONFIG)).call_id
        return await end(store, call_id, outcome, **fields)

    record = run_store(redis_url, key_prefix, clock, body)
    assert (record.status, record.attempt) == (outcome, 1)


def test_a_call_redials_on_its_own_policy_over_its_campaigns(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> CallRecord:
        own = '{"max_attempts": 2, "on": ["busy"], "waits_s": [5]}'
        call_id = (await store.enqueue(new_number(), "own", CONFIG, fields={"retry": own})).call_id
        return await end(store, call_id, CallStatus.BUSY)  # queued at once: a policy of its own needs no planning

    assert run_store(redis_url, key_prefix, clock, body).attempt == 2


def test_unknown_is_not_redialled_but_a_later_settled_busy_is(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> tuple[CallRecord, CallRecord]:
        await configure(store, "unsure", retry=REDIAL)
        call_id = (await store.enqueue(new_number(), "unsure", CONFIG)).call_id
        unknown = await end(store, call_id, CallStatus.UNKNOWN)
        await store.transition(call_id, CallStatus.BUSY, "plivo-api:detail-record")
        settled = await store.get(call_id)
        assert settled is not None
        return unknown, settled

    unknown, settled = run_store(redis_url, key_prefix, clock, body)
    assert (unknown.status, unknown.attempt) == (CallStatus.UNKNOWN, 1)
    assert (settled.status, settled.attempt) == (CallStatus.SCHEDULED, 2)


@pytest.mark.parametrize(
    ("ended_at", "expected_due"),
    [
        (local_ms(NY, 2026, 7, 1, 19, 55), local_ms(NY, 2026, 7, 2, 9, 0)),  # 20:05 is past hours: next morning
        (local_ms(NY, 2026, 7, 1, 10, 0), local_ms(NY, 2026, 7, 1, 10, 10)),  # inside hours: just the wait
        (local_ms(NY, 2026, 3, 7, 19, 55), local_ms(NY, 2026, 3, 8, 9, 0)),  # across spring-forward: 09:00 EDT
        (local_ms(NY, 2026, 10, 31, 19, 58), local_ms(NY, 2026, 11, 1, 9, 0)),  # across fall-back: 09:00 EST
    ],
)
def test_a_redial_never_lands_outside_calling_hours(
    redis_url: str, key_prefix: str, clock: OffsetClock, ended_at: int, expected_due: int
) -> None:
    async def body(store: CallStore) -> CallRecord:
        await configure(store, "hours", retry=REDIAL, calling_hours={"start": "09:00", "end": "20:00"})
        clock.set(ended_at - 60_000)
        call_id = (await store.enqueue(new_number(), "hours", CONFIG)).call_id
        await plan(store, clock)
        clock.set(ended_at)
        await end(store, call_id, CallStatus.BUSY)
        await plan(store, clock)
        record = await store.get(call_id)
        assert record is not None
        return record

    record = run_store(redis_url, key_prefix, clock, body)
    assert record.status is CallStatus.SCHEDULED and record.attempt == 2
    # the planner runs a moment after the attempt ended; the wait counts from then
    assert record.due_at_ms is not None and abs(record.due_at_ms - expected_due) < 5_000
    assert record.waiting_for == ("calling_hours" if expected_due - ended_at > 600_000 else "retry")


def test_an_event_of_an_earlier_attempt_changes_nothing(redis_url: str, key_prefix: str, clock: OffsetClock) -> None:
    async def body(store: CallStore) -> tuple[str, CallRecord]:
        await configure(store, "late", retry={**REDIAL, "waits_s": [0]})
        call_id = (await store.enqueue(new_number(), "late", CONFIG)).call_id
        await end(store, call_id, CallStatus.BUSY)
        await plan(store, clock)
        second = await dial(store, call_id)
        await store.transition(second.attempt_id, CallStatus.RINGING, "plivo-callback:ring")
        late = await store.transition_result(call_id, CallStatus.BUSY, "plivo-callback:hangup")  # attempt 1's retry
        record = await store.get(call_id)
        assert record is not None
        return late.outcome, record

    outcome, record = run_store(redis_url, key_prefix, clock, body)
    assert outcome == "stale"
    assert (record.status, record.attempt) == (CallStatus.RINGING, 2)


def test_the_circuit_breaker_pauses_the_campaign_when_dialled_attempts_fail(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> dict[str, Any]:
        campaigns = CampaignStore(store)
        await configure(store, "broken", breaker={"window": 10, "min_attempts": 5, "failure_ratio": 0.8})
        ids = [(await store.enqueue(new_number(), "broken", CONFIG)).call_id for _ in range(8)]
        notes: list[tuple[str, ...]] = []
        for call_id in ids[:4]:
            await end(store, call_id, CallStatus.BUSY)  # the person's answer: not a failure
        for call_id in ids[4:7]:
            record = await dial(store, call_id)
            done = await store.transition_result(record.attempt_id, CallStatus.FAILED, "dispatcher", {},
                                                 {"reason": "agent unavailable after 5 attempts"})  # fmt: skip
            notes.append(done.notes)
        return {"notes": notes, "view": await campaigns.view("broken"), "last": ids[7]}

    got = run_store(redis_url, key_prefix, clock, body)
    # 4 busy + 3 failed = 7 attempts, 3 failures: 43 % < 80 %: no trip yet. Failures only count among dialled.
    assert got["notes"] == [(), (), ()]
    assert got["view"].state == "active"

    async def more(store: CallStore) -> dict[str, Any]:
        campaigns = CampaignStore(store)
        ids = [(await store.enqueue(new_number(), "broken", CONFIG)).call_id for _ in range(6)]
        notes = []
        for call_id in [got["last"], *ids[:5]]:
            record = await dial(store, call_id)
            done = await store.transition_result(record.attempt_id, CallStatus.FAILED, "tracker", {},
                                                 {"reason": "Destination Out Of Service"})  # fmt: skip
            notes.append(done.notes)
            if done.notes:
                break
        raw = await campaigns.raw_status("broken", clock.now_ms())
        held = await store.claim(RATE, SLOTS, LEASE, "w")
        await campaigns.control("broken", "resume", "fixed")
        after = await campaigns.raw_status("broken", clock.now_ms())
        again = await store.claim(RATE, SLOTS, LEASE, "w")
        return {"notes": notes, "raw": raw, "held": held.outcome, "after": after, "again": again.outcome}

    tripped = run_store(redis_url, key_prefix, clock, more)
    trip_note = tripped["notes"][-1][0]
    assert trip_note.startswith("breaker|broken|circuit breaker: 8 of the last 10 dialled attempts failed")
    fields = tripped["raw"]["fields"]
    assert fields["state"] == "paused" and fields["paused_by"] == "breaker"
    assert "Destination Out Of Service" in fields["paused_reason"]
    assert tripped["held"] == "empty"  # nothing more is dialled
    assert tripped["after"]["fields"]["state"] == "active" and tripped["after"]["recent"] == []
    assert tripped["again"] == "claimed"


def test_the_planner_ends_calls_that_can_never_be_dialled_legally(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> list[CallRecord | None]:
        await configure(store, "limits", calling_hours={"start": "09:00", "end": "20:00"})
        clock.set(local_ms(NY, 2026, 7, 1, 12, 0))
        tollfree = (await store.enqueue("+18005550100", "limits", CONFIG)).call_id
        nowhere = (await store.enqueue("+80012345678", "limits", CONFIG)).call_id
        await plan(store, clock)
        return [await store.get(tollfree), await store.get(nowhere)]

    tollfree, nowhere = run_store(redis_url, key_prefix, clock, body)
    assert tollfree is not None and nowhere is not None
    assert tollfree.status is CallStatus.FAILED and "no calling hours" in (tollfree.reason or "")
    assert nowhere.status is CallStatus.FAILED and "cannot tell the time zone" in (nowhere.reason or "")
    assert tollfree.attempts == 0 and nowhere.attempts == 0  # never dialled


def test_a_campaign_fallback_zone_makes_a_number_without_one_callable(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> CallRecord | None:
        await configure(store, "fallback", calling_hours={"start": "09:00", "end": "20:00"}, time_zone=NY)
        clock.set(local_ms(NY, 2026, 7, 1, 21, 0))
        call_id = (await store.enqueue("+80012345678", "fallback", CONFIG)).call_id
        await plan(store, clock)
        return await store.get(call_id)

    record = run_store(redis_url, key_prefix, clock, body)
    assert record is not None and record.status is CallStatus.SCHEDULED
    assert record.zones == (NY,) and record.zone_source == "campaign"
    assert record.due_at_ms == local_ms(NY, 2026, 7, 2, 9, 0)


def test_a_late_agent_answer_for_an_ended_attempt_does_not_mark_the_redial_dialled(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> dict[str, Any]:
        await configure(store, "fast-busy", retry=REDIAL)
        call_id = (await store.enqueue(new_number(), "fast-busy", CONFIG)).call_id
        claim = await store.claim(RATE, SLOTS, LEASE, "w")
        assert claim.call_id == call_id
        # Plivo's busy hang-up callback arrives before the agent's answer to /start:
        await store.transition(call_id, CallStatus.BUSY, "plivo-callback:hangup")
        late = await store.mark_dispatched(call_id, "req-late", {}, 1000)  # the worker's answer for attempt 1
        rescheduled = await store.reschedule(call_id, 1000)  # a tracker pass that still had attempt 1
        record = await store.get(call_id)
        tracked = await store.redis.zscore(store.keys.tracking, call_id)
        return {"late": late, "rescheduled": rescheduled, "record": record, "tracked": tracked}

    got = run_store(redis_url, key_prefix, clock, body)
    assert got["late"] is None and got["rescheduled"] is False and got["tracked"] is None
    record: CallRecord = got["record"]
    assert (record.status, record.attempt, record.request_uuid) == (CallStatus.SCHEDULED, 2, None)
