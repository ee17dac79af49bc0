"""What the claim's cheaper steps keep: the pace sets stay bounded although a claim trims them at most once a
second per campaign (scripts.add_starts, claim_script.CLAIM); the virtual time, now set and read in one command,
never goes back when a campaign behind it is claimed; the claimed record's call_config is what json.loads reads."""

from __future__ import annotations

import json
from typing import cast

import pytest
import redis

from callqueue.campaigns.models import CampaignSettings
from callqueue.campaigns.store import CampaignStore
from callqueue.clock import OffsetClock
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from callqueue.store.records import CallRecord
from tests.campaigns.conftest import new_number, run_store

CONFIG = {"flow_name": "f"}
RATE, SLOTS, LEASE = 100_000, 1_000_000, 60_000
STEP_S = 7  # the time made to pass between two claims


def test_a_pace_set_never_holds_a_start_older_than_61_s_however_many_claims(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    """Claims of two campaigns with STEP_S made to pass between them (every start, and the second each campaign's
    paces were last trimmed, moved that far back): after each claim, neither pace set it added its start to holds a
    start from before the minute preceding the second the claim ran in, so none holds more than the starts of 61 s
    (a campaign's pace is trimmed when a start is added to it; its readers count the last minute)."""
    campaigns = ("a", "b")
    paces = [f"{key_prefix}:pace", *(f"{key_prefix}:campaign:{c}:pace" for c in campaigns)]

    def age(seconds: int) -> None:
        for key in paces:
            starts: list[tuple[str, float]] = sync_redis.zrange(key, 0, -1, withscores=True)  # type: ignore[assignment]
            if starts:
                sync_redis.zadd(key, {member: at - seconds * 1000 for member, at in starts})
        for c in campaigns:
            trimmed = cast(str | None, sync_redis.hget(f"{key_prefix}:campaign:{c}", "pace_trimmed_s"))
            if trimmed is not None:
                sync_redis.hset(f"{key_prefix}:campaign:{c}", "pace_trimmed_s", str(int(trimmed) - seconds))

    async def body(store: CallStore) -> list[tuple[int, list[float], list[int]]]:
        for n in range(40):
            await store.enqueue(new_number(), campaigns[n % 2], CONFIG)
        seen = []
        for n in range(40):
            # the plain-case script and the full rules, each for both campaigns in turn
            script = "CLAIM" if n % 4 < 2 else "CLAIM_FULL"
            reply = await store.script(script)(args=[key_prefix, RATE, SLOTS, LEASE, "w", clock.now_ms()])
            assert reply[0] == "claimed", reply
            at, campaign = int(reply[4]), reply[6]  # Redis time, then CLAIMED_FIELDS: phone_number, campaign_id
            # the sets this claim added its start to: the global pace and its campaign's
            added = (paces[0], f"{key_prefix}:campaign:{campaign}:pace")
            oldest = [float(sync_redis.zrange(key, 0, 0, withscores=True)[0][1]) for key in added]  # type: ignore[index]
            seen.append((at, oldest, [cast(int, sync_redis.zcard(key)) for key in paces]))
            age(STEP_S)
        return seen

    seen = run_store(redis_url, key_prefix, clock, body)
    for at, oldest, _ in seen:
        second = at // 1000 * 1000
        assert all(score > second - 60_000 for score in oldest), (at, oldest)
    # One claim every STEP_S: at most 61 // STEP_S + 1 starts in 61 s, of both campaigns or of one of them.
    assert max(sizes[0] for _, _, sizes in seen) <= 61 // STEP_S + 1
    assert max(max(sizes[1:]) for _, _, sizes in seen) <= 61 // (2 * STEP_S) + 1


def test_the_virtual_time_stays_when_a_campaign_behind_it_is_claimed(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    """A campaign passed over at its concurrency cap keeps a pass behind the virtual time when a campaign of a
    longer stride is claimed past it; claimed later by the plain-case script, it leaves the virtual time where it
    was (a campaign joining afterwards starts there, not behind calls already claimed)."""
    vtime = f"{key_prefix}:campaigns:vtime"

    async def body(store: CallStore) -> list[tuple[str, str | None]]:
        await CampaignStore(store).put_settings("a-capped", CampaignSettings(weight=2, max_concurrent_calls=1), 3600)
        capped = [(await store.enqueue(new_number(), "a-capped", CONFIG)).call_id for _ in range(2)]
        for _ in range(2):
            await store.enqueue(new_number(), "b-plain", CONFIG)
        steps = []
        for _ in range(3):  # a-capped (pass 0 -> 0.5), b-plain (0 -> 1), then b-plain past a-capped at its cap
            claim = await store.claim(RATE, SLOTS, LEASE, "w")
            steps.append((claim.outcome, claim.call_id))
        before = cast(str | None, sync_redis.get(vtime))
        changed, _ = await store.transition(capped[0], CallStatus.FAILED, "test", {}, {})  # its slot is free
        assert changed
        claim = await store.claim(RATE, SLOTS, LEASE, "w")  # a-capped at pass 0.5, behind the virtual time
        steps.append((claim.outcome, claim.call_id))
        return [*((o, i) for o, i in steps), ("vtime", before), ("vtime", cast(str | None, sync_redis.get(vtime)))]

    *steps, (_, before), (_, after) = run_store(redis_url, key_prefix, clock, body)
    assert [outcome for outcome, _ in steps] == ["claimed"] * 4
    assert before == after == "1"


def test_a_claimed_call_config_reads_as_json_loads_reads_it() -> None:
    """The claim parses call_config with the JSON scanner directly (records._loads): the same value as json.loads
    for any document, whitespace around it included, and the same error for one that is not JSON."""
    for raw in ('{"flow_name": "f", "vars": {"name": "Ada"}}', ' {"a": [1, 2.5, null]}\n', "[]", '"x"'):
        record = CallRecord.from_claim("id", 1, 1, 1, "+14155550100", "c", raw, None, None, None, "1")
        assert record.call_config == json.loads(raw)
    for bad in ('{"a": 1}x', '{"a": }', "", " "):
        with pytest.raises(json.JSONDecodeError) as expected:
            json.loads(bad)
        with pytest.raises(json.JSONDecodeError) as got:
            CallRecord.from_claim("id", 1, 1, 1, "+14155550100", "c", bad, None, None, None, "1")
        assert str(got.value) == str(expected.value)
