"""Dispatch through the agent: what is sent, what is retried, what fails, and what is never sent twice."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from callqueue.api.app import create_app
from callqueue.settings import load_settings
from local.simulators.server import running
from tests.queue.conftest import Sims, wait_for

CALL = {"phone_number": "+14155550100", "campaign_id": "c1", "call_config": {"flow_name": "renewal", "lang": "en"}}


@pytest.fixture
def service(service_env: dict[str, str]) -> Iterator[httpx.Client]:
    with running(create_app(load_settings(service_env))) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


def queue(client: httpx.Client, **overrides: Any) -> str:
    response = client.post("/api/calls/queue", json={**CALL, **overrides})
    assert response.status_code == 202, response.text
    call_id: str = response.json()["call_id"]
    return call_id


def record_when(client: httpx.Client, call_id: str, statuses: set[str], timeout: float = 20) -> dict[str, Any]:
    holder: dict[str, Any] = {}

    def reached() -> bool:
        holder.update(client.get(f"/api/calls/{call_id}").json())
        return holder["status"] in statuses

    wait_for(reached, timeout, f"call {call_id} to reach {statuses}")
    return holder


def starts_for(sims: Sims, call_id: str) -> list[dict[str, Any]]:
    return [s for s in sims.starts() if s["call_id"] == call_id]


AFTER_DISPATCH = {"dispatched", "initiated", "ringing", "in_progress", "completed"}


def test_dispatch_sends_the_pipecat_body_with_our_ids_and_callbacks(
    service: httpx.Client, sims: Sims, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callqueue")
    call_id = queue(service)
    record = record_when(service, call_id, AFTER_DISPATCH)
    [start] = starts_for(sims, call_id)
    body = start["body"]
    assert body["dialout_settings"] == {"phone_number": "+14155550100"}
    assert body["campaign_id"] == "c1" and body["call_config"] == {"flow_name": "renewal", "lang": "en"}
    assert body["callbacks"]["ring_url"] == f"http://127.0.0.1:9/api/webhooks/plivo/ring?call_id={call_id}"
    assert body["callbacks"]["hangup_url"] == f"http://127.0.0.1:9/api/webhooks/plivo/hangup?call_id={call_id}"
    assert start["idempotency_key"] == call_id
    assert record["request_uuid"] == start["request_uuid"]
    assert [h["status"] for h in record["history"]][:3] == ["queued", "dispatching", "dispatched"]
    logged = [r.getMessage() for r in caplog.records if call_id in r.getMessage()]
    assert any("Call status changed: queued → dispatching" in m for m in logged), logged
    assert any("Call status changed: dispatching → dispatched" in m for m in logged), logged


def test_agent_503_and_429_are_retried_and_the_call_is_dialled_once(service: httpx.Client, sims: Sims) -> None:
    sims.agent_fault(status=503, count=1)
    sims.agent_fault(status=429, count=1, retry_after=0)
    call_id = queue(service)
    record = record_when(service, call_id, AFTER_DISPATCH)
    starts = starts_for(sims, call_id)
    assert len(starts) == 3 and [s["dialled"] for s in starts] == [False, False, True]
    assert record["attempts"] == 3


def test_agent_400_fails_the_call_with_the_agents_reason(service: httpx.Client, sims: Sims) -> None:
    sims.agent_fault(status=400, count=1, body='{"detail": "dialout_settings.phone_number: not allowed"}')
    call_id = queue(service)
    record = record_when(service, call_id, {"failed"})
    assert "400" in record["reason"] and "not allowed" in record["reason"]
    assert len(starts_for(sims, call_id)) == 1


def test_malformed_agent_answer_fails_that_call_and_the_worker_lives_on(service: httpx.Client, sims: Sims) -> None:
    sims.agent_fault(status=200, body="<html>Service Unavailable</html>", count=1, process=False)
    bad = queue(service)
    assert "documented JSON" in record_when(service, bad, {"failed"})["reason"]
    good = queue(service, phone_number="+14155550101")
    record_when(service, good, AFTER_DISPATCH)


def test_agent_timeout_with_the_call_placed_is_reconciled_not_redialled(service: httpx.Client, sims: Sims) -> None:
    sims.agent_fault(delay=4, count=1)  # REQUEST_TIMEOUT is 2 s: we give up, but the agent does dial
    call_id = queue(service)
    record = record_when(service, call_id, AFTER_DISPATCH, timeout=30)
    starts = starts_for(sims, call_id)
    assert len(starts) == 1 and starts[0]["dialled"], "a start whose answer was lost must not be sent again"
    assert record["request_uuid"] == starts[0]["request_uuid"]
    dispatched = next(h for h in record["history"] if h["status"] == "dispatched")
    assert dispatched["source"] == "dispatcher" and dispatched["detail"]["via"] == "agent status"


def test_a_canceled_call_is_never_dialled(service_env: dict[str, str], sims: Sims) -> None:
    api_only = create_app(load_settings({**service_env, "DISPATCH_WORKERS": "0"}), background=False)
    with running(api_only) as base, httpx.Client(base_url=base) as client:
        canceled, kept = queue(client), queue(client, phone_number="+14155550101")
        assert client.post(f"/api/calls/{canceled}/cancel").status_code == 200
    with running(create_app(load_settings(service_env))) as base, httpx.Client(base_url=base) as client:
        record_when(client, kept, AFTER_DISPATCH)
        assert client.get(f"/api/calls/{canceled}").json()["status"] == "canceled"
    assert starts_for(sims, canceled) == []


def test_concurrency_limit_holds_calls_until_slots_free(service_env: dict[str, str], sims: Sims) -> None:
    env = {**service_env, "MAX_CONCURRENT_CALLS": "1"}
    long_call = {"to": "+14155550100", "script": {"talk_for": 150}}  # ×0.2 time scale: a 30 s call
    httpx.post(f"{sims.plivo}/_sim/scripts", json=long_call).raise_for_status()
    with running(create_app(load_settings(env))) as base, httpx.Client(base_url=base) as client:
        first, second = queue(client), queue(client, phone_number="+14155550101")
        record_when(client, first, AFTER_DISPATCH)
        status = client.get("/api/queue/status").json()
        assert status["in_flight"] == 1
        assert client.get(f"/api/calls/{second}").json()["status"] == "queued"
        assert starts_for(sims, second) == []


def test_queue_sends_the_agent_a_google_id_token_for_its_url(service_env: dict[str, str], sims: Sims) -> None:
    """Deployed (AUTH_MODE=id_token): the token comes from the metadata server with the agent's URL as audience,
    and an agent that verifies it, as docs/contracts.md asks, accepts the start."""
    from local.simulators.agent import create_agent_app
    from local.simulators.id_tokens import CallerPolicy, create_metadata_app
    from tests.queue.conftest import AUTH_ID, AUTH_TOKEN

    protected = create_agent_app(sims.plivo, AUTH_ID, AUTH_TOKEN, caller_policy=CallerPolicy())
    with running(create_metadata_app()) as metadata, running(protected) as agent:
        env = service_env | {"AGENT_SERVER_URL": agent, "AUTH_MODE": "id_token", "GCE_METADATA_HOST": metadata}
        with running(create_app(load_settings(env))) as base, httpx.Client(base_url=base, timeout=10) as client:
            call_id = queue(client)
            record_when(client, call_id, AFTER_DISPATCH)
        [start] = [s for s in httpx.get(f"{agent}/_sim/starts").json()["starts"] if s["call_id"] == call_id]
        assert start["dialled"] and start["error"] is None
        assert set(httpx.get(f"{metadata}/_sim/issued").json()["audiences"]) == {agent}
