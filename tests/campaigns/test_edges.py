"""Issue 10's edge rules on the campaign and suppression routes, and attempt ids where a single dial travels:
ids and numbers checked before they reach Redis, the uniform error body, 415, and 429 for bulk enqueue."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import redis

from callqueue.api.app import create_app
from callqueue.clients.agent import AgentClient, AgentProtocolError
from callqueue.clients.auth import IdTokens
from callqueue.clock import OffsetClock
from callqueue.settings import load_settings
from local.simulators.server import running
from local.simulators.signing import signature_headers
from tests.campaigns.conftest import new_number

TOKEN = "edge-token"
PUBLIC = "https://queue-1234.us-east1.run.app"
CALL = {"phone_number": "+14155550100", "campaign_id": "edges", "call_config": {"flow_name": "f"}}


@pytest.fixture
def edge_api(redis_url: str, key_prefix: str, clock: OffsetClock) -> Iterator[httpx.Client]:
    env = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "DISPATCH_WORKERS": "0", "MAX_QUEUED_CALLS": "3",
           "PLIVO_AUTH_ID": "MAEDGE", "PLIVO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC}  # fmt: skip
    app = create_app(load_settings(env), background=False, clock=clock)
    with running(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


def _error(answer: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error", "message", "errors"} and body["error"] == error, body
    return body


def _keys(r: redis.Redis, prefix: str) -> set[str]:
    return {str(k) for k in r.scan_iter(f"{prefix}:*", count=1000)}


def test_campaign_ids_that_are_not_ours_are_404_on_reads_and_controls_and_422_on_writes(
    edge_api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    crafted = ["-leading-dash", "a" * 129, "spaces here", "semi;colon", "x%00"]
    for bad in crafted:
        path = f"/api/campaigns/{quote(bad)}"
        _error(edge_api.get(path), 404, "not_found")
        for action in ("pause", "resume", "cancel"):
            _error(edge_api.post(f"{path}/{action}"), 404, "not_found")
        body = _error(edge_api.put(path, json={}), 422, "validation_error")
        assert body["errors"][0]["field"] == "campaign_id" and "1 to 128 characters" in body["errors"][0]["rule"]
        _error(edge_api.post(f"{path}/calls", json={"calls": [{"phone_number": new_number()}]}), 422,
               "validation_error")  # fmt: skip
    assert _keys(sync_redis, key_prefix) == set(), "nothing was written for any of them"


def test_campaign_and_suppression_bodies_must_be_json_or_csv(
    edge_api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    text = {"content-type": "text/plain"}
    body = _error(edge_api.put("/api/campaigns/c1", content=b"{}", headers=text), 415, "unsupported_media_type")
    assert "application/json" in body["message"]
    body = _error(edge_api.post("/api/campaigns/c1/calls", content=b"{}", headers=text), 415, "unsupported_media_type")
    assert "application/json or text/csv" in body["message"]
    _error(edge_api.post("/api/campaigns/c1/calls", content=b'{"calls": []}'), 415, "unsupported_media_type")
    _error(edge_api.post("/api/suppressions", content=b"{}", headers=text), 415, "unsupported_media_type")
    _error(edge_api.post("/api/campaigns/c1/pause", content=b"{}", headers=text), 415, "unsupported_media_type")
    assert _keys(sync_redis, key_prefix) == set()
    assert edge_api.put("/api/campaigns/c1", json={}).status_code == 200
    assert edge_api.post("/api/campaigns/c1/pause").status_code == 200  # no body: no content type needed


def test_phone_numbers_in_suppression_paths_are_checked_before_any_lookup(edge_api: httpx.Client) -> None:
    for bad in ("12345", "+1" + "5" * 40, "not-a-number"):
        body = _error(edge_api.get(f"/api/suppressions/{quote(bad)}"), 422, "validation_error")
        assert body["errors"][0]["field"] == "phone_number", body
        _error(edge_api.delete(f"/api/suppressions/{quote(bad)}"), 422, "validation_error")
    _error(edge_api.get("/api/suppressions/%2B14155550100"), 404, "not_found")
    too_long = _error(edge_api.post("/api/suppressions", json={"numbers": ["+1" + "5" * 40]}), 422, "validation_error")
    assert too_long["errors"][0]["field"] == "numbers.0", too_long


def test_bulk_enqueue_meets_max_queued_calls_per_item_or_as_a_whole(
    edge_api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    def bulk(keys: list[str], **params: str) -> httpx.Response:
        calls = [{"phone_number": f"+1212555{n:04d}", "key": key} for n, key in enumerate(keys)]
        return edge_api.post("/api/campaigns/bulk/calls", json={"calls": calls, "call_config": {"flow_name": "f"}},
                             params=params)  # fmt: skip

    whole = bulk(["a", "b", "c", "d"], mode="all_or_nothing")  # 4 do not fit under 3: nothing written
    _error(whole, 429, "queue_full")
    assert int(whole.headers["Retry-After"]) >= 1 and "MAX_QUEUED_CALLS=3" in whole.json()["message"]
    assert _keys(sync_redis, key_prefix) <= {f"{key_prefix}:seq"}
    partial = bulk(["a", "b", "c", "d"])
    assert partial.status_code == 200 and int(partial.headers["Retry-After"]) >= 1, partial.text
    assert (partial.json()["accepted"], partial.json()["rejected"]) == (3, 1)
    assert partial.json()["items"][3]["error"] == "queue_full"
    none_fit = bulk(["e", "f"])
    body = _error(none_fit, 429, "queue_full")
    assert [e["field"] for e in body["errors"]] == ["calls[0]", "calls[1]"]
    replay = bulk(["a", "b", "c", "d"])  # full, but the keyed items that were written are answered
    assert replay.status_code == 200 and replay.json()["replayed"] == 3
    _error(edge_api.post("/api/calls/queue", json=CALL), 429, "queue_full")


def test_callbacks_and_agent_lookups_take_attempt_ids_and_nothing_else(edge_api: httpx.Client) -> None:
    call_id = edge_api.post("/api/calls/queue", json=CALL).json()["call_id"]
    params = {"CallUUID": "c-1", "RequestUUID": "r-1", "CallStatus": "completed", "Duration": "3"}

    def hangup(attempt_id: str) -> httpx.Response:
        path = f"/api/webhooks/plivo/hangup?{urlencode({'call_id': attempt_id})}"
        return edge_api.post(path, data=params, headers=signature_headers(TOKEN, "POST", PUBLIC + path, params))

    for bad in (f"{call_id}.1", f"{call_id}.11", f"{call_id}.02", f"{call_id}.2:history", f"{call_id}.2.2"):
        _error(hangup(bad), 404, "unknown_call")
    # A later attempt's id is ours: this call is still on attempt 1, so the callback is stale and changes nothing.
    stale = hangup(f"{call_id}.2")
    assert stale.status_code == 200 and stale.json()["changed"] is False, stale.text
    assert edge_api.get(f"/api/calls/{call_id}").json()["status"] == "queued"
    _error(edge_api.get(f"/api/calls/{call_id}.2"), 404, "not_found")  # the public call API takes call ids only


def test_the_agent_is_never_asked_about_an_id_that_is_not_an_attempt_id() -> None:
    asked: list[str] = []

    async def lookups() -> list[str]:
        def answer(request: httpx.Request) -> httpx.Response:
            asked.append(request.url.path)
            return httpx.Response(404)

        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            agent = AgentClient("http://agent", http, IdTokens(http, enabled=False), timeout_s=1)
            refused = []
            for bad in ("0" * 32 + "/../admin", "0" * 32 + ".1", "0" * 32 + ".11"):
                with pytest.raises(AgentProtocolError, match="not an attempt id"):
                    await agent.status(bad)
                refused.append(bad)
            assert await agent.status("0" * 32 + ".2") is None  # an attempt id is looked up (unknown: 404)
            return refused

    assert len(asyncio.run(lookups())) == 3
    assert asked == ["/calls/" + "0" * 32 + ".2"], "only the attempt id reached the agent"


def test_openapi_documents_the_error_body_and_codes_of_the_campaign_and_suppression_routes(
    edge_api: httpx.Client,
) -> None:
    doc = edge_api.get("/openapi.json").json()
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    control = {"404", "408", "409", "413", "415", "422", "503"}
    expected = {
        ("get", "/api/campaigns"): {"413", "422", "503"},
        ("put", "/api/campaigns/{campaign_id}"): {"408", "413", "415", "422", "503"},
        ("get", "/api/campaigns/{campaign_id}"): {"404", "413", "422", "503"},
        ("post", "/api/campaigns/{campaign_id}/calls"): {"400", "408", "409", "413", "415", "422", "429", "503"},
        ("post", "/api/campaigns/{campaign_id}/pause"): control,
        ("post", "/api/campaigns/{campaign_id}/resume"): control,
        ("post", "/api/campaigns/{campaign_id}/cancel"): control,
        ("post", "/api/suppressions"): {"408", "413", "415", "422", "503"},
        ("get", "/api/suppressions/{phone_number}"): {"404", "413", "422", "503"},
        ("delete", "/api/suppressions/{phone_number}"): {"404", "413", "422", "503"},
    }
    for (method, path), codes in expected.items():
        responses = doc["paths"][path][method]["responses"]
        assert codes <= set(responses), (path, sorted(responses))
        for code in codes:
            assert responses[code]["content"]["application/json"]["schema"] == error_ref, (path, code)
    (campaign,) = doc["paths"]["/api/campaigns/{campaign_id}"]["get"]["parameters"]
    assert campaign["schema"]["pattern"] == r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$" and campaign["schema"]["maxLength"] == 128
    (number,) = doc["paths"]["/api/suppressions/{phone_number}"]["get"]["parameters"]
    assert number["schema"]["pattern"] == r"^\+[1-9][0-9]{6,14}$"
    hangup = doc["paths"]["/api/webhooks/plivo/hangup"]["post"]["parameters"]
    call_id = next(p for p in hangup if p["name"] == "call_id")
    assert call_id["schema"]["pattern"] == r"^[0-9a-f]{32}(\.(10|9|8|7|6|5|4|3|2))?$"
