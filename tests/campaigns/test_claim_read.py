"""A claim returns the claimed call's record (no second read): the same fields `store.get` gives the worker, none
for a call the claim did not hand out, and the plain-case script (claim_script.CLAIM) writes exactly what the full
rules (CLAIM_FULL) write."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from typing import Any

from redis.asyncio import Redis

from callqueue.campaigns.models import CampaignSettings
from callqueue.campaigns.store import CampaignStore
from callqueue.clock import OffsetClock
from callqueue.dispatch.start_request import start_body
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from callqueue.store.claim_script import CLAIMED_FIELDS
from callqueue.store.records import CallRecord
from tests.campaigns.conftest import new_number, run_store
from tests.campaigns.test_redial import REDIAL, configure, end, plan

CONFIG = {"flow_name": "f", "vars": {"name": "Ada"}}
RATE, SLOTS, LEASE = 100_000, 1_000_000, 60_000
BASE_URL = "https://queue.example"
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
# What a dispatch worker reads from the record: start_body's fields, the attempt, the start-request count, the trace.
WORKER_FIELDS = ("call_id", "phone_number", "campaign_id", "call_config", "status", "attempts", "attempt",
                 "attempt_id", "starts_before", "start_requests", "traceparent", "claim_token")  # fmt: skip


def worker_view(record: CallRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in WORKER_FIELDS} | {"body": start_body(record, BASE_URL)}


def test_the_claimed_record_is_what_a_read_of_the_call_returns(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        call_id = (await store.enqueue(new_number(), "plain", CONFIG, traceparent=TRACE)).call_id
        claim = await store.claim(RATE, SLOTS, LEASE, "w")
        assert claim.call_id == call_id and claim.record is not None
        read = await store.get(call_id)
        assert read is not None
        return [(worker_view(claim.record), worker_view(read))]

    [(claimed, read)] = run_store(redis_url, key_prefix, clock, body)
    assert claimed == read
    assert claimed["status"] is CallStatus.DISPATCHING and claimed["traceparent"] == TRACE
    assert claimed["body"]["call_config"] == CONFIG and claimed["attempts"] == 1 and claimed["claim_token"] == 1


def test_a_redialled_call_is_claimed_with_its_attempt_and_start_count(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> tuple[dict[str, Any], dict[str, Any]]:
        await configure(store, "again", retry=REDIAL)
        call_id = (await store.enqueue(new_number(), "again", CONFIG)).call_id
        await end(store, call_id, CallStatus.BUSY)
        await plan(store, clock)
        clock.advance(600_000)
        await plan(store, clock)
        claim = await store.claim(RATE, SLOTS, LEASE, "w")
        assert claim.call_id == call_id and claim.record is not None
        read = await store.get(call_id)
        assert read is not None
        return worker_view(claim.record), worker_view(read)

    claimed, read = run_store(redis_url, key_prefix, clock, body)
    assert claimed == read
    assert claimed["attempt"] == 2 and claimed["attempt_id"].endswith(".2") and claimed["body"]["attempt"] == 2
    assert claimed["starts_before"] == 1 and claimed["start_requests"] == 1


def test_a_suppressed_or_replanned_call_comes_with_no_record(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> list[Any]:
        blocked = new_number()
        await store.enqueue(blocked, "optouts", CONFIG)
        await CampaignStore(store).suppress([blocked], "replied STOP")
        suppressed = await store.claim(RATE, SLOTS, LEASE, "w")
        await store.enqueue(new_number(), "late-rules", CONFIG)
        hours = CampaignSettings.model_validate({"calling_hours": {"start": "09:00", "end": "20:00"}})
        await CampaignStore(store).put_settings("late-rules", hours, 3600)
        replanned = await store.claim(RATE, SLOTS, LEASE, "w")
        return [(c.outcome, c.record) for c in (suppressed, replanned)]

    assert run_store(redis_url, key_prefix, clock, body) == [("suppressed", None), ("empty", None)]


def test_the_claimed_record_is_the_record_its_constructor_makes() -> None:
    """from_claim builds the record without the dataclass's __init__ (the hot path): every field is what __init__
    gives for the same values, the defaults included, and no two records share a mutable default."""
    fields = ("+14155550100", "c", '{"flow_name": "f"}', "2", "3", TRACE, "1700000000000")
    fast = CallRecord.from_claim("id", 7, 4, 1700000000500, *fields)
    slow = CallRecord(
        call_id="id",
        phone_number="+14155550100",
        campaign_id="c",
        call_config={"flow_name": "f"},
        status=CallStatus.DISPATCHING,
        created_at_ms=1700000000000,
        updated_at_ms=1700000000500,
        attempts=4,
        traceparent=TRACE,
        attempt=2,
        starts_before=3,
        claim_token=7,
    )
    assert fast == slow and vars(fast) == vars(slow) and dataclasses.replace(fast) == fast
    assert fast.tracking is not CallRecord.from_claim("id", 7, 4, 1, *fields).tracking
    bare = CallRecord.from_claim("id", 1, 1, 1, "+14155550100", "c", "{}", None, None, None, "1")
    assert (bare.attempt, bare.starts_before, bare.traceparent) == (1, 0, None)
    # A claim's reply carries CLAIMED_FIELDS in from_claim's order (CallStore.claim passes them positionally).
    assert tuple(inspect.signature(CallRecord.from_claim).parameters)[4:] == CLAIMED_FIELDS


# --- the plain-case script against the full rules -------------------------------------------------------------


def _norm(value: Any) -> Any:
    """Redis-clock times (ms, and a campaign's `pace_trimmed_s`) masked: they differ between the two runs of one
    step."""
    if isinstance(value, dict):
        return {k: "S" if k == "pace_trimmed_s" else _norm(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    if isinstance(value, str) and value.startswith("{"):
        return _norm(json.loads(value))
    if isinstance(value, str):
        return re.sub(r"\b1\d{12}\b", "T", value)
    if isinstance(value, int | float) and value >= 1e12:
        return "T"
    return value


async def _state(r: Redis, prefix: str) -> dict[str, Any]:
    """Every key under the prefix, its value by type, times masked (JSON in a hash compared parsed)."""
    out: dict[str, Any] = {f"{prefix}:campaigns:vtime": "0"}  # absent and "0" are the same virtual time
    async for key in r.scan_iter(f"{prefix}:*"):
        kind = await r.type(key)
        if kind == "hash":
            out[key] = _norm(await r.hgetall(key))  # type: ignore[misc]
        elif kind == "zset":
            out[key] = sorted(_norm(await r.zrange(key, 0, -1, withscores=True)))
        elif kind == "list":  # compared byte for byte (a history entry as cjson writes it), times masked
            out[key] = [re.sub(r"\b1\d{12}\b", "T", v) for v in await r.lrange(key, 0, -1)]  # type: ignore[misc]
        elif kind == "set":
            out[key] = sorted(await r.smembers(key))  # type: ignore[misc]
        else:
            out[key] = _norm(await r.get(key))
    return out


async def _dump(raw: Redis, prefix: str) -> dict[bytes, tuple[bytes, int]]:
    keys = [k async for k in raw.scan_iter(f"{prefix}:*")]
    return {k: (await raw.dump(k), await raw.pttl(k)) for k in keys}


async def _restore(raw: Redis, prefix: str, dumped: dict[bytes, tuple[bytes, int]]) -> None:
    keys = [k async for k in raw.scan_iter(f"{prefix}:*")]
    if keys:
        await raw.delete(*keys)
    for key, (payload, ttl) in dumped.items():
        await raw.restore(key, max(ttl, 0), payload)


def test_the_plain_case_script_writes_what_the_full_rules_write(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    """Each claim runs from the same state three times: the plain-case script alone, CLAIM_FULL alone, and
    CallStore.claim. The plain case answers as the full rules do and leaves the same state; when it leaves the
    decision to them (`slow`) it has changed nothing; CallStore.claim ends where CLAIM_FULL does. Then, at the global
    rate, both answer `wait` and leave everything as it was."""

    async def body(store: CallStore) -> list[str]:
        campaigns = CampaignStore(store)
        await campaigns.put_settings("heavy", CampaignSettings(weight=3), 3600)
        await campaigns.put_settings("capped", CampaignSettings(max_concurrent_calls=2, dispatch_rate=50), 3600)
        for campaign in ("heavy", "light", "capped", "heavy", "light", "capped", "capped"):
            await store.enqueue(new_number(), campaign, CONFIG, traceparent=TRACE)
        blocked = new_number()
        await store.enqueue(blocked, "light", CONFIG)
        await campaigns.suppress([blocked], "STOP")
        await configure(store, "again", retry=REDIAL)  # a call on its second attempt
        await end(store, (await store.enqueue(new_number(), "again", CONFIG)).call_id, CallStatus.BUSY)
        await plan(store, clock)
        clock.advance(600_000)
        await plan(store, clock)
        prefix, args = store.keys.prefix, (RATE, SLOTS, LEASE, "w", clock.now_ms())
        raw = Redis.from_url(redis_url)  # DUMP and RESTORE take bytes
        outcomes: list[str] = []
        slow = 0
        try:
            for _ in range(11):
                before, start = await _dump(raw, prefix), await _state(store.redis, prefix)
                fast = await store.script("CLAIM")(args=[prefix, *args])
                after_fast = await _state(store.redis, prefix)
                await _restore(raw, prefix, before)
                full = await store.script("CLAIM_FULL")(args=[prefix, *args])
                after_full = await _state(store.redis, prefix)
                if fast[0] == "slow":
                    slow += 1
                    assert after_fast == start
                else:
                    assert _norm(fast) == _norm(full) and after_fast == after_full
                await _restore(raw, prefix, before)
                claim = await store.claim(*args[:4], clock_ms=args[4])
                assert await _state(store.redis, prefix) == after_full
                assert (claim.outcome, claim.call_id) == (full[0], full[1] if len(full) > 1 else None)
                outcomes.append(claim.outcome)
            # At the global rate: both answer `wait` and write nothing, not even a trim of starts a minute old
            # (a pace set is trimmed when a start is added to it).
            seconds, micros = await store.redis.time()
            now = seconds * 1000 + micros // 1000
            for pace in (store.keys.pace, store.keys.campaign_pace("light")):
                await store.redis.zadd(pace, {"long-ago:1": now - 120_000, "ahead:1": now + 600_000})
            before, start = await _dump(raw, prefix), await _state(store.redis, prefix)
            fast = await store.script("CLAIM")(args=[prefix, 1, *args[1:]])
            after_fast = await _state(store.redis, prefix)
            await _restore(raw, prefix, before)
            full = await store.script("CLAIM_FULL")(args=[prefix, 1, *args[1:]])
            assert fast[0] == full[0] == "wait" and after_fast == start == await _state(store.redis, prefix)
        finally:
            await raw.aclose()
        assert slow >= 2  # the suppressed number and the capped campaign at its cap went through the full rules
        return outcomes

    outcomes = run_store(redis_url, key_prefix, clock, body)
    assert outcomes.count("claimed") == 7 and outcomes.count("suppressed") == 1, outcomes
