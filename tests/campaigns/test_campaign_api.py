"""The campaign API without background loops: settings, bulk enqueue, suppression, control, status, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from callqueue.clock import OffsetClock
from tests.campaigns.conftest import local_ms, new_number

NY = "America/New_York"
HOURS = {"start": "09:00", "end": "20:00"}


def bulk(api: httpx.Client, campaign: str, calls: list[dict[str, Any]], **params: str) -> httpx.Response:
    body = {"calls": calls, "call_config": {"flow_name": "renewal"}}
    return api.post(f"/api/campaigns/{campaign}/calls", json=body, params=params)


def test_settings_round_trip_and_unknown_campaign_is_404_with_the_fix(api: httpx.Client) -> None:
    assert api.get("/api/campaigns/nobody").status_code == 404
    assert "PUT its settings" in api.get("/api/campaigns/nobody").json()["message"]
    settings = {
        "calling_hours": {**HOURS, "days": ["mon", "tue", "wed", "thu", "fri"]},
        "retry": {"max_attempts": 3, "on": ["busy", "no_answer"], "waits_s": [600, 3600]},
        "max_concurrent_calls": 5,
        "weight": 2,
    }
    put = api.put("/api/campaigns/spring", json=settings)
    assert put.status_code == 200, put.text
    status = api.get("/api/campaigns/spring").json()
    assert status["configured"] is True and status["state"] == "active"
    assert status["settings"]["calling_hours"]["days"] == ["mon", "tue", "wed", "thu", "fri"]
    assert status["settings"]["retry"] == {"max_attempts": 3, "on": ["busy", "no_answer"], "waits_s": [600, 3600]}
    assert status["settings"]["breaker"] == {"enabled": True, "window": 20, "min_attempts": 10, "failure_ratio": 0.8}


@pytest.mark.parametrize(
    ("settings", "field", "rule"),
    [
        ({"calling_hours": {"start": "9am", "end": "20:00"}}, "calling_hours.start", "HH:MM"),
        ({"calling_hours": {"start": "20:00", "end": "09:00"}}, "calling_hours", "before end"),
        ({"retry": {"max_attempts": 2, "on": ["completed"]}}, "retry.on.0", "busy"),
        ({"retry": {"max_attempts": 11}}, "retry.max_attempts", "10"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "IANA"),
        ({"breaker": {"window": 5, "min_attempts": 6}}, "breaker", "must not exceed window"),
        ({"priority": 1}, "priority", "not permitted"),
    ],
)
def test_invalid_settings_name_the_field_and_the_rule(
    api: httpx.Client, settings: dict[str, Any], field: str, rule: str
) -> None:
    answer = api.put("/api/campaigns/bad", json=settings)
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert any(e["field"] == field and rule in e["rule"] for e in errors), errors


def test_single_queue_api_is_unchanged_without_settings_and_waits_for_calling_hours_with_them(
    api: httpx.Client,
) -> None:
    body = {"phone_number": new_number(), "campaign_id": "plain", "call_config": {"flow_name": "f"}}
    assert api.post("/api/calls/queue", json=body).json()["status"] == "queued"
    api.put("/api/campaigns/hours", json={"calling_hours": HOURS})
    answer = api.post("/api/calls/queue", json={**body, "campaign_id": "hours"})
    assert answer.status_code == 202 and answer.json()["status"] == "scheduled"
    record = api.get(f"/api/calls/{answer.json()['call_id']}").json()
    assert record["status"] == "scheduled" and record["waiting_for"] == "planning"


def test_bulk_accepts_valid_items_and_names_each_invalid_one(api: httpx.Client, sync_redis: redis.Redis) -> None:
    calls: list[dict[str, Any]] = [
        {"phone_number": new_number()},
        {"phone_number": "4155550100"},
        {"phone_number": new_number(), "call_config": {"flow_name": "other", "name": "Ada"}},
        {"phone_number": new_number(), "call_config": {"flow_name": "has space"}},
        {"phone_number": new_number(), "colour": "red"},
    ]
    answer = bulk(api, "bulk", calls)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["replayed"], body["rejected"]) == (2, 0, 3)
    items = body["items"]
    assert [i["index"] for i in items] == [0, 1, 2, 3, 4]
    assert items[0]["status"] == "queued" and items[2]["status"] == "queued"
    assert items[1]["errors"] == [{"field": "calls[1].phone_number", "rule": items[1]["errors"][0]["rule"]}]
    assert "E.164" in items[1]["errors"][0]["rule"]
    assert items[3]["errors"][0]["field"] == "calls[3].call_config.flow_name"
    assert items[4]["errors"][0] == {"field": "calls[4].colour", "rule": "extra fields not permitted"}
    record = api.get(f"/api/calls/{items[2]['call_id']}").json()
    assert record["call_config"] == {"flow_name": "other", "name": "Ada"} and record["campaign_id"] == "bulk"
    assert record["trace_id"] is not None  # the request's trace travels with each of its calls
    recent = api.get("/api/operator/overview").json()["calls"]
    assert [c["call_id"] for c in recent] == [items[2]["call_id"], items[0]["call_id"]]
    assert api.get("/api/campaigns/bulk").json()["calls"]["by_status"] == {"queued": 2}


def test_all_or_nothing_writes_nothing_when_one_item_is_invalid(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    calls = [{"phone_number": new_number()}, {"phone_number": "+1415555"}]
    answer = bulk(api, "strict", calls, mode="all_or_nothing")
    assert answer.status_code == 422
    assert "nothing was queued" in answer.json()["message"]
    assert answer.json()["errors"][0]["field"] == "calls[1].phone_number"
    assert sync_redis.zcard(f"{key_prefix}:queued") == 0
    assert api.get("/api/campaigns/strict").status_code == 404
    assert bulk(api, "strict", calls[:1], mode="all_or_nothing").json()["accepted"] == 1


def test_item_keys_make_a_repeated_request_return_the_first_calls(api: httpx.Client, sync_redis: redis.Redis) -> None:
    calls = [{"phone_number": new_number(), "key": f"contact-{n}"} for n in range(3)]
    first = bulk(api, "idem", calls).json()
    again = bulk(api, "idem", calls).json()
    assert (again["accepted"], again["replayed"]) == (0, 3)
    assert [i["call_id"] for i in again["items"]] == [i["call_id"] for i in first["items"]]
    other = bulk(api, "idem", [{"phone_number": new_number(), "key": "contact-0"}]).json()
    assert other["rejected"] == 1 and "already used for a different call" in other["items"][0]["errors"][0]["rule"]
    # Keys are per campaign: the same key in another campaign is another call.
    assert bulk(api, "idem-2", calls[:1]).json()["accepted"] == 1
    assert api.get("/api/campaigns/idem").json()["calls"]["total"] == 3


def test_a_key_repeated_within_one_request_is_one_call(api: httpx.Client) -> None:
    number = new_number()
    calls = [{"phone_number": number, "key": "k"}, {"phone_number": number, "key": "k"}]
    calls.append({"phone_number": new_number(), "key": "k"})  # the same key for another number
    answer = bulk(api, "repeat", calls).json()
    assert (answer["accepted"], answer["replayed"], answer["rejected"]) == (1, 1, 1)
    first, second, third = answer["items"]
    assert second["call_id"] == first["call_id"] and second["replayed"]
    assert "already used for a different call" in third["errors"][0]["rule"]
    assert api.get("/api/campaigns/repeat").json()["calls"]["total"] == 1


def test_bulk_request_errors_say_what_to_send(api: httpx.Client) -> None:
    url = "/api/campaigns/errs/calls"
    assert api.post(url, content=b"not json", headers={"content-type": "application/json"}).status_code == 400
    assert api.post(url, json={"calls": []}).status_code == 422
    assert api.post(url, json={"items": []}).json()["errors"] == [{"field": "calls", "rule": "required"}]
    too_many = api.post(url, json={"calls": [{"phone_number": "+14155550100"}] * 10_001})
    assert too_many.status_code == 413 and "at most 10,000" in too_many.json()["message"]


def test_csv_upload_with_flow_name_from_the_query(api: httpx.Client) -> None:
    first, second = new_number(), new_number()
    text = f"phone_number,key,first_name\n{first},row-1,Ada\n{second},row-2,Grace\nnot-a-number,row-3,X\n"
    answer = api.post(
        "/api/campaigns/csv/calls", content=text.encode(), params={"flow_name": "renewal"},
        headers={"content-type": "text/csv"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    record = api.get(f"/api/calls/{body['items'][1]['call_id']}").json()
    assert record["phone_number"] == second
    assert record["call_config"] == {"flow_name": "renewal", "first_name": "Grace"}
    missing = api.post(
        "/api/campaigns/csv/calls", content=b"number\n+14155550100\n", headers={"content-type": "text/csv"}
    )
    assert missing.status_code == 422 and "phone_number column" in missing.json()["message"]


def test_bulk_outside_calling_hours_is_scheduled_for_the_opening_in_the_numbers_zone(
    api: httpx.Client, clock: OffsetClock
) -> None:
    api.put("/api/campaigns/evening", json={"calling_hours": HOURS})
    clock.set(local_ms(NY, 2026, 7, 1, 21, 30))  # 21:30 in New York
    la = new_number("415")  # America/Los_Angeles: 18:30 there, inside its hours
    answer = bulk(api, "evening", [{"phone_number": new_number("212")}, {"phone_number": la}]).json()
    ny_call, la_call = (api.get(f"/api/calls/{i['call_id']}").json() for i in answer["items"])
    assert ny_call["status"] == "scheduled" and ny_call["waiting_for"] == "calling_hours"
    assert ny_call["due_at"] == "2026-07-02T13:00:00.000Z"  # 09:00 EDT
    assert ny_call["time_zones"] == [NY]
    assert la_call["status"] == "queued" and la_call["time_zones"] == ["America/Los_Angeles"]


def test_bulk_refuses_numbers_that_can_never_be_called_inside_their_hours(
    api: httpx.Client, clock: OffsetClock
) -> None:
    # A toll-free number maps to every NANP zone, Guam to Pago Pago; in July their 09:00–20:00 never overlap (in
    # winter St John's UTC-03:30 leaves 30 minutes with Guam).
    clock.set(local_ms(NY, 2026, 7, 1, 12, 0))
    api.put("/api/campaigns/tollfree", json={"calling_hours": HOURS})
    answer = bulk(
        api, "tollfree", [{"phone_number": "+18005550100"}, {"phone_number": "+18005550101", "time_zone": NY}]
    )
    body = answer.json()
    assert body["rejected"] == 1 and body["accepted"] == 1
    assert "no calling hours" in body["items"][0]["errors"][0]["rule"]


def test_not_before_and_per_call_time_zone_and_retry(api: httpx.Client, clock: OffsetClock) -> None:
    clock.set(local_ms(NY, 2026, 7, 1, 10, 0))
    calls: list[dict[str, Any]] = [
        {"phone_number": new_number(), "not_before": "2026-07-01T12:00:00-04:00"},
        {"phone_number": new_number(), "not_before": "2026-07-01T12:00:00"},
        {"phone_number": new_number(), "retry": {"max_attempts": 0}},
        {"phone_number": new_number(), "time_zone": "Europe/Paris", "retry": {"max_attempts": 2}},
    ]
    body = bulk(api, "options", calls).json()
    first = api.get(f"/api/calls/{body['items'][0]['call_id']}").json()
    assert first["status"] == "scheduled" and first["waiting_for"] == "not_before"
    assert first["due_at"] == first["not_before"] == "2026-07-01T16:00:00.000Z"
    assert "UTC offset" in body["items"][1]["errors"][0]["rule"]
    assert body["items"][2]["errors"][0]["field"] == "calls[2].retry.max_attempts"
    assert api.get(f"/api/calls/{body['items'][3]['call_id']}").json()["time_zones"] == ["Europe/Paris"]


def test_suppression_list_api(api: httpx.Client) -> None:
    answer = api.post("/api/suppressions", json={"numbers": ["+1 212 555 0199", "+442079460958"], "reason": "STOP"})
    assert answer.status_code == 200 and answer.json() == {"numbers": ["+12125550199", "+442079460958"], "added": 2}
    got = api.get("/api/suppressions/+12125550199").json()
    assert got["reason"] == "STOP" and got["added_at"].endswith("Z")
    bad = api.post("/api/suppressions", json={"numbers": ["+12125550198", "12"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "numbers[1]"
    assert api.get("/api/suppressions/+12125550198").status_code == 404  # nothing of the bad request was added
    assert api.delete("/api/suppressions/+12125550199").json() == {"phone_number": "+12125550199", "removed": True}
    assert api.get("/api/suppressions/+12125550199").status_code == 404
    assert api.delete("/api/suppressions/+12125550199").status_code == 404


def test_cancel_ends_waiting_calls_and_the_campaign_takes_no_more(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    api.put("/api/campaigns/later", json={"calling_hours": HOURS})
    ids = [
        i["call_id"] for i in bulk(api, "doomed", [{"phone_number": new_number()} for _ in range(3)]).json()["items"]
    ]
    answer = api.post("/api/campaigns/doomed/cancel", json={"reason": "list withdrawn"})
    assert answer.status_code == 200 and answer.json() == {
        "campaign_id": "doomed", "state": "canceled", "changed": True, "canceled_calls": 3,
    }  # fmt: skip
    for call_id in ids:
        record = api.get(f"/api/calls/{call_id}").json()
        assert record["status"] == "canceled" and record["reason"] == "campaign canceled"
    outbox: list[str] = sync_redis.zrange(f"{key_prefix}:outbox", 0, -1)  # type: ignore[assignment]
    assert sorted(outbox) == sorted(f"{c}:canceled" for c in ids)
    body = {"phone_number": new_number(), "campaign_id": "doomed", "call_config": {"flow_name": "f"}}
    assert api.post("/api/calls/queue", json=body).status_code == 409
    assert bulk(api, "doomed", [{"phone_number": new_number()}]).status_code == 409
    assert api.post("/api/campaigns/doomed/resume").status_code == 409
    assert api.get("/api/campaigns/doomed").json()["state"] == "canceled"
    assert api.post("/api/campaigns/nobody/pause").status_code == 404


def test_campaigns_are_listed_newest_first_with_their_counts(api: httpx.Client) -> None:
    bulk(api, "older", [{"phone_number": new_number()} for _ in range(2)])
    api.put("/api/campaigns/newer", json={})
    bulk(api, "newer", [{"phone_number": new_number()}])
    api.post("/api/campaigns/older/pause")
    listed = api.get("/api/campaigns").json()["campaigns"]
    assert [c["campaign_id"] for c in listed] == ["newer", "older"]
    assert listed[1] == {
        "campaign_id": "older", "state": "paused", "paused_by": "api", "total": 2, "queued": 2, "scheduled": 0,
        "in_flight": 0, "by_status": {"queued": 2},
    }  # fmt: skip
    assert api.get("/api/operator/overview").json()["campaigns"] == listed


def test_pause_and_resume_answer_what_changed(api: httpx.Client) -> None:
    bulk(api, "toggle", [{"phone_number": new_number()}])
    assert api.post("/api/campaigns/toggle/pause", json={"reason": "script review"}).json()["changed"] is True
    status = api.get("/api/campaigns/toggle").json()
    assert status["state"] == "paused"
    assert status["paused"]["by"] == "api" and status["paused"]["reason"] == "script review"
    assert api.post("/api/campaigns/toggle/pause").json()["changed"] is False
    resumed = api.post("/api/campaigns/toggle/resume").json()
    assert resumed == {"campaign_id": "toggle", "state": "active", "changed": True, "was_paused_by": "api"}
