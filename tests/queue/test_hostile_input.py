"""Hostile or buggy clients get a clear 4xx and write nothing (issue 10's table, one test per row)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import cast
from urllib.parse import urlencode

import httpx
import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from callqueue.api.app import create_app
from callqueue.call_config import CALL_CONFIG_MAX_DEPTH
from callqueue.settings import load_settings
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from local.redis_server import free_port
from local.simulators.server import running
from local.simulators.signing import signature_headers

CALL = {"phone_number": "+14155550100", "campaign_id": "hostile", "call_config": {"flow_name": "f"}}
TOKEN = "hostile-token"
PUBLIC = "https://queue-1234.us-east1.run.app"


def _env(redis_url: str, key_prefix: str, **extra: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "DISPATCH_WORKERS": "0",
        "PLIVO_AUTH_ID": "MAHOSTILE",
        "PLIVO_AUTH_TOKEN": TOKEN,
        "PUBLIC_BASE_URL": PUBLIC,
        **extra,
    }


@pytest.fixture
def api(redis_url: str, key_prefix: str) -> Iterator[httpx.Client]:
    app = create_app(load_settings(_env(redis_url, key_prefix, MAX_QUEUED_CALLS="3")), background=False)
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


def _keys(r: redis.Redis, prefix: str) -> set[str]:
    return {str(k) for k in r.scan_iter(f"{prefix}:*", count=1000)}


def _snapshot(r: redis.Redis, prefix: str) -> dict[str, object]:
    """Every key of the deployment with its content: equal before and after = nothing was written."""
    dump: dict[str, object] = {}
    for key in sorted(_keys(r, prefix)):
        kind = r.type(key)
        if kind == "hash":
            dump[key] = r.hgetall(key)
        elif kind == "list":
            dump[key] = r.lrange(key, 0, -1)
        elif kind == "zset":
            dump[key] = r.zrange(key, 0, -1, withscores=True)
        else:
            dump[key] = (kind, r.dump(key))
    return dump


def test_ids_that_are_not_ours_are_404_everywhere_and_address_no_key(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    call_id = api.post("/api/calls/queue", json=CALL).json()["call_id"]
    before = _snapshot(sync_redis, key_prefix)
    crafted = [f"{call_id}:history", f"{call_id}:callbacks", call_id.upper(), call_id + "0", "nope", "%00", "..%2Fq"]
    for bad in crafted:
        for response in (api.get(f"/api/calls/{bad}"), api.post(f"/api/calls/{bad}/cancel")):
            assert response.status_code == 404, (bad, response.text)
            assert response.json()["error"] == "not_found"
            if "%2F" not in bad:  # a slash makes it another path, which no route serves
                assert "is unknown: use the call_id returned by POST /api/calls/queue" in response.json()["message"]
    # The webhook's call_id, signed like a real callback: 404 as well, and nothing is written.
    params = {"CallUUID": "c-1", "RequestUUID": "r-1", "CallStatus": "completed", "Duration": "3"}
    for bad in (f"{call_id}:history", "nope"):
        path = f"/api/webhooks/plivo/hangup?{urlencode({'call_id': bad})}"
        answer = api.post(path, data=params, headers=signature_headers(TOKEN, "POST", PUBLIC + path, params))
        assert answer.status_code == 404, answer.text
    after = _snapshot(sync_redis, key_prefix)
    after.pop(f"{key_prefix}:rejected-events", None)  # the sampled refusals, and nothing else but
    tally = after.pop(f"{key_prefix}:metrics:callbacks", {})  # their count (written coalesced, maybe not yet)
    assert set(cast(dict[str, str], tally)) <= {"hangup|unknown_call"}
    assert after == before
    assert api.get(f"/api/calls/{call_id}").json()["status"] == "queued"


@pytest.mark.parametrize(
    ("config_json", "field"),
    [
        ('{"flow_name": "f", "gain": 1e400}', "call_config.gain"),
        ('{"flow_name": "f", "gain": NaN}', "call_config.gain"),
        ('{"flow_name": "f", "voice": {"speed": [1, Infinity]}}', "call_config.voice.speed.1"),
        ('{"flow_name": "f", "gain": -Infinity}', "call_config.gain"),
    ],
)
def test_non_finite_numbers_in_call_config_are_422_naming_the_field(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str, config_json: str, field: str
) -> None:
    raw = f'{{"phone_number": "+14155550100", "campaign_id": "c", "call_config": {config_json}}}'
    response = api.post("/api/calls/queue", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert "finite" in errors[0]["rule"] and field in response.json()["message"]
    assert _keys(sync_redis, key_prefix) == set()


def test_call_config_nesting_is_bounded(api: httpx.Client, sync_redis: redis.Redis, key_prefix: str) -> None:
    deep: object = "leaf"
    for _ in range(CALL_CONFIG_MAX_DEPTH + 1):
        deep = {"d": deep}
    response = api.post("/api/calls/queue", json={**CALL, "call_config": {"flow_name": "f", "x": deep}})
    assert response.status_code == 422
    assert f"at most {CALL_CONFIG_MAX_DEPTH} levels" in response.json()["message"]
    assert _keys(sync_redis, key_prefix) == set()
    shallow: object = "leaf"
    for _ in range(CALL_CONFIG_MAX_DEPTH):
        shallow = [shallow]
    assert (
        api.post("/api/calls/queue", json={**CALL, "call_config": {"flow_name": "f", "x": shallow}}).status_code == 202
    )


def test_admission_limit_answers_429_with_retry_after_and_writes_nothing(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    ids = [
        api.post("/api/calls/queue", json=CALL, headers={"Idempotency-Key": f"k{n}"}).json()["call_id"]
        for n in range(3)
    ]
    before = _snapshot(sync_redis, key_prefix)
    for n in range(200):  # a producer hammering a full queue, each time with a new key
        refused = api.post("/api/calls/queue", json=CALL, headers={"Idempotency-Key": f"new-{n}"})
        assert refused.status_code == 429
    assert refused.json()["error"] == "queue_full" and "MAX_QUEUED_CALLS=3" in refused.json()["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert _snapshot(sync_redis, key_prefix) == before, "a refused enqueue must write nothing"
    # A retry of an accepted call is still answered while the queue is full.
    replay = api.post("/api/calls/queue", json=CALL, headers={"Idempotency-Key": "k1"})
    assert replay.status_code == 200 and replay.json()["call_id"] == ids[1]
    api.post(f"/api/calls/{ids[0]}/cancel")
    assert api.post("/api/calls/queue", json=CALL).status_code == 202


def test_finished_calls_expire_after_the_retention_with_every_key_that_points_at_them(
    redis_url: str, key_prefix: str, sync_redis: redis.Redis
) -> None:
    retention = 7200
    settings = load_settings(_env(redis_url, key_prefix, CALL_RETENTION=str(retention)))

    async def scenario() -> tuple[str, str]:
        client = AsyncRedis.from_url(redis_url, decode_responses=True)
        store = CallStore(client, key_prefix)
        try:
            live = await store.enqueue("+14155550100", "c", {"flow_name": "f"}, "live-key",
                                       retention_s=settings.call_retention)  # fmt: skip
            done = await store.enqueue("+14155550101", "c", {"flow_name": "f"}, "done-key",
                                       retention_s=settings.call_retention)  # fmt: skip
            assert live.call_id and done.call_id
            fields = {"request_uuid": "req-1", "call_uuid": "cuid-1", "duration": 4}
            await store.transition(done.call_id, CallStatus.RINGING, "test", {}, fields)
            await store.transition(done.call_id, CallStatus.COMPLETED, "test", {}, fields)
            # `unknown` is final but still reconciled: each next check keeps it a retention beyond that check.
            unsure = await store.enqueue("+14155550102", "c", {"flow_name": "f"}, retention_s=settings.call_retention)
            await store.transition(unsure.call_id, CallStatus.UNKNOWN, "test", {}, {})
            await store.reschedule(unsure.call_id, 3_600_000)
            ttl = cast(int, await client.ttl(f"{key_prefix}:call:{unsure.call_id}"))
            assert retention + 3600 - 60 <= ttl <= retention + 3600, ttl
            return live.call_id, done.call_id
        finally:
            await client.aclose()

    live_id, done_id = asyncio.run(scenario())
    p = key_prefix
    done_keys = [f"{p}:call:{done_id}", f"{p}:call:{done_id}:history", f"{p}:idem:done-key", f"{p}:req:req-1",
                 f"{p}:cuid:cuid-1"]  # fmt: skip
    for key in done_keys:
        ttl = cast(int, sync_redis.ttl(key))
        assert 0 < ttl <= retention, (key, ttl)
    for key in (f"{p}:call:{live_id}", f"{p}:idem:live-key"):
        assert sync_redis.ttl(key) == -1, f"{key}: a call still queued never expires"
    # Nor has it a history list to expire: its first entry is in its record until it changes (store/records.py).
    assert not sync_redis.exists(f"{p}:call:{live_id}:history")


def test_content_type_other_than_json_is_415(api: httpx.Client, sync_redis: redis.Redis, key_prefix: str) -> None:
    raw = json.dumps(CALL)
    for headers in ({"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}, {}):
        response = api.post("/api/calls/queue", content=raw, headers=headers)
        assert response.status_code == 415, (headers, response.text)
        assert response.json()["error"] == "unsupported_media_type"
        assert "application/json" in response.json()["message"]
    assert _keys(sync_redis, key_prefix) == set()
    ok = api.post("/api/calls/queue", content=raw, headers={"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 202


def test_webhooks_role_serves_no_docs_and_its_health_names_no_host(redis_url: str, key_prefix: str) -> None:
    webhooks = create_app(load_settings({**_env(redis_url, key_prefix), "SERVICE_ROLE": "webhooks"}))
    with running(webhooks) as base, httpx.Client(base_url=base, timeout=10) as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect", "/api/queue/status"):
            assert client.get(path).status_code == 404, path
        health = client.get("/api/health").json()
        assert set(health) == {"status", "version", "role", "draining", "redis"}
        assert set(health["redis"]) == {"status", "latency_ms"}, "no Redis setting either"
    port = free_port()
    down = {**_env(f"redis://127.0.0.1:{port}/0", key_prefix), "SERVICE_ROLE": "webhooks"}
    with running(create_app(load_settings(down))) as base, httpx.Client(base_url=base, timeout=15) as client:
        answer = client.get("/api/health")
        assert answer.status_code == 503 and answer.json()["failing"] == ["redis"]
        assert "127.0.0.1" not in answer.text and str(port) not in answer.text, answer.text
        assert answer.json()["redis"]["error"] == "unreachable (ConnectionError)"


def test_openapi_documents_the_error_body_the_codes_and_the_id_and_phone_rules(api: httpx.Client) -> None:
    doc = api.get("/openapi.json").json()
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    assert set(doc["components"]["schemas"]["ErrorBody"]["required"]) == {"error", "message", "errors"}
    expected = {
        ("post", "/api/calls/queue"): {"408", "409", "413", "415", "422", "429", "503"},
        ("get", "/api/calls/{call_id}"): {"404", "413", "422", "503"},
        ("post", "/api/calls/{call_id}/cancel"): {"404", "409", "413", "422", "502", "503"},
        ("get", "/api/queue/status"): {"413", "503"},
        ("post", "/api/webhooks/plivo/hangup"): {"400", "403", "404", "408", "413", "503"},
        ("get", "/api/operator/overview"): {"413", "503"},
        ("get", "/metrics"): {"413", "503"},  # the page and the metrics answer text, their errors JSON all the same
        ("get", "/operator/"): {"413"},
        ("get", "/api/live"): {"413"},
        ("get", "/api/health"): {"413"},
    }
    for (method, path), codes in expected.items():
        responses = doc["paths"][path][method]["responses"]
        assert codes <= set(responses), (path, sorted(responses))
        for code in codes:
            assert responses[code]["content"]["application/json"]["schema"] == error_ref, (path, code)
    body = doc["paths"]["/api/calls/queue"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["phone_number"]["pattern"] == r"^\+[1-9][0-9]{6,14}$"
    for path in ("/api/calls/{call_id}", "/api/calls/{call_id}/cancel"):
        (parameter,) = next(iter(doc["paths"][path].values()))["parameters"]
        assert parameter["schema"]["pattern"] == "^[0-9a-f]{32}$"
