"""The public HTTP API of the queue: every path and every error, over real HTTP on a real Redis."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import redis

from callqueue.api.app import create_app
from callqueue.settings import load_settings
from local.simulators.server import running

CALL = {
    "phone_number": "+14155550100",
    "campaign_id": "spring-2026",
    "call_config": {"flow_name": "renewal", "lang": "en"},
}


@pytest.fixture
def api(redis_url: str, key_prefix: str) -> Iterator[httpx.Client]:
    """The service without background loops: nothing is dispatched, so API effects are observed in isolation."""
    settings = load_settings({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "DISPATCH_WORKERS": "0"})
    with running(create_app(settings, background=False)) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


def test_queue_call_persists_it_and_answers_202_with_the_history(api: httpx.Client) -> None:
    response = api.post("/api/calls/queue", json=CALL)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["replayed"] is False
    record = api.get(f"/api/calls/{body['call_id']}").json()
    assert record["phone_number"] == "+14155550100"
    assert record["campaign_id"] == "spring-2026"
    assert record["call_config"] == {"flow_name": "renewal", "lang": "en"}
    assert [h["status"] for h in record["history"]] == ["queued"]
    assert record["history"][0]["source"] == "api" and record["history"][0]["at"].endswith("Z")


def test_phone_numbers_are_normalised_to_e164(api: httpx.Client) -> None:
    body = {**CALL, "phone_number": "+44 20 7946 0958"}
    call_id = api.post("/api/calls/queue", json=body).json()["call_id"]
    assert api.get(f"/api/calls/{call_id}").json()["phone_number"] == "+442079460958"


def test_idempotency_key_returns_the_first_call_instead_of_queueing_a_second(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    first = api.post("/api/calls/queue", json=CALL, headers={"Idempotency-Key": "order-42"})
    again = api.post("/api/calls/queue", json=CALL, headers={"Idempotency-Key": "order-42"})
    assert first.status_code == 202 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["call_id"] == first.json()["call_id"] and again.json()["replayed"] is True
    assert sync_redis.zcard(f"{key_prefix}:queued") == 1


def test_idempotency_key_reused_for_another_call_is_refused(api: httpx.Client) -> None:
    api.post("/api/calls/queue", json=CALL, headers={"Idempotency-Key": "k"})
    other = api.post(
        "/api/calls/queue", json={**CALL, "phone_number": "+14155550199"}, headers={"Idempotency-Key": "k"}
    )
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["message"] and "new key" in other.json()["message"]


@pytest.mark.parametrize(
    ("body", "field", "rule_fragment"),
    [
        ({**CALL, "phone_number": "4155550100"}, "phone_number", "E.164"),
        ({**CALL, "phone_number": "+1415555"}, "phone_number", "not a valid"),
        ({**CALL, "phone_number": "+1-CALL-ME"}, "phone_number", "E.164"),
        ({k: v for k, v in CALL.items() if k != "campaign_id"}, "campaign_id", "required"),
        ({**CALL, "call_config": "renewal"}, "call_config", "object"),
        ({**CALL, "call_config": {"lang": "en"}}, "call_config.flow_name", "required"),
        ({**CALL, "call_config": {"flow_name": 7}}, "call_config.flow_name", "string"),
        ({**CALL, "call_config": {"flow_name": "has space"}}, "call_config.flow_name", "pattern"),
        ({**CALL, "priority": "high"}, "priority", "not permitted"),
    ],
)
def test_bad_input_names_the_field_and_the_rule_and_writes_nothing(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str, body: dict[str, object], field: str, rule_fragment: str
) -> None:
    response = api.post("/api/calls/queue", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e["field"] == field and rule_fragment.lower() in e["rule"].lower() for e in errors), errors
    assert field in response.json()["message"]
    assert sync_redis.zcard(f"{key_prefix}:queued") == 0


def test_body_that_is_not_json_is_a_422(api: httpx.Client) -> None:
    response = api.post("/api/calls/queue", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


def test_oversized_body_is_refused_before_it_is_read(api: httpx.Client) -> None:
    huge = {**CALL, "call_config": {"flow_name": "x", "notes": "a" * 20_000}}
    response = api.post("/api/calls/queue", json=huge)
    assert response.status_code == 413
    assert "16384 bytes" in response.json()["message"]


def test_unknown_call_id_is_a_404_that_says_which_id_to_use(api: httpx.Client) -> None:
    for response in (api.get("/api/calls/nope"), api.post("/api/calls/nope/cancel")):
        assert response.status_code == 404
        assert "'nope' is unknown" in response.json()["message"]
        assert "POST /api/calls/queue" in response.json()["message"]


def test_cancel_removes_a_queued_call_from_the_queue(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    call_id = api.post("/api/calls/queue", json=CALL).json()["call_id"]
    assert api.post(f"/api/calls/{call_id}/cancel").json() == {"call_id": call_id, "status": "canceled"}
    assert sync_redis.zcard(f"{key_prefix}:queued") == 0
    record = api.get(f"/api/calls/{call_id}").json()
    assert record["status"] == "canceled"
    assert [h["status"] for h in record["history"]] == ["queued", "canceled"]
    again = api.post(f"/api/calls/{call_id}/cancel")
    assert again.status_code == 409 and "already ended as canceled" in again.json()["message"]


def test_queue_status_counts_and_ages(api: httpx.Client) -> None:
    ids = [api.post("/api/calls/queue", json=CALL).json()["call_id"] for _ in range(3)]
    api.post(f"/api/calls/{ids[0]}/cancel")
    status = api.get("/api/queue/status").json()
    assert status["counts"] == {"queued": 2, "canceled": 1}
    assert status["queued"] == 2 and status["in_flight"] == 0
    assert status["oldest_queued_age_s"] is not None and status["oldest_queued_age_s"] >= 0
    assert status["limits"] == {"dispatch_rate": 2, "max_concurrent_calls": 10}
    assert {"dispatch_rate_per_s", "live_instances", "live_workers", "pending_results"} <= set(status)


def test_health_shows_version_and_effective_timing_profile(api: httpx.Client) -> None:
    body = api.get("/api/health").json()
    assert body["status"] == "ok" and body["version"]
    assert body["timing"]["profile"] == "local"
    assert body["timing"]["values"]["INITIAL_STATUS_DELAY"] == 5
    assert body["redis"]["status"] == "ok"


def test_openapi_docs_are_served(api: httpx.Client) -> None:
    assert api.get("/docs").status_code == 200
    assert "/api/calls/queue" in api.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_the_service_itself(api: httpx.Client, page: str) -> None:
    """Offline (no CDN reachable), the page still works: each script, style and icon it names is served here."""
    html = api.get(page).text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assets += re.findall(r"""(?:url|openapi_url|spec-url)\s*[:=]\s*["']([^"']+)["']""", html)
    assert assets, html
    for asset in assets:
        assert not asset.startswith(("http:", "https:", "//")), f"{page} loads {asset} from outside the service"
        answer = api.get(asset)
        assert answer.status_code == 200 and answer.content, asset
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts and all(len(api.get(a).content) > 100_000 for a in scripts), "the real bundles, not a stub"


def test_redis_down_gives_503_naming_redis_and_accepts_nothing() -> None:
    from local.redis_server import free_port

    settings = load_settings({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DISPATCH_WORKERS": "0"})
    with running(create_app(settings, background=False)) as base, httpx.Client(base_url=base, timeout=15) as client:
        health = client.get("/api/health")
        assert health.status_code == 503 and health.json()["failing"] == ["redis"]
        queued = client.post("/api/calls/queue", json=CALL)
        assert queued.status_code == 503 and queued.headers["Retry-After"] == "5"
        assert queued.json()["errors"] == [{"dependency": "redis", "reason": "unreachable (ConnectionError)"}]
        assert "nothing was written" in queued.json()["message"]
