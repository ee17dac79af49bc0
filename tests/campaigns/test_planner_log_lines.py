"""The planner's lines about a call belong to that call: written with it bound, so the JSON log line carries its
call_id field (what an operator filters a call's story by), like the dispatcher's and the tracker's."""

from __future__ import annotations

from callqueue.campaigns.models import CampaignSettings
from callqueue.campaigns.planner import Planner
from callqueue.campaigns.store import CampaignStore
from callqueue.clock import OffsetClock
from callqueue.store.calls import CallStore
from tests.call_log_lines import call_of_each_line
from tests.campaigns.conftest import local_ms, new_number, run_store

NY = "America/New_York"


def test_the_planners_line_about_a_call_carries_its_call_id(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> list[str]:
        hours = CampaignSettings.model_validate({"calling_hours": {"start": "09:00", "end": "17:00"}})
        await CampaignStore(store).put_settings("daytime", hours, 3600)
        clock.set(local_ms(NY, 2026, 7, 1, 10, 0))  # inside the hours: the planner queues them at once
        ids = [(await store.enqueue(new_number(), "daytime", {"flow_name": "f"})).call_id for _ in range(2)]
        await Planner(store, clock).run_once()
        return ids

    with call_of_each_line("callqueue.campaigns") as lines:
        ids = run_store(redis_url, key_prefix, clock, body)
    about_calls = [(text, call) for text, call in lines.lines if "scheduled → queued" in text]
    assert sorted(str(call) for _, call in about_calls) == sorted(ids)
    assert all(call is not None and call in text for text, call in about_calls)
